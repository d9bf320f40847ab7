"""Fixtures of the Dagster integration tests: a real local Sutro server, a moto S3
server and DuckDB files (no mocks)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "example_dags" / "dagster"
if str(EXAMPLE_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_DIR))

DAY = "2026-11-20"


@pytest.fixture
def make_resource(sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str) -> Callable[..., Any]:
    """Builds SutroResources on the (reset) local server, staging on a fresh moto bucket."""
    from dagster_sutro import SutroResource

    def make(**overrides: Any) -> SutroResource:
        settings: dict[str, Any] = dict(
            api_url=sutro_clean.url,
            api_key=sutro_clean.api_key,
            staging_url=f"s3://{sutro_s3_bucket}/staging",
            s3_endpoint_url=sutro_s3_server.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_region_name="us-east-1",
            poll_interval=0.2,
            max_poll_interval=0.5,
            read_timeout=10,
        )
        return SutroResource(**{**settings, **overrides})

    return make


@pytest.fixture
def sutro_resource(make_resource: Callable[..., Any]) -> Any:
    return make_resource()


@pytest.fixture(scope="session")
def instance() -> Any:
    """One test instance for the session (each run has its own run id)."""
    with dg.instance_for_test() as inst:
        yield inst


def day_window(day: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.fromisoformat(day)
    return start, start + dt.timedelta(days=1)


def job_names(server: Any) -> tuple[list[str], list[str]]:
    """(batch job names, cost-estimate job names) on the server, each job once."""
    names = server.admin.stats()["jobs"]["by_name"]
    assert all(count == 1 for count in names.values()), names
    return sorted(n for n in names if not n.endswith("est")), sorted(n for n in names if n.endswith("est"))
