"""Real Airflow for the DAG tests: a migrated SQLite metadata DB in a temp
AIRFLOW_HOME, ``airflow dags test`` and ``airflow standalone`` subprocesses.

One ``airflow db migrate`` serves the whole test run (:func:`migrated_once`, the
``migrated_home`` fixture of ``tests/airflow/conftest.py``): every e2e test copies the
migrated DB into a home of its own (:func:`prepare_home`)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE_DAG = REPO / "example_dags" / "airflow" / "sutro_ticket_enrichment.py"
TEST_DAGS = Path(__file__).resolve().parent / "dags"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(home: Path, dags: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    port = free_port()
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        # Task processes reach the api-server here (the default is localhost:8080).
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="2",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="60",
        AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="1",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        SUTRO_EXAMPLE_POLL_INTERVAL="0.5",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(REPO),
    )
    return env


def migrate(home: Path) -> None:
    """``airflow db migrate`` into ``home`` (about 30 s)."""
    home.mkdir(parents=True, exist_ok=True)
    run_cli(["db", "migrate"], base_env(home, home / "dags"), timeout=240)


def migrated_once(root: Path) -> Path:
    """``root/airflow-template``, migrated by the first process of the test run that asks
    (an ``flock`` on ``root/airflow-template.lock``; the other xdist workers wait for it
    and reuse it). Tests never write into it: :func:`prepare_home` copies its DB."""
    home = root / "airflow-template"
    done = home / ".migrated"
    root.mkdir(parents=True, exist_ok=True)
    with (root / "airflow-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            if home.exists():
                shutil.rmtree(home)  # a migration that failed half-way
            migrate(home)
            done.touch()
    return home


def prepare_home(template: Path, home: Path, dag_files: list[Path]) -> Path:
    """A fresh AIRFLOW_HOME with a copy of the migrated DB and the given DAG files."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    shutil.copy(template / "airflow.db", home / "airflow.db")
    for f in dag_files:
        shutil.copy(f, home / "dags" / f.name)
    return home


def run_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["AIRFLOW_HOME"])
    if proc.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


_SEQUENCE = """
import json, sys
from airflow.__main__ import main
for argv in json.loads(sys.argv[1]):
    sys.argv = ["airflow", *argv]
    main()
"""


def run_cli_sequence(commands: list[list[str]], env: dict[str, str], timeout: float = 300) -> None:
    """Several ``airflow`` CLI commands one after the other in ONE interpreter, through the
    CLI's own entry point (``airflow.__main__.main``): the set-up steps of a test
    (``dags reserialize``, ``dags trigger``) without paying Airflow's start-up (seconds of
    imports) once per command. Stops at the first command that fails."""
    proc = subprocess.run([sys.executable, "-c", _SEQUENCE, json.dumps(commands)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=env["AIRFLOW_HOME"])
    if proc.returncode != 0:
        shown = "; ".join(" ".join(c) for c in commands)
        raise AssertionError(f"airflow {shown} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


def run_cli_parallel(commands: list[list[str]], env: dict[str, str], timeout: float = 180) -> None:
    """Several ``airflow`` CLI commands at once (each takes seconds just to start)."""
    procs = [subprocess.Popen([str(BIN / "airflow"), *args], env=env, cwd=env["AIRFLOW_HOME"], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for args in commands]
    for args, proc in zip(commands, procs, strict=True):
        out, _ = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{out[-4000:]}")


class Standalone:
    """``airflow standalone`` (api-server, scheduler, dag-processor, triggerer) as one process group."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "standalone.log"

    def __enter__(self) -> Standalone:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=self.env, cwd=self.home,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the group of the process this harness started
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}"

    def wait_ready(self, dag_ids: list[str], timeout: float = 240) -> None:
        """Until the api-server answers (tasks talk to it) and the DAGs are parsed."""
        import httpx

        def healthy() -> bool:
            try:
                return httpx.get(self.url + "/api/v2/monitor/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the api-server", healthy, timeout, alive=self.check_alive)
        marks = ",".join("?" * len(dag_ids))
        wait_for("the DAGs to be parsed",
                 lambda: len(query(self.home, f"SELECT dag_id FROM dag WHERE dag_id IN ({marks})", tuple(dag_ids)))
                 == len(dag_ids), timeout, alive=self.check_alive)

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"airflow standalone exited {self.proc.returncode}:\n{self.tail()}")


def query(home: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the metadata DB (read-only; the scheduler keeps writing)."""
    with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql, params).fetchall()


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0,
             alive: Callable[[], None] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        try:
            value = check()
        except sqlite3.OperationalError:  # locked or table not created yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def xcom_values(home: Path, dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    rows = query(home, "SELECT task_id, key, value FROM xcom WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
    return {(t, k): (json.loads(v) if isinstance(v, str | bytes) else v) for t, k, v in rows}


def all_log_text(root: Path) -> str:
    """Every file under ``root`` (an AIRFLOW_HOME: its logs, standalone output, config)."""
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*")
                     if p.is_file() and p.suffix not in {".db", ".db-wal", ".db-shm"} and p.name != "airflow.cfg")
