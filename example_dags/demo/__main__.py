"""Run the demo: ``python -m example_dags.demo`` (what ``make demo`` calls)."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from example_dags.demo.report import Summary, print_summary, summarize_rows
from example_dags.demo.seed import seed_sqlite
from example_dags.demo.stack import REPO, DemoStack
from sutro_providers import SutroClient

BIN = Path(sys.executable).parent
DAY = dt.date(2026, 11, 20)


def run(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
    """Run one orchestrator command; its output goes to ``log`` (shown on failure)."""
    with log.open("w") as out:
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise SystemExit(f"`{' '.join(cmd[:3])} ...` failed (exit {proc.returncode}); full log: {log}\n{tail}")


def new_jobs(client: SutroClient, before: set[str]) -> list[Any]:
    return [j for j in client.list_jobs(limit=100).jobs if j.job_id not in before]


def timed(stack: DemoStack, work: Callable[[], None]) -> tuple[float, list[Any]]:
    with SutroClient(stack.sutro.url, stack.sutro.api_key) as client:
        before = {j.job_id for j in client.list_jobs(limit=100).jobs}
        started = time.monotonic()
        work()
        return time.monotonic() - started, new_jobs(client, before)


def airflow_demo(stack: DemoStack, root: Path, rows: int) -> Summary:
    home = root / "airflow"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    warehouse = root / "warehouse.sqlite"
    seed_sqlite(warehouse, DAY, rows)
    env = stack.env() | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SUTRO_DEFAULT": stack.sutro_connection(),
        "AIRFLOW_CONN_SUTRO_SOURCE_DB": f'{{"conn_type": "sqlite", "host": "{warehouse}"}}',
        "SUTRO_EXAMPLE_POLL_INTERVAL": "1",
        "PYTHONPATH": str(REPO),
    }
    print("airflow: migrating the metadata database ...", flush=True)
    run([str(BIN / "airflow"), "db", "migrate"], env, home, home / "migrate.log")
    print(f"airflow: dags test sutro_ticket_enrichment for {DAY} (deferrable) ...", flush=True)
    logical = (DAY + dt.timedelta(days=1)).isoformat()  # the run at D+1 00:00 covers [D, D+1)
    wall, jobs = timed(stack, lambda: run([str(BIN / "airflow"), "dags", "test", "sutro_ticket_enrichment", logical],
                                          env, home, home / "dags-test.log"))
    with sqlite3.connect(warehouse) as db:
        table = db.execute("SELECT label, confidence FROM support_tickets_triaged").fetchall()
    outputs = stack.copy_outputs("staging/enriched", root / "output" / "airflow")
    return summarize_rows("Airflow", rows, table, jobs, wall,
                          [f"{warehouse} (table support_tickets_triaged)", *map(str, outputs)])


def dagster_demo(stack: DemoStack, root: Path, rows: int) -> Summary:
    home = root / "dagster"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    duckdb_path = root / "warehouse.duckdb"
    duckdb_path.unlink(missing_ok=True)
    project = REPO / "example_dags" / "dagster"
    env = stack.env() | {
        "DAGSTER_HOME": str(home),
        "SUTRO_EXAMPLE_DUCKDB": str(duckdb_path),
        "SUTRO_EXAMPLE_TICKETS_PER_DAY": str(rows),
        "SUTRO_POLL_INTERVAL": "1",
        "PYTHONPATH": f"{project}:{REPO}",
    }
    print(f"dagster: asset materialize support/tickets_triaged --partition {DAY} ...", flush=True)
    cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "sutro_example.definitions",
           "--select", "support/tickets,support/tickets_triaged", "--partition", DAY.isoformat()]
    wall, jobs = timed(stack, lambda: run(cmd, env, project, home / "materialize.log"))
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as db:
        table = db.execute("SELECT label, confidence FROM support.tickets_triaged").fetchall()
    return summarize_rows("Dagster", rows, table, jobs, wall, [f"{duckdb_path} (table support.tickets_triaged)"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000, help="tickets in the day to enrich (default 2000)")
    parser.add_argument("--root", type=Path, default=REPO / ".demo", help="where outputs and logs go")
    parser.add_argument("--only", choices=["airflow", "dagster"], help="run one orchestrator")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root / "sutro-data", ignore_errors=True)
    shutil.rmtree(root / "output", ignore_errors=True)
    started = time.monotonic()
    summaries = []
    print(f"starting the local Sutro server and a local S3 server (outputs under {root}) ...", flush=True)
    with DemoStack(root) as stack:
        if args.only in (None, "airflow"):
            summaries.append(airflow_demo(stack, root, args.rows))
        if args.only in (None, "dagster"):
            summaries.append(dagster_demo(stack, root, args.rows))
    for summary in summaries:
        print_summary(summary)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s; servers stopped; outputs and logs in {root}")


if __name__ == "__main__":
    main()
