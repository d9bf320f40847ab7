"""Fixtures of the Dagster integration tests: a real local Sutro server, a moto S3
server and DuckDB files (no mocks)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class JobProcess:
    """What a process of its own running the example project's ``triage_job`` needs."""

    repo: Path  # its working directory
    home: Path  # its DAGSTER_HOME (also the test's instance directory)
    database: str  # the DuckDB file its IO manager writes (``TEST_DUCKDB``)
    env: dict[str, str]  # its environment


@pytest.fixture
def job_process(sutro_s3_server: Any, sutro_s3_bucket: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> JobProcess:
    """Staging on the test bucket and a DuckDB file, through the ``TEST_*`` variables the
    example job reads (``dg.EnvVar``), a DAGSTER_HOME, and the repo and the example folder
    on PYTHONPATH: the set-up of the tests that run ``triage_job`` in processes of their own."""
    repo = Path(__file__).resolve().parents[2]
    home = tmp_path / "dagster_home"
    home.mkdir()
    database = str(tmp_path / "w.duckdb")
    monkeypatch.setenv("TEST_STAGING_URL", f"s3://{sutro_s3_bucket}/staging")
    monkeypatch.setenv("TEST_S3_ENDPOINT", sutro_s3_server.endpoint_url)
    monkeypatch.setenv("TEST_DUCKDB", database)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": os.pathsep.join([str(repo), str(EXAMPLE_DIR)])}
    return JobProcess(repo, home, database, env)


@pytest.fixture
def sutro_resource(make_resource: Callable[..., Any]) -> Any:
    return make_resource()


@pytest.fixture(scope="session")
def instance() -> Any:
    """One test instance for the session (each run has its own run id). No compute-log
    capture: the tests read the event log, and the local capture's ``tail -F`` process
    was seen surviving its SIGTERM in the full suite (each step of a run materialized on
    a thread then waited 30 s in Dagster's ``_clean_up_subprocess``: 60 s per test)."""
    noop = {"module": "dagster._core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"}
    with dg.instance_for_test(overrides={"compute_logs": noop}) as inst:
        yield inst


def day_window(day: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.fromisoformat(day)
    return start, start + dt.timedelta(days=1)


def job_names(server: Any) -> tuple[list[str], list[str]]:
    """(batch job names, cost-estimate job names) on the server, each job once."""
    names = server.admin.stats()["jobs"]["by_name"]
    assert all(count == 1 for count in names.values()), names
    return sorted(n for n in names if not n.endswith("est")), sorted(n for n in names if n.endswith("est"))
