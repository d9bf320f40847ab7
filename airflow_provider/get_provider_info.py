"""Provider registration, read by Airflow through the ``apache_airflow_provider`` entry point.

This module must stay import-light: Airflow calls it while discovering providers
(``airflow providers list``, the connection form, every component start). It
imports nothing from Airflow or from the rest of the package.

The ``sutro`` connection type is declared with ``conn-fields`` and
``ui-field-behaviour`` so that Airflow 3.2+ builds the connection form without
importing the hook.
"""

from __future__ import annotations

from typing import Any

INTEGRATION = "Sutro"
OPPER = "Opper"
PACKAGE_NAME = "sutro-providers"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version(PACKAGE_NAME)
    except Exception:  # not installed (running from a checkout)
        return "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata (schema: ``airflow/provider_info.schema.json``)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": INTEGRATION,
        "description": (
            "`Sutro <https://sutro.sh/>`__ batch-LLM Functions over warehouse tables: "
            "deferrable batch operator and ``@task.sutro``, trigger, sensor, real-time Function operator; "
            "`Opper <https://opper.ai/>`__ functions over the same tables, one call per row.\n"
        ),
        "versions": [_version()],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.sutro.sh/",
                "tags": ["service"],
            },
            {
                "integration-name": OPPER,
                "external-doc-url": "https://docs.opper.ai/",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider.hooks.sutro"]},
            {"integration-name": OPPER, "python-modules": ["airflow_provider.hooks.opper"]},
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider.operators.batch",
                    "airflow_provider.operators.run_function",
                ],
            },
            {"integration-name": OPPER, "python-modules": ["airflow_provider.operators.opper"]},
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider.sensors.sutro"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider.triggers.sutro"]}],
        "extra-links": ["airflow_provider.links.SutroJobLink"],
        "task-decorators": [{"name": "sutro", "class-name": "airflow_provider.decorators.sutro.sutro_task"}],
        "connection-types": [
            {
                "connection-type": "sutro",
                "hook-class-name": "airflow_provider.hooks.sutro.SutroHook",
                "hook-name": "Sutro",
                "conn-fields": {
                    "staging_url": {
                        "label": "Staging URL",
                        "description": "Object-storage prefix where inputs are staged as Parquet "
                        "and the run ledger is kept, e.g. s3://my-bucket/sutro",
                        "schema": {"type": ["string", "null"]},
                    },
                    "aws_conn_id": {
                        "label": "AWS connection id",
                        "description": "Optional Airflow connection (type aws) whose login/password "
                        "and extra endpoint_url / region_name are used to stage on S3",
                        "schema": {"type": ["string", "null"]},
                    },
                    "s3_endpoint_url": {
                        "label": "S3 endpoint URL",
                        "description": "S3-compatible endpoint (MinIO, moto, R2); empty for AWS",
                        "schema": {"type": ["string", "null"]},
                    },
                    "storage_options": {
                        "label": "Storage options (JSON)",
                        "description": "Extra fsspec storage options as a JSON object",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "API URL", "password": "API key"},
                    "placeholders": {
                        "host": "https://your-deployment.sutro.sh",
                        "password": "sk_...",
                        "extra": '{"staging_url": "s3://bucket/prefix"}',
                    },
                },
            },
            {
                "connection-type": "opper",
                "hook-class-name": "airflow_provider.hooks.opper.OpperHook",
                "hook-name": "Opper",
                "conn-fields": {
                    "staging_url": {
                        "label": "Staging URL",
                        "description": "Where inputs are staged and the results journal is kept, "
                        "e.g. s3://my-bucket/opper (any fsspec URL)",
                        "schema": {"type": ["string", "null"]},
                    },
                    "aws_conn_id": {
                        "label": "AWS connection id",
                        "description": "Optional Airflow connection (type aws) used to stage on S3",
                        "schema": {"type": ["string", "null"]},
                    },
                    "s3_endpoint_url": {
                        "label": "S3 endpoint URL",
                        "description": "S3-compatible endpoint (MinIO, moto, R2); empty for AWS",
                        "schema": {"type": ["string", "null"]},
                    },
                    "storage_options": {
                        "label": "Storage options (JSON)",
                        "description": "Extra fsspec storage options as a JSON object",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Base URL", "password": "API key"},
                    "placeholders": {
                        "host": "https://api.opper.ai",
                        "password": "op-...",
                        "extra": '{"staging_url": "s3://bucket/prefix"}',
                    },
                },
            }
        ],
    }
