"""Provider registration, read by Airflow through the ``apache_airflow_provider`` entry point.

This module must stay import-light: Airflow calls it while discovering providers
(``airflow providers list``, the connection form, every component start). It
imports nothing from Airflow or from the rest of the package.

The ``sutro`` and ``opper`` connection types are declared with ``conn-fields`` and
``ui-field-behaviour`` so that Airflow 3.2+ builds the connection form without
importing the hook.
"""

from __future__ import annotations

from typing import Any

from sutro_providers.version import PACKAGE_NAME, package_version

INTEGRATION = "Sutro"
OPPER = "Opper"


def _field(label: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}


def _staging_fields(staging_description: str) -> dict[str, Any]:
    """The staging extras of the ``sutro`` and ``opper`` connection forms (read by
    :meth:`~airflow_provider.hooks.sutro.SutroHook.get_staging` for both)."""
    return {
        "staging_url": _field("Staging URL", staging_description),
        "aws_conn_id": _field("AWS connection id", "Optional Airflow connection (type aws) whose login/password "
                              "and extra endpoint_url / region_name are used to stage on S3"),
        "s3_endpoint_url": _field("S3 endpoint URL", "S3-compatible endpoint (MinIO, moto, R2); empty for AWS"),
        "storage_options": _field("Storage options (JSON)", "Extra fsspec storage options as a JSON object"),
    }


def _form(host_label: str, host_placeholder: str, key_placeholder: str) -> dict[str, Any]:
    """Host and password relabelled as the API's URL and key; schema, port and login hidden."""
    return {
        "hidden-fields": ["schema", "port", "login"],
        "relabeling": {"host": host_label, "password": "API key"},
        "placeholders": {"host": host_placeholder, "password": key_placeholder,
                         "extra": '{"staging_url": "s3://bucket/prefix"}'},
    }


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
        "versions": [package_version()],
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
                    "airflow_provider.operators.collect",
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
                "conn-fields": _staging_fields(
                    "Object-storage prefix where inputs are staged as Parquet and the run ledger is kept, "
                    "e.g. s3://my-bucket/sutro"),
                "ui-field-behaviour": _form("API URL", "https://your-deployment.sutro.sh", "sk_..."),
            },
            {
                "connection-type": "opper",
                "hook-class-name": "airflow_provider.hooks.opper.OpperHook",
                "hook-name": "Opper",
                "conn-fields": _staging_fields(
                    "Where inputs are staged and the results journal is kept, e.g. s3://my-bucket/opper "
                    "(any fsspec URL)"),
                "ui-field-behaviour": _form("Base URL", "https://api.opper.ai", "op-..."),
            }
        ],
    }
