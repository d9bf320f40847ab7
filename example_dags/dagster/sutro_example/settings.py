"""Resources of the example, configured from the environment.

``SUTRO_API_URL`` / ``SUTRO_API_KEY``: the Sutro deployment (``sutro-local serve``
for a local run); ``SUTRO_STAGING_URL``: where inputs are staged (``s3://...``);
``SUTRO_S3_ENDPOINT_URL``: an S3-compatible endpoint (MinIO, moto), optional;
``SUTRO_EXAMPLE_DUCKDB``: the warehouse file (default ``warehouse.duckdb``);
``SUTRO_POLL_INTERVAL``: seconds between polls (default 5).
"""

from __future__ import annotations

import os

import dagster as dg

from dagster_sutro import SutroDuckDBIOManager, SutroResource


def sutro_resource() -> SutroResource:
    return SutroResource(
        api_url=dg.EnvVar("SUTRO_API_URL"),
        api_key=dg.EnvVar("SUTRO_API_KEY"),
        staging_url=dg.EnvVar("SUTRO_STAGING_URL"),
        s3_endpoint_url=os.environ.get("SUTRO_S3_ENDPOINT_URL") or None,
        poll_interval=float(os.environ.get("SUTRO_POLL_INTERVAL", "5")),
        max_poll_interval=30.0,
    )


def warehouse() -> SutroDuckDBIOManager:
    return SutroDuckDBIOManager(database=os.environ.get("SUTRO_EXAMPLE_DUCKDB", "warehouse.duckdb"))
