"""Fixtures of the Airflow provider tests.

Unit tests need no Airflow database: connections come from ``AIRFLOW_CONN_<ID>``
environment variables (``Connection(...).as_json()``) and AIRFLOW_HOME is a
private temp dir, set before Airflow is first imported.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

os.environ["AIRFLOW_HOME"] = os.environ.get("SUTRO_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="airflow-unit-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

FAST_RETRY = {"max_attempts": 2, "max_elapsed": 5, "initial_backoff": 0.05, "max_backoff": 0.2}


def conn_json(**kwargs: Any) -> str:
    from airflow.sdk import Connection

    if isinstance(kwargs.get("extra"), dict):
        kwargs["extra"] = json.dumps(kwargs["extra"])
    return Connection(conn_id="x", **kwargs).as_json()


def sutro_conn_env(server: Any, s3: Any | None = None, bucket: str | None = None, **extra: Any) -> str:
    extras: dict[str, Any] = {"retry": FAST_RETRY, **extra}
    if s3 is not None:
        extras.update(
            staging_url=f"s3://{bucket}/staging",
            s3_endpoint_url=s3.endpoint_url,
            storage_options=json.dumps({"key": "testing", "secret": "testing"}),
        )
    return conn_json(conn_type="sutro", host=server.url, password=server.api_key, extra=extras)


@pytest.fixture(scope="session")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated Airflow home, read only: one ``airflow db migrate`` for the whole run,
    shared by the xdist workers (in the run's temp root, beside their own temp dirs).
    Each e2e test copies its DB with :func:`tests.airflow.harness.prepare_home`."""
    from tests.airflow.harness import migrated_once

    base = tmp_path_factory.getbasetemp()  # an xdist worker's: <run's temp dir>/popen-gwN
    return migrated_once(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


@pytest.fixture(scope="session")
def _standalone_service(request: pytest.FixtureRequest, migrated_home: Path, sutro_server: Any,
                        sutro_s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.airflow import shared_standalone

    shared = shared_standalone.start(migrated_home, tmp_path_factory.mktemp("standalone"), sutro_server,
                                     sutro_s3_server)
    shared.users = sum("airflow_standalone" in item.fixturenames for item in request.session.items)
    try:
        yield shared
    finally:
        shared.stop()


@pytest.fixture
def airflow_standalone(_standalone_service: Any) -> Iterator[Any]:
    """The one ``airflow standalone`` of the session (:mod:`tests.airflow.shared_standalone`:
    its DAGs, bucket, warehouse), stopped after the last test that uses it. Mark such a test
    ``pytest.mark.xdist_group(shared_standalone.XDIST_GROUP)`` so that all of them run on
    one xdist worker, and check only the DAG runs of your own DAGs."""
    _standalone_service.airflow.check_alive()
    try:
        yield _standalone_service
    finally:
        _standalone_service.users -= 1
        if _standalone_service.users <= 0:
            _standalone_service.stop()


@pytest.fixture
def sutro_conn(sutro_clean: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``sutro_default`` pointing at the clean local server (no staging)."""
    monkeypatch.setenv("AIRFLOW_CONN_SUTRO_DEFAULT", sutro_conn_env(sutro_clean))
    return sutro_clean


@pytest.fixture
def sutro_staged(sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """``sutro_default`` with staging on a fresh moto bucket."""
    monkeypatch.setenv("AIRFLOW_CONN_SUTRO_DEFAULT", sutro_conn_env(sutro_clean, sutro_s3_server, sutro_s3_bucket))
    return SimpleNamespace(server=sutro_clean, s3=sutro_s3_server, bucket=sutro_s3_bucket)


@pytest.fixture
def sqlite_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A SQLite file behind connection ``warehouse``."""
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", conn_json(conn_type="sqlite", host=str(path)))
    yield path


class FakeTI:
    """The few TaskInstance members the operators use (unit tests run without a DB)."""

    def __init__(self, dag_id: str = "d", task_id: str = "t", run_id: str = "manual__1", map_index: int = -1) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = dag_id, task_id, run_id, map_index
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON
        self.xcoms[key] = value


def make_context(**ti_kwargs: Any) -> dict[str, Any]:
    return {"ti": FakeTI(**ti_kwargs)}


TICKETS = [
    {"subject": "Refund please", "body": "I was charged twice this month", "customer_tier": "pro"},
    {"subject": "App crashes", "body": "The app crashes when I open settings", "customer_tier": "free"},
    {"subject": "Dark mode", "body": "Could you add a dark mode?", "customer_tier": "enterprise"},
    {"subject": "Login", "body": "I cannot log in to my account", "customer_tier": None},
]
