"""The SQL source and idempotent destination writes on a real PostgreSQL server
(the session's cluster, ``pg_server`` in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import TICKETS, conn_json, make_context

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def postgres(pg_server: Any) -> dict[str, Any]:
    return {"host": pg_server.host, "port": pg_server.port, "login": "postgres", "schema": "postgres"}


def test_postgres_source_and_destination(postgres: dict[str, Any], sutro_staged: Any,
                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import psycopg

    from airflow_provider.operators.batch import SutroBatchFunctionOperator

    dsn = f"host={postgres['host']} port={postgres['port']} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS tickets; DROP TABLE IF EXISTS triaged")
        db.execute("CREATE TABLE tickets (id SERIAL PRIMARY KEY, subject TEXT, body TEXT, customer_tier TEXT, "
                   "created_at TIMESTAMPTZ DEFAULT now())")
        with db.cursor() as cur:
            cur.executemany("INSERT INTO tickets (subject, body, customer_tier) VALUES (%s, %s, %s)",
                            [(t["subject"], t["body"], t["customer_tier"]) for t in TICKETS])
        db.execute("CREATE TABLE triaged (id INTEGER, subject TEXT, created_at TIMESTAMPTZ, label TEXT, "
                   "confidence DOUBLE PRECISION, airflow_run_id TEXT)")
        db.execute("INSERT INTO triaged (id, label, airflow_run_id) VALUES (99, 'other', 'another_run')")
    monkeypatch.setenv("AIRFLOW_CONN_PG", conn_json(conn_type="postgres", **postgres))
    kwargs: dict[str, Any] = dict(
        task_id="triage", function_name="ticket-triage", sql="SELECT * FROM tickets ORDER BY id", conn_id="pg",
        id_column="id", destination_table="triaged", destination_conn_id="pg",
        destination_columns=["id", "subject", "created_at", "label", "confidence"], deferrable=False,
        poll_interval=0.1, max_poll_interval=0.3,
    )
    for _ in range(2):  # try 1 and a retry of the same run
        result = SutroBatchFunctionOperator(**kwargs).execute(make_context(run_id="scheduled__pg"))
        assert result["rows_out"] == len(TICKETS)
    with psycopg.connect(dsn) as db:
        rows = db.execute("SELECT id, label, confidence, created_at IS NOT NULL, airflow_run_id "
                          "FROM triaged ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 99]
    assert all(r[1] and r[2] is not None and r[3] and r[4] == "scheduled__pg" for r in rows[:4]), rows
    assert sutro_staged.server.admin.job_count() == 1
