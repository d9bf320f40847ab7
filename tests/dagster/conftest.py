"""Fixtures of the Dagster integration tests: a real local Sutro server, a moto S3
server and DuckDB files (no mocks)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "example_dags" / "dagster"
if str(EXAMPLE_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_DIR))

DAY = "2026-11-20"


@pytest.fixture
def sutro_resource(sutro_clean: Any, s3_server: Any, s3_bucket: str) -> Any:
    """A SutroResource on the (reset) local server, staging on a fresh moto bucket."""
    from dagster_sutro import SutroResource

    return SutroResource(
        api_url=sutro_clean.url,
        api_key=sutro_clean.api_key,
        staging_url=f"s3://{s3_bucket}/staging",
        s3_endpoint_url=s3_server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_region_name="us-east-1",
        poll_interval=0.2,
        max_poll_interval=0.5,
        read_timeout=10,
    )


@pytest.fixture(scope="session")
def instance() -> Any:
    """One test instance for the session (each run has its own run id)."""
    with dg.instance_for_test() as inst:
        yield inst


def day_window(day: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.fromisoformat(day)
    return start, start + dt.timedelta(days=1)
