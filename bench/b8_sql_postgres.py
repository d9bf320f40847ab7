"""B8: a PostgreSQL table -> SutroBatchFunctionOperator(sql=, destination_table=) -> PostgreSQL.

A PostgreSQL 16 cluster (the pinned pgserver binaries, tests/pg_cluster.py), a moto
S3 server for staging and the local Sutro server. For each size a table
``src_<rows>`` (id, subject, body, customer_tier) is made with ``generate_series``;
then, each in a fresh process:

* the operator's task (``execute`` with ``create_destination_table=True``): wall
  time and peak RSS (VmHWM, the whole process), and the time of its load;
* read: the operator's source (``airflow_provider.sql.read_sql``: ADBC, normalised
  batches) iterated to the end, against the floor: ADBC's raw COPY-out-to-Arrow
  reader on the same query (interleaved);
* load: against the floor, a plain ``COPY ... FROM STDIN`` of the same enriched
  rows from CSV prepared in advance (the server's own cost of the rows: the same
  bytes our loader sends, the task's partition value included) into a fresh table
  like the task's destination; beside it (interleaved with the floor, ``--repeat``
  times) ``PostgresCopyLoader.replace`` alone from the task's enriched Parquet on S3
  into another fresh table of that shape ("load alone"), and the WAL each one wrote.

    .venv/bin/python bench/b8_sql_postgres.py                    # 1M and 10M rows
    .venv/bin/python bench/b8_sql_postgres.py --sizes 1000000
    .venv/bin/python bench/b8_sql_postgres.py --smoke            # 5,000 and 20,000 rows

Targets: task peak RSS <= 1 GiB; growth from the smaller to the larger size <= 20 B/row;
read <= 1.25x the COPY-out floor; load <= 1.25x the COPY floor.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    in_child,
    measure,
    mib,
    parser,
    preload,
    print_table,
    s3_server,
    sutro_server,
    verdict,
)

sys.path.insert(0, str(ROOT))
LIMIT, GROWTH, RATIO = 1 << 30, 20, 1.25
QUERY = "SELECT id, subject, body, customer_tier FROM src_{rows} ORDER BY id"


def make_table(dsn: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"DROP TABLE IF EXISTS src_{rows}")
        db.execute(f"CREATE TABLE src_{rows} AS SELECT g::bigint AS id, 'Refund request number ' || g AS subject, "
                   "'Customer ' || g || ' writes that the invoice of the Acme plan was charged twice' AS body, "
                   f"(ARRAY['free','pro','enterprise'])[1 + g % 3] AS customer_tier FROM generate_series(1, {rows}) g")
        db.execute(f"ANALYZE src_{rows}")


def task(rows: int) -> dict[str, Any]:
    """The Airflow task: the operator's execute, PostgreSQL to PostgreSQL."""
    import airflow_provider.sql as batch  # the operators land through airflow_provider.sql.write_rows
    from airflow_provider.operators.batch import SutroBatchFunctionOperator

    load = {}
    original = batch.write_rows

    def timed_write_rows(*args: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        out = original(*args, **kwargs)
        load["seconds"], load["uri"], load["partition"] = time.perf_counter() - started, args[2], kwargs["partition"]
        return out

    batch.write_rows = timed_write_rows
    op = SutroBatchFunctionOperator(
        task_id="b8", function_name="ticket-triage", conn_id="pg", sql=QUERY.format(rows=rows), id_column="id",
        destination_table=f"dst_{rows}", destination_conn_id="pg", create_destination_table=True,
        deferrable=False, poll_interval=0.5, max_poll_interval=2.0)
    ti = type("TI", (), {"dag_id": "b8", "task_id": "b8", "run_id": f"b8_{rows}_{time.time_ns()}", "map_index": -1,
                         "xcom_push": lambda self, key, value: None})()
    with measure() as out:
        manifest = op.execute({"ti": ti})  # type: ignore[arg-type]
    out["value"] = {"rows": manifest["rows_out"], "load_s": load["seconds"], "uri": load["uri"],
                    "partition": load["partition"], "absolute_peak": _hwm()}
    return out


def _hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def read_ours(rows: int) -> dict[str, Any]:
    from airflow_provider.sql import read_sql

    with measure() as out:
        n = sum(b.num_rows for b in read_sql("pg", QUERY.format(rows=rows)).batches())
    out["value"] = n
    return out


def read_floor(uri: str, rows: int) -> dict[str, Any]:
    import adbc_driver_postgresql.dbapi as adbc

    with measure() as out:
        with adbc.connect(uri) as conn, conn.cursor() as cur:
            cur.execute(QUERY.format(rows=rows))
            n = sum(b.num_rows for b in cur.fetch_record_batch())
    out["value"] = n
    return out


def prepare_csv(uri: str, storage_options: dict[str, Any], path: str, partition: str) -> int:
    """The enriched rows as the CSV our loader sends (not timed), plus the partition column
    with the task's value (the same bytes on the wire)."""
    from fsspec.core import url_to_fs

    from sutro_providers.landing.base import with_partition
    from sutro_providers.landing.postgres import csv_bytes
    from sutro_providers.parquet_io import parquet_batches

    fs, key = url_to_fs(uri, **storage_options)
    with open(path, "wb") as f:
        for batch in parquet_batches(fs, key, 65_536):
            f.write(csv_bytes(with_partition(batch, "airflow_run_id", partition)).to_pybytes())
    return os.path.getsize(path)


def _fresh_table(dsn: str, name: str, rows: int) -> tuple[list[str], int]:
    """A new empty table like the task's destination (no indexes: neither has any);
    returns its columns and the WAL position before the load."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"DROP TABLE IF EXISTS {name}")
        db.execute(f"CREATE TABLE {name} (LIKE dst_{rows})")
        names = [r[0] for r in db.execute(f"SELECT * FROM dst_{rows} LIMIT 0").description or []]
        lsn = db.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]  # type: ignore[index]
    return names, int(lsn)


class _Watch:
    """Beside one load: the most dirty + under-writeback page cache seen (``/proc/vmstat``),
    the most autovacuum workers seen, and the checkpoints the server started meanwhile
    (what makes a large load dearer per row than a small one besides the CPU)."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.stop = dsn, threading.Event()
        self.found = {"dirty_max": 0, "autovacuum_max": 0, "checkpoints": 0}

    def _checkpoints(self, db: Any) -> int:
        return int(db.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter").fetchone()[0])

    def _sample(self, db: Any) -> None:
        while not self.stop.wait(0.25):
            stat = dict(line.split() for line in Path("/proc/vmstat").read_text().splitlines())
            dirty = (int(stat.get("nr_dirty", 0)) + int(stat.get("nr_writeback", 0))) * 4096
            workers = int(db.execute("SELECT count(*) FROM pg_stat_activity "
                                     "WHERE backend_type = 'autovacuum worker'").fetchone()[0])
            self.found["dirty_max"] = max(self.found["dirty_max"], dirty)
            self.found["autovacuum_max"] = max(self.found["autovacuum_max"], workers)

    def __enter__(self) -> _Watch:
        import psycopg

        self.db = psycopg.connect(self.dsn, autocommit=True)
        self.before = self._checkpoints(self.db)
        self.thread = threading.Thread(target=self._sample, args=(self.db,), daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()
        self.found["checkpoints"] = self._checkpoints(self.db) - self.before
        self.db.close()


def _loaded(dsn: str, name: str, lsn: int) -> dict[str, Any]:
    """Rows, WAL bytes written since ``lsn`` and the table's size; drops the table."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        wal = int(db.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]) - lsn  # type: ignore[index]
        n, size = db.execute(f"SELECT count(*), pg_total_relation_size('{name}') FROM {name}").fetchone()  # type: ignore[misc]
        db.execute(f"DROP TABLE {name}")
    return {"rows": n, "wal": wal, "table": size}


def load_floor(dsn: str, rows: int, path: str) -> dict[str, Any]:
    import psycopg

    names, lsn = _fresh_table(dsn, f"floor_{rows}", rows)
    with _Watch(dsn) as watch, measure() as out:
        with psycopg.connect(dsn) as db, db.cursor() as cur, open(path, "rb") as f:
            cols = ", ".join(f'"{n}"' for n in names)
            with cur.copy(f"COPY floor_{rows} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
    out["value"] = {**_loaded(dsn, f"floor_{rows}", lsn), **watch.found}
    return out


def load_alone(dsn: str, uri: str, rows: int, parquet: str, storage_options: dict[str, Any],
               partition: str) -> dict[str, Any]:
    """Our loader alone (as the task calls it), from the task's enriched Parquet."""
    from sutro_providers.database import Database
    from sutro_providers.landing import LoadRequest, PostgresCopyLoader

    names, lsn = _fresh_table(dsn, f"alone_{rows}", rows)
    loader = PostgresCopyLoader(Database("postgresql", uri=uri))
    request = LoadRequest(f"alone_{rows}", [n for n in names if n != "airflow_run_id"], "airflow_run_id", partition,
                          parquet, storage_options)
    request.file_schema()  # not timed: the S3 client's set-up in this fresh process (the task has one already)
    with _Watch(dsn) as watch, measure() as out:
        loader.replace(request)
    out["value"] = {**_loaded(dsn, f"alone_{rows}", lsn), **watch.found}
    return out


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000000,10000000", help="comma-separated row counts")
    args = p.parse_args()
    sizes = [5_000, 20_000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    from tests.pg_cluster import pg_cluster

    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="b8-airflow-")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    results = []
    with pg_cluster() as pg, s3_server() as s3, sutro_server() as sutro:
        bucket = s3.create_bucket("bench-b8")
        os.environ["AIRFLOW_CONN_PG"] = json.dumps({**pg.airflow_conn()})
        os.environ["AIRFLOW_CONN_SUTRO_DEFAULT"] = json.dumps({
            "conn_type": "sutro", "host": sutro.url, "password": sutro.api_key,
            "extra": json.dumps({"staging_url": f"s3://{bucket}/staging", "s3_endpoint_url": s3.endpoint_url,
                                 "storage_options": json.dumps({"key": "testing", "secret": "testing"})})})
        preload("httpx", "s3fs", "psycopg", "adbc_driver_postgresql.dbapi", "airflow_provider.operators.batch")
        for rows in sizes:
            in_child(_make_table_child, pg.dsn, rows)
            t = in_child(task, rows)
            assert t.value["rows"] == rows, t.value
            floors, ours = [], []
            for _ in range(args.repeat or 1):
                floors.append(in_child(read_floor, pg.uri, rows))
                ours.append(in_child(read_ours, rows))
            assert all(m.value == rows for m in floors + ours)
            csv_path = os.path.join(tempfile.mkdtemp(prefix="b8-"), "floor.csv")
            size = prepare_csv(t.value["uri"], s3.storage_options, csv_path, t.value["partition"])
            load_floors, alone = [], []
            for _ in range(args.repeat or 1):
                load_floors.append(in_child(load_floor, pg.dsn, rows, csv_path))
                alone.append(in_child(load_alone, pg.dsn, pg.uri, rows, t.value["uri"], s3.storage_options,
                                      t.value["partition"]))
            assert all(m.value["rows"] == rows for m in load_floors + alone)
            os.remove(csv_path)
            read_f, read_o = min(m.seconds for m in floors), min(m.seconds for m in ours)
            load_f = min(load_floors, key=lambda m: m.seconds)
            load_a = min(alone, key=lambda m: m.seconds)
            results.append((rows, t, read_f, read_o, load_f.seconds, size, load_a, load_f))
            print(f"{rows:,} rows: load floor runs {[round(m.seconds, 3) for m in load_floors]} s, "
                  f"load alone runs {[round(m.seconds, 3) for m in alone]} s (CPU "
                  f"{[round(m.cpu_seconds, 3) for m in alone]} s, peak above baseline "
                  f"{[mib(m.rss_above) for m in alone]}); WAL floor {mib(load_f.value['wal'])}, alone "
                  f"{mib(load_a.value['wal'])}; table floor {mib(load_f.value['table'])}, alone "
                  f"{mib(load_a.value['table'])}; page cache dirty + writeback at most "
                  f"{[mib(m.value['dirty_max']) for m in load_floors]} (floor), "
                  f"{[mib(m.value['dirty_max']) for m in alone]} (alone); checkpoints during the loads "
                  f"{[m.value['checkpoints'] for m in load_floors]} / {[m.value['checkpoints'] for m in alone]}; "
                  f"autovacuum workers seen {[m.value['autovacuum_max'] for m in load_floors]} / "
                  f"{[m.value['autovacuum_max'] for m in alone]}", flush=True)
    rows_table = []
    for rows, t, read_f, read_o, load_f, size, load_a, _ in results:
        rows_table.append([rows, t.seconds, mib(t.value["absolute_peak"]), mib(t.rss_above), read_f, read_o,
                           read_o / read_f, load_f, t.value["load_s"], t.value["load_s"] / load_f,
                           f"{rows / t.value['load_s']:,.0f}", load_a.seconds, load_a.seconds / load_f, mib(size)])
    worst = max(t.value["absolute_peak"] for _, t, *_ in results)
    (r1, t1, *_), (r2, t2, *_) = results[0], results[-1]
    growth = (t2.value["absolute_peak"] - t1.value["absolute_peak"]) / max(1, r2 - r1)
    read_ratio = max(r[3] / r[2] for r in results)
    load_ratio = max(r[1].value["load_s"] / r[4] for r in results)
    alone_ratio = max(r[6].seconds / r[4] for r in results)
    print_table(
        f"B8 PostgreSQL -> SutroBatchFunctionOperator(sql=, destination_table=) -> PostgreSQL, sizes "
        f"{', '.join(f'{r:,}' for r in sizes)}",
        ["rows", "task wall s", "task peak RSS", "peak above baseline", "read floor s", "read ours s", "read ratio",
         "load floor s", "load ours s", "load ratio", "load rows/s", "load alone s", "alone ratio", "CSV size"],
        rows_table,
        [f"largest task peak RSS {mib(worst)} (target <= 1 GiB: {verdict(worst <= LIMIT)})",
         f"peak growth {growth:,.1f} B/row from {r1:,} to {r2:,} rows (target <= {GROWTH}: {verdict(growth <= GROWTH)})",
         f"read ratio {read_ratio:.2f} (target <= {RATIO}: {verdict(read_ratio <= RATIO)}); "
         f"load ratio {load_ratio:.2f} (target <= {RATIO}: {verdict(load_ratio <= RATIO)}; the loader alone, "
         f"interleaved with the floor: {alone_ratio:.2f})"],
    )


def _make_table_child(dsn: str, rows: int) -> dict[str, Any]:
    with measure() as out:
        make_table(dsn, rows)
    return out


if __name__ == "__main__":
    main()
