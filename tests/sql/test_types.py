"""Types survive a SQL read (:mod:`sutro_providers.inputs.sql`) and a load
(:mod:`sutro_providers.landing`) on real databases: the session's PostgreSQL, SQLite
files and DuckDB files. Every path is covered: ADBC, DuckDB's reader, DB-API
``fetchmany``; COPY, ADBC ingest, SQLite, DuckDB and ``executemany`` loads."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.database import Database
from sutro_providers.errors import SutroInputError
from sutro_providers.inputs.sql import open_sql
from sutro_providers.landing import (
    AdbcLoader,
    DbapiLoader,
    DuckDBLoader,
    PostgresCopyLoader,
    SqliteLoader,
    land,
)

UID = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
TS = dt.datetime(2026, 11, 20, 7, 8, 9, 123456, tzinfo=dt.UTC)
PG_COLUMNS = ("i INTEGER, b BIGINT, n NUMERIC(12,3), nn NUMERIC, bo BOOLEAN, d DATE, ts TIMESTAMPTZ, u UUID, "
              "j JSONB, t TEXT")
PG_ROWS = [
    (1, 2**40, decimal.Decimal("12345.678"), decimal.Decimal("0.1234567"), True, dt.date(2026, 11, 20), TS, UID,
     {"tags": ["a", "b"], "n": 1}, "héllo, \"quoted\"\nline"),
    (2, -5, decimal.Decimal("-0.001"), decimal.Decimal("7"), False, dt.date(1999, 12, 31),
     dt.datetime(2000, 1, 1, tzinfo=dt.UTC), uuid.UUID(int=0), [], ""),
    (None,) * 10,
]
PG_TYPES = {"i": pa.int32(), "b": pa.int64(), "n": pa.decimal128(12, 3), "nn": pa.decimal128(38, 7),
            "bo": pa.bool_(), "d": pa.date32(), "ts": pa.timestamp("us", tz="UTC"), "u": pa.string(),
            "j": pa.string(), "t": pa.string()}


def _expected_arrow(row: tuple[Any, ...]) -> list[Any]:
    return [str(v) if isinstance(v, uuid.UUID) else v for v in row]


@pytest.fixture
def pg(pg_server: Any) -> Any:
    import psycopg

    with psycopg.connect(pg_server.dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS src, dst")
        db.execute(f"CREATE TABLE src (k SERIAL, {PG_COLUMNS})")
        db.execute(f"CREATE TABLE dst ({PG_COLUMNS}, part TEXT)")
        with db.cursor() as cur:
            cur.executemany("INSERT INTO src (i, b, n, nn, bo, d, ts, u, j, t) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                            [(*r[:8], None if r[8] is None else json.dumps(r[8]), r[9]) for r in PG_ROWS])
    return pg_server


def _pg_databases(cluster: Any) -> dict[str, Database]:
    import psycopg
    import psycopg2

    return {
        "adbc": Database("postgresql", uri=cluster.uri),
        "psycopg2-fetchmany": Database("generic", connect=lambda: psycopg2.connect(cluster.dsn)),
        "psycopg3-fetchmany": Database("generic", connect=lambda: psycopg.connect(cluster.dsn)),
    }


@pytest.mark.parametrize("path", ["adbc", "psycopg2-fetchmany", "psycopg3-fetchmany"])
def test_postgres_read_keeps_types(pg: Any, path: str) -> None:
    reader = open_sql(_pg_databases(pg)[path], "SELECT i, b, n, nn, bo, d, ts, u, j, t FROM src ORDER BY k",
                      batch_size=1)
    assert {f.name: f.type for f in reader.schema} == PG_TYPES
    rows = [tuple(r.values()) for b in reader.batches() for r in b.to_pylist()]
    for got, want in zip(rows, PG_ROWS, strict=True):
        assert list(got[:8]) == _expected_arrow(want)[:8]
        assert (json.loads(got[8]) if got[8] is not None else None) == want[8]
        assert got[9] == want[9]
    assert sum(b.num_rows for b in reader.batches()) == 3  # a second pass runs the query again


def _write_parquet(reader: Any, path: Path) -> str:
    with pq.ParquetWriter(path, reader.schema) as writer:
        for batch in reader.batches():
            writer.write_batch(batch)
    return str(path)


@pytest.mark.parametrize("loader_kind", ["copy", "adbc", "executemany"])
def test_postgres_round_trip(pg: Any, loader_kind: str, tmp_path: Path) -> None:
    import psycopg
    import psycopg2

    reader = open_sql(Database("postgresql", uri=pg.uri), "SELECT i, b, n, nn, bo, d, ts, u, j, t FROM src ORDER BY k")
    uri = _write_parquet(reader, tmp_path / "enriched.parquet")
    loader = {"copy": PostgresCopyLoader(Database("postgresql", uri=pg.uri)),
              "adbc": AdbcLoader(Database("postgresql", uri=pg.uri)),
              "executemany": DbapiLoader(Database("generic", connect=lambda: psycopg2.connect(pg.dsn)))}[loader_kind]
    with psycopg.connect(pg.dsn, autocommit=True) as db:
        db.execute("INSERT INTO dst (i, part) VALUES (100, 'p1'), (200, 'other')")
    for _ in range(2):  # a replace, then the same again (idempotent)
        assert land(loader, "dst", uri, partition="p1", partition_column="part", batch_size=2) == 3
    with psycopg.connect(pg.dsn) as db:
        src = db.execute("SELECT i, b, n, nn, bo, d, ts, u, j, t FROM src ORDER BY k").fetchall()
        dst = db.execute("SELECT i, b, n, nn, bo, d, ts, u, j, t FROM dst WHERE part = 'p1' "
                         "ORDER BY i NULLS LAST").fetchall()
        other = db.execute("SELECT i FROM dst WHERE part = 'other'").fetchall()
    assert dst == src
    assert other == [(200,)]


SQLITE_ROWS = [(1, 2.5, "text, \"q\"", 1, "2026-11-20", b"\x00\x01"), (2, -1.0, "", 0, None, None),
               (None, None, None, None, None, None)]


@pytest.mark.parametrize("path", ["adbc", "sqlite3-fetchmany"])
@pytest.mark.parametrize("loader_kind", ["sqlite", "adbc"])
def test_sqlite_round_trip(tmp_path: Path, path: str, loader_kind: str) -> None:
    db_path = tmp_path / "w.db"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE src (k INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT, bo BOOLEAN, d TEXT, bl BLOB)")
        db.executemany("INSERT INTO src (i, f, t, bo, d, bl) VALUES (?,?,?,?,?,?)", SQLITE_ROWS)
        db.execute("CREATE TABLE dst (i INTEGER, f REAL, t TEXT, bo BOOLEAN, d TEXT, bl BLOB, part TEXT)")
        db.execute("INSERT INTO dst (i, part) VALUES (9, 'other')")
    database = (Database("sqlite", uri=str(db_path)) if path == "adbc"
                else Database("generic", connect=lambda: sqlite3.connect(db_path), placeholder="?"))
    reader = open_sql(database, "SELECT i, f, t, bo, d, bl FROM src ORDER BY k", batch_size=2)
    assert [f.type for f in reader.schema][:3] == [pa.int64(), pa.float64(), pa.string()]
    uri = _write_parquet(reader, tmp_path / "enriched.parquet")
    loader = SqliteLoader(Database("sqlite", uri=str(db_path))) if loader_kind == "sqlite" else AdbcLoader(
        Database("sqlite", uri=str(db_path)))
    assert land(loader, "dst", uri, partition="p", partition_column="part") == 3
    with sqlite3.connect(db_path) as db:
        got = db.execute("SELECT i, f, t, bo, d, bl FROM dst WHERE part = 'p' ORDER BY i IS NULL, i").fetchall()
        assert db.execute("SELECT i FROM dst WHERE part = 'other'").fetchall() == [(9,)]
    assert got == SQLITE_ROWS


def test_duckdb_round_trip(tmp_path: Path) -> None:
    import duckdb

    path = str(tmp_path / "w.duckdb")
    columns = "i INTEGER, b BIGINT, n DECIMAL(12,3), bo BOOLEAN, d DATE, ts TIMESTAMPTZ, u UUID, j JSON, t VARCHAR"
    with duckdb.connect(path) as db:
        db.execute("SET TimeZone = 'UTC'")
        db.execute(f"CREATE TABLE src (k INTEGER, {columns})")
        db.execute(f"CREATE TABLE dst ({columns}, part VARCHAR)")
        db.executemany("INSERT INTO src VALUES (?,?,?,?,?,?,?,?,?,?)",
                       [(k, *r[:4], r[5], r[6], str(r[7]) if r[7] else None,
                         json.dumps(r[8]) if r[8] is not None else None, r[9]) for k, r in enumerate(PG_ROWS)])
    reader = open_sql(Database("duckdb", uri=path), "SELECT i, b, n, bo, d, ts, u, j, t FROM src ORDER BY k")
    types = {f.name: f.type for f in reader.schema}
    assert types["n"] == pa.decimal128(12, 3) and types["u"] == pa.string() and types["j"] == pa.string()
    assert types["ts"] == pa.timestamp("us", tz="UTC") and types["d"] == pa.date32() and types["bo"] == pa.bool_()
    first = [r for b in reader.batches() for r in b.to_pylist()][0]  # consumed: DuckDB closes the result
    assert first["u"] == str(UID) and json.loads(first["j"]) == PG_ROWS[0][8] and first["ts"] == TS
    uri = _write_parquet(open_sql(Database("duckdb", uri=path), "SELECT i, b, n, bo, d, ts, u, j, t FROM src ORDER BY k"),
                         tmp_path / "enriched.parquet")
    assert land(DuckDBLoader(Database("duckdb", uri=path)), "dst", uri, partition="p", partition_column="part") == 3
    with duckdb.connect(path) as db:
        src = db.execute("SELECT i, b, n, bo, d, ts, u, j::VARCHAR, t FROM src ORDER BY k").fetchall()
        dst = db.execute("SELECT i, b, n, bo, d, ts, u, j::VARCHAR, t FROM dst ORDER BY i NULLS LAST").fetchall()
    assert dst == src


def test_a_later_batch_that_does_not_fit_names_column_and_row(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), ("three",)])
    reader = open_sql(Database("generic", connect=lambda: sqlite3.connect(path), placeholder="?"),
                      "SELECT x FROM t ORDER BY rowid", batch_size=2)
    with pytest.raises(SutroInputError, match=r"column 'x', row 2: 'three'"):
        list(reader.batches())


def test_driver_errors_are_wrapped_without_the_password(pg_server: Any) -> None:
    uri = f"postgresql://postgres:s3cretpw@{pg_server.host}:{pg_server.port}/postgres"
    with pytest.raises(SutroInputError) as err:
        open_sql(Database("postgresql", uri=uri), "SELECT * FROM no_such_table")
    assert "no_such_table" in str(err.value) and "s3cretpw" not in str(err.value)
