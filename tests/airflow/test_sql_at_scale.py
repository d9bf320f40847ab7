"""The Airflow operator on a real PostgreSQL (and SQLite): the pre-flight refusal
happens before any job exists, ``create_destination_table=True`` creates the
table, and the task's peak memory does not follow the table size."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider.exceptions import SutroDestinationSchemaException
from tests.airflow.conftest import TICKETS, conn_json, make_context

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_conn(pg_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    import psycopg

    monkeypatch.setenv("AIRFLOW_CONN_PG", conn_json(**pg_server.airflow_conn()))
    with psycopg.connect(pg_server.dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS tickets, triaged, support_tickets_triaged")
        db.execute("CREATE TABLE tickets (id BIGINT, subject TEXT, body TEXT, customer_tier TEXT, "
                   "created_at TIMESTAMPTZ DEFAULT now())")
        with db.cursor() as cur:
            cur.executemany("INSERT INTO tickets (id, subject, body, customer_tier) VALUES (%s, %s, %s, %s)",
                            [(i, t["subject"], t["body"], t["customer_tier"]) for i, t in enumerate(TICKETS)])
    return pg_server


def _operator(**kwargs: Any) -> Any:
    from airflow_provider.operators.batch import SutroBatchFunctionOperator

    defaults: dict[str, Any] = dict(task_id="triage", function_name="ticket-triage", conn_id="pg",
                                    sql="SELECT id, subject, body, customer_tier FROM tickets ORDER BY id",
                                    id_column="id", destination_table="triaged", destination_conn_id="pg",
                                    deferrable=False, poll_interval=0.1, max_poll_interval=0.3)
    return SutroBatchFunctionOperator(**{**defaults, **kwargs})


def test_missing_destination_is_refused_before_any_job(pg_conn: Any, sutro_staged: Any) -> None:
    import gc

    import psycopg

    gc.disable()  # the traceback (kept in ``refused``) holds the source: only an explicit close releases it
    try:
        with pytest.raises(SutroDestinationSchemaException, match=r"destination table triaged does not exist.*"
                                                        r"create_destination_table=True") as refused:
            _operator().execute(make_context())
        assert sutro_staged.server.admin.job_count() == 0
        with psycopg.connect(pg_conn.dsn, autocommit=True) as db:  # the refused query left no open read (no lock)
            db.execute("SET lock_timeout = '5s'")
            db.execute("ALTER TABLE tickets ADD COLUMN probe INTEGER")
            db.execute("ALTER TABLE tickets DROP COLUMN probe")
        del refused
    finally:
        gc.enable()


def test_missing_columns_are_named_before_any_job(pg_conn: Any, sutro_staged: Any) -> None:
    import psycopg

    with psycopg.connect(pg_conn.dsn, autocommit=True) as db:  # the README's table, without the run columns
        db.execute("CREATE TABLE triaged (id BIGINT, subject TEXT, body TEXT, customer_tier TEXT, label TEXT, "
                   "confidence DOUBLE PRECISION, rationale TEXT)")
    with pytest.raises(SutroDestinationSchemaException) as err:
        _operator().execute(make_context())
    assert "triaged lacks the column(s) ['sutro_skip_reason', 'airflow_run_id']" in str(err.value)
    assert sutro_staged.server.admin.job_count() == 0
    with pytest.raises(SutroDestinationSchemaException, match=r"\['nope'\] are not columns of the enriched table"):
        _operator(destination_columns=["id", "nope"]).execute(make_context())
    assert sutro_staged.server.admin.job_count() == 0


def test_sqlite_destination_refused_before_any_job(sutro_staged: Any, sqlite_db: Path) -> None:
    with sqlite3.connect(sqlite_db) as db:
        db.execute("CREATE TABLE tickets (id INTEGER, subject TEXT, body TEXT, customer_tier TEXT)")
        db.execute("INSERT INTO tickets VALUES (1, 'Refund', 'Charged twice', 'pro')")
        db.execute("CREATE TABLE triaged (id INTEGER, label TEXT)")
    with pytest.raises(SutroDestinationSchemaException, match=r"triaged lacks the column\(s\) \['airflow_run_id'\]"):
        _operator(conn_id="warehouse", destination_conn_id="warehouse",
                  destination_columns=["id", "label"]).execute(make_context())
    assert sutro_staged.server.admin.job_count() == 0


def test_create_destination_table_then_retry_replaces_the_partition(pg_conn: Any, sutro_staged: Any) -> None:
    import psycopg

    for _ in range(2):  # try 1 creates the table; the retry reattaches and replaces the partition
        result = _operator(create_destination_table=True).execute(make_context(run_id="scheduled__1"))
        assert result["rows_out"] == len(TICKETS)
    with psycopg.connect(pg_conn.dsn) as db:
        types = dict(db.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 'triaged'").fetchall())
        rows = db.execute("SELECT id, label, confidence, airflow_run_id FROM triaged ORDER BY id").fetchall()
    assert types["id"] == "bigint" and types["confidence"] == "double precision" and types["label"] == "text"
    assert [r[0] for r in rows] == list(range(len(TICKETS)))
    assert all(r[1] and r[2] is not None and r[3] == "scheduled__1" for r in rows)
    assert sutro_staged.server.admin.job_count() == 1


def test_readme_quick_start_does_not_fail_after_paying(pg_conn: Any, sutro_staged: Any) -> None:
    """The README's operator (output_uri + destination_table, create_destination_table=True)."""
    import psycopg

    output = f"s3://{sutro_staged.bucket}/enriched/tickets/2026-11-20.parquet"
    result = _operator(destination_table="support_tickets_triaged", output_uri=output,
                       create_destination_table=True).execute(make_context())
    assert result["output_uri"] == output and result["rows_out"] == len(TICKETS)
    with psycopg.connect(pg_conn.dsn) as db:
        assert db.execute("SELECT count(*) FROM support_tickets_triaged").fetchone() == (len(TICKETS),)


CHILD = """
import json, sys
from tests.airflow.conftest import make_context
from airflow_provider.operators.batch import SutroBatchFunctionOperator

op = SutroBatchFunctionOperator(
    task_id="triage", function_name="ticket-triage", conn_id="pg", id_column="id",
    sql="SELECT id, subject, body, customer_tier FROM big ORDER BY id", destination_table="big_triaged",
    destination_conn_id="pg", create_destination_table=True, deferrable=False, poll_interval=0.2,
    max_poll_interval=0.5, options={"batch_size": 8192})
import resource
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
before = hwm()
result = op.execute(make_context(run_id=sys.argv[1]))
print(json.dumps({"rows": result["rows_out"], "before": before, "peak": hwm()}))
"""


def _task_peak(rows: int, pg: Any) -> dict[str, int]:
    import psycopg

    with psycopg.connect(pg.dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS big, big_triaged")
        db.execute("CREATE TABLE big AS SELECT g::bigint AS id, 'Refund request number ' || g AS subject, "
                   "'Customer ' || g || ' writes that the invoice of the Acme plan was charged twice' AS body, "
                   "(ARRAY['free','pro','enterprise'])[1 + g %% 3] AS customer_tier FROM generate_series(1, %s) g",
                   (rows,))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, f"mem_{rows}"], capture_output=True, text=True, env=env,
                          timeout=280, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rows"] == rows
    with psycopg.connect(pg.dsn) as db:
        assert db.execute("SELECT count(*) FROM big_triaged").fetchone() == (rows,)
    return out


@pytest.mark.slow
def test_task_peak_memory_does_not_follow_the_table_size(pg_conn: Any, sutro_staged: Any) -> None:
    """PostgreSQL -> operator -> PostgreSQL at 20k and 200k rows, each task in a fresh
    process. Batches of 8,192 rows, so that both sizes span many batches: the fixed
    working set (a few batches, 16 MiB upload parts per open file, ADBC's 4 MiB reads)
    is then reached at both sizes and the difference is what follows the table size
    (the old fetchall/executemany path grew +219 MiB at 200k rows)."""
    small = _task_peak(20_000, pg_conn)
    large = _task_peak(200_000, pg_conn)
    growth = large["peak"] - small["peak"]
    print(f"task peak RSS: 20k rows {small['peak'] / 2**20:.1f} MiB, 200k rows {large['peak'] / 2**20:.1f} MiB")
    assert growth < 50 * 2**20, f"peak RSS grew {growth / 2**20:.1f} MiB from 20k to 200k rows ({small}, {large})"
