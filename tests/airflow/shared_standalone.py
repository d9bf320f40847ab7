"""One ``airflow standalone`` for the e2e tests that need the real scheduler, executor,
triggerer, dag-processor and api-server.

Booting the five components takes 1-4 minutes of CPU on a loaded 2-core machine, so
the standalone tests share one instance (the ``airflow_standalone`` fixture of
``tests/airflow/conftest.py``) instead of booting one each:

* its home holds every DAG those tests run (:data:`DAG_FILES`, :data:`DAG_IDS`), its
  environment is the union of what they need (OpenLineage file transport, the
  real-time input, longer task timeouts for a loaded machine);
* the tests are in one xdist group (:data:`XDIST_GROUP`, with ``--dist loadgroup``)
  so they run one after the other on one worker, and each checks only its own DAG
  runs (filter by ``dag_id``);
* the instance stops as soon as the last test that asked for it has finished (not
  at the end of the session: its components poll the DB every second).

A test of its own DAGs: add the file to :data:`DAG_FILES`, its ids to
:data:`DAG_IDS`, the mark ``pytest.mark.xdist_group(XDIST_GROUP)`` and the fixture.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.airflow.conftest import TICKETS
from tests.airflow.harness import EXAMPLE_DAG, TEST_DAGS, Standalone, prepare_home

XDIST_GROUP = "airflow-standalone"
DAG_FILES = [EXAMPLE_DAG, TEST_DAGS / "sutro_e2e_crash.py", TEST_DAGS / "sutro_e2e_mapped.py",
             TEST_DAGS / "sutro_e2e_assets.py"]
DAG_IDS = ["sutro_ticket_enrichment", "sutro_e2e_crash", "sutro_e2e_mapped", "sutro_e2e_assets_producer",
           "sutro_e2e_assets_consumer"]


@dataclass
class SharedStandalone:
    """The running instance and what its DAGs read and write."""

    airflow: Standalone
    home: Path
    env: dict[str, str]
    bucket: str  # staging: s3://<bucket>/staging
    warehouse: Path  # SQLite: support_tickets (seeded for ``day``) and the tables the DAGs land
    day: datetime  # the day of the seeded tickets: yesterday (the example DAG's scheduled interval)
    expected_ids: list[int]  # the ids of ``day``'s tickets
    openlineage: Path  # the folder of the OpenLineage file transport
    realtime_input: str  # s3:// URL of the real-time task's input
    users: int = 0  # tests of this session still to use it
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return self.airflow.url

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.airflow.__exit__(None, None, None)


def start(migrated_home: Path, root: Path, server: Any, s3: Any) -> SharedStandalone:
    """Prepare the home under ``root`` and boot the instance (waits until every DAG is parsed)."""
    from tests.airflow.test_dags_e2e import airflow_env, seed_tickets

    now = datetime.now(UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=1)
    warehouse = root / "warehouse.db"
    expected_ids = seed_tickets(warehouse, day)  # tiers free, pro, free, none, enterprise
    bucket = s3.create_bucket("standalone-" + secrets.token_hex(6))
    realtime_input = f"s3://{bucket}/in/realtime.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": i, **t} for i, t in enumerate(TICKETS[:2])]),
                   realtime_input.removeprefix("s3://"), filesystem=s3.filesystem())
    home = prepare_home(migrated_home, root / "home", DAG_FILES)
    env = airflow_env(home, server, s3, bucket, warehouse)
    openlineage = home / "openlineage"
    openlineage.mkdir()
    env.update(
        SUTRO_E2E_REALTIME_INPUT=realtime_input,
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(openlineage / "event")}),
        AIRFLOW__OPENLINEAGE__NAMESPACE="e2e",
        # On a loaded machine the api-server answers a task's start late; the 5 s default
        # timeout fails the try before the task runs (retries absorb what remains).
        AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="60",
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300",  # a task parses its DAG file first (30 s by default)
        AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT="300",
        # Each file is parsed when it is new (or modified); the harness's 5 s would parse
        # the 4 files again every 5 s (about a core on a loaded machine) for nothing.
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="600",
    )
    airflow = Standalone(home, env).__enter__()
    shared = SharedStandalone(airflow, home, env, bucket, warehouse, day, expected_ids, openlineage, realtime_input)
    try:
        airflow.wait_ready(DAG_IDS, timeout=600)  # a loaded shared machine takes minutes to start the components
    except BaseException:
        shared.stop()
        raise
    return shared
