"""A load killed with SIGKILL in the middle leaves the old partition; the SQL of the
object-storage loaders (which cannot run here) is what the warehouses expect."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.database import Database
from sutro_providers.landing import BigQueryLoader, LoadRequest, RedshiftCopyLoader, SnowflakeCopyLoader

pytestmark = pytest.mark.timeout(180)

CHILD = """
import sys, time
from sutro_providers.database import Database
from sutro_providers.landing import LoadRequest, PostgresCopyLoader, SqliteLoader

class Stalling(LoadRequest):
    def batches(self):
        for i, batch in enumerate(super().batches()):
            yield batch
            if i == 2:  # three batches are in the COPY (or the transaction): stop here until killed
                print("LOADING", flush=True)
                time.sleep(600)

kind, uri, path = sys.argv[1:4]
loader = PostgresCopyLoader(Database("postgresql", uri=uri)) if kind == "postgres" else SqliteLoader(
    Database("sqlite", uri=uri))
loader.replace(Stalling("dst", ["id", "label"], "part", "p1", path, batch_size=1000))
"""


def _enriched(path: Path, rows: int) -> str:
    pq.write_table(pa.table({"id": pa.array(range(rows), pa.int64()),
                             "label": pa.array(["new"] * rows)}), path, row_group_size=1000)
    return str(path)


def _kill_mid_load(kind: str, uri: str, parquet: str, loading: Any) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, uri, parquet], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "LOADING", (line, proc.stderr.read() if proc.poll() is not None else "")
        loading()  # the load is really under way
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


def test_postgres_copy_killed_mid_load_keeps_the_old_partition(pg_server: Any, tmp_path: Path) -> None:
    import psycopg

    with psycopg.connect(pg_server.dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS dst")
        db.execute("CREATE TABLE dst (id BIGINT, label TEXT, part TEXT)")
        db.execute("INSERT INTO dst SELECT g, 'old', 'p1' FROM generate_series(1, 50) g")
        db.execute("INSERT INTO dst VALUES (0, 'other', 'p2')")

    def copying() -> None:
        with psycopg.connect(pg_server.dsn, autocommit=True) as db:
            active = db.execute("SELECT query FROM pg_stat_activity WHERE query LIKE 'COPY dst%'").fetchall()
        assert active, "no COPY in progress when the loader was killed"

    _kill_mid_load("postgres", pg_server.uri, _enriched(tmp_path / "e.parquet", 10_000), copying)
    with psycopg.connect(pg_server.dsn) as db:
        for _ in range(100):  # the server notices the dead client and aborts its transaction
            if not db.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY dst%'").fetchall():
                break
            time.sleep(0.1)
        rows = db.execute("SELECT label, part, count(*) FROM dst GROUP BY 1, 2 ORDER BY 2").fetchall()
    assert rows == [("old", "p1", 50), ("other", "p2", 1)]


def test_sqlite_load_killed_mid_load_keeps_the_old_partition(tmp_path: Path) -> None:
    db_path = tmp_path / "w.db"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE dst (id INTEGER, label TEXT, part TEXT)")
        db.executemany("INSERT INTO dst VALUES (?, 'old', 'p1')", [(i,) for i in range(50)])

    def locked() -> None:  # the loader holds the write lock (BEGIN IMMEDIATE, rows deleted and inserted)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(db_path, timeout=0).execute("BEGIN IMMEDIATE")

    _kill_mid_load("sqlite", str(db_path), _enriched(tmp_path / "e.parquet", 10_000), locked)
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT label, count(*) FROM dst GROUP BY 1").fetchall() == [("old", 50)]


def _request(tmp_path: Path) -> LoadRequest:
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"id": pa.array([1], pa.int64()), "label": ["x"], "confidence": [0.5],
                             "body": ["not loaded"]}), path)
    return LoadRequest("analytics.triaged", ["id", "label", "confidence"], "airflow_run_id", "scheduled__2026-11-20",
                       str(path))


def _no_connection() -> Any:
    raise AssertionError("statements() must not connect")


def test_snowflake_copy_into_statements(tmp_path: Path) -> None:
    request = _request(tmp_path)
    request.uri = "s3://lake/enriched/" + Path(str(request.uri)).name
    loader = SnowflakeCopyLoader(Database("generic", connect=_no_connection), stage="@lake_stage",
                                 stage_url="s3://lake/")
    object.__setattr__(request, "schema", lambda: pa.schema([("id", pa.int64()), ("label", pa.string()),
                                                              ("confidence", pa.float64())]))
    sql = loader.statements(request)
    assert sql[0] == ("BEGIN", ()) and sql[-1] == ("COMMIT", ())
    assert sql[1] == ('DELETE FROM analytics.triaged WHERE "airflow_run_id" = %s', ("scheduled__2026-11-20",))
    assert sql[2][0] == (
        'COPY INTO analytics.triaged ("id", "label", "confidence", "airflow_run_id") FROM (SELECT '
        '$1:"id"::NUMBER(38,0), $1:"label"::VARCHAR, $1:"confidence"::FLOAT, \'scheduled__2026-11-20\' '
        "FROM @lake_stage/enriched/e.parquet) FILE_FORMAT = (TYPE = PARQUET) FORCE = TRUE")
    with pytest.raises(ValueError, match="not under the stage URL"):
        loader.location("s3://elsewhere/e.parquet")


def test_redshift_copy_statements(tmp_path: Path) -> None:
    request = _request(tmp_path)
    loader = RedshiftCopyLoader(Database("generic", connect=_no_connection), iam_role="arn:aws:iam::1:role/load")
    sql = [s for s, _ in loader.statements(request)]
    assert sql[1] == ('CREATE TEMP TABLE sutro_load ("id" BIGINT, "label" VARCHAR(65535), '
                      '"confidence" DOUBLE PRECISION, "body" VARCHAR(65535))')
    assert sql[2] == f"COPY sutro_load FROM '{request.uri}' IAM_ROLE 'arn:aws:iam::1:role/load' FORMAT AS PARQUET"
    assert sql[3] == 'DELETE FROM analytics.triaged WHERE "airflow_run_id" = %s'
    assert sql[4] == ('INSERT INTO analytics.triaged ("id", "label", "confidence", "airflow_run_id") '
                      'SELECT "id", "label", "confidence", %s FROM sutro_load')
    assert (sql[0], sql[-2], sql[-1]) == ("BEGIN", "DROP TABLE sutro_load", "COMMIT")


def test_bigquery_load_data_script(tmp_path: Path) -> None:
    request = _request(tmp_path)
    (script, params), = BigQueryLoader(Database("generic", connect=_no_connection)).statements(request)
    assert params == {"partition": "scheduled__2026-11-20"}
    assert script.splitlines() == [
        f"LOAD DATA INTO TEMP TABLE sutro_load FROM FILES (format = 'PARQUET', uris = ['{request.uri}']);",
        "BEGIN TRANSACTION;",
        "DELETE FROM `analytics`.`triaged` WHERE `airflow_run_id` = %(partition)s;",
        "INSERT INTO `analytics`.`triaged` (`id`, `label`, `confidence`, `airflow_run_id`) "
        "SELECT `id`, `label`, `confidence`, %(partition)s FROM sutro_load;",
        "COMMIT TRANSACTION;",
    ]


def test_a_quote_in_the_partition_cannot_break_out() -> None:
    from sutro_providers.landing import literal

    assert literal("x'; DROP TABLE t; --") == "'x''; DROP TABLE t; --'"
