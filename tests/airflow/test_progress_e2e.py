"""Progress lines on a real Airflow (``airflow standalone``: scheduler, LocalExecutor,
triggerer): a job held for (at least) 3 poll rounds shows them in the task log when
the worker waits, and in the trigger log when the task is deferred."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.harness import (
    TEST_DAGS,
    Standalone,
    prepare_home,
    query,
    run_cli_parallel,
    wait_for,
    xcom_values,
)
from tests.airflow.test_dags_e2e import airflow_env, assert_no_secrets, migrated_home, seed_tickets

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
__all__ = ["migrated_home"]  # the session fixture, shared with the other e2e module

DAG_ID, RUN_ID = "sutro_e2e_progress", "progress_1"
TASKS = ("on_worker", "deferred")


def polls(server: Any) -> int:
    return int(server.admin.stats()["requests"].get("jobs", 0))


def log_files(home: Path, task_id: str) -> dict[str, str]:
    folder = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={RUN_ID}" / f"task_id={task_id}"
    return {str(p.relative_to(folder)): p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()}


def progress_lines(text: str, job_id: str) -> list[str]:
    return re.findall(rf"(Sutro (?:progress|job {job_id})[^\n\"]*)", text)


def test_progress_lines_in_the_task_log_and_the_trigger_log(migrated_home: Path, tmp_path: Path, sutro_clean: Any,
                                                            sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    warehouse = tmp_path / "warehouse.db"
    seed_tickets(warehouse, datetime(2026, 11, 20, tzinfo=UTC))
    home = prepare_home(migrated_home, tmp_path / "home", [TEST_DAGS / "sutro_e2e_progress.py"])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)
    server = sutro_clean
    server.admin.set_faults([{"kind": "hold_job", "count": 2}])

    with Standalone(home, env) as airflow:
        airflow.wait_ready([DAG_ID], timeout=600)  # a loaded machine starts airflow slowly
        run_cli_parallel([["dags", "unpause", DAG_ID], ["dags", "trigger", DAG_ID, "--run-id", RUN_ID]], env)

        def both_waiting() -> dict[str, str] | None:
            xcoms = xcom_values(home, DAG_ID, RUN_ID)
            ids = {t: (xcoms.get((t, "sutro_job_ids")) or [None])[0] for t in TASKS}
            states = dict(query(home, "SELECT task_id, state FROM task_instance WHERE dag_id = ?", (DAG_ID,)))
            waiting = states.get("on_worker") == "running" and states.get("deferred") == "deferred"
            return ids if waiting and all(ids.values()) else None  # type: ignore[return-value]

        job_ids = wait_for("one task waiting on the worker, one deferred", both_waiting, timeout=300,
                           alive=airflow.check_alive)
        # Hold both jobs for 3 poll rounds each (0.5 s apart: 6 reads of jobs/{id} in all), and at
        # least 5 s (resuming a task right after it deferred trips an Airflow race under load).
        start, since = polls(server), time.monotonic()
        wait_for("3 poll rounds of each job", lambda: polls(server) >= start + 6 and time.monotonic() - since >= 5,
                 timeout=120, interval=0.5, alive=airflow.check_alive)
        held_polls = polls(server) - start
        for job_id in job_ids.values():
            server.admin.release(job_id)
        state = wait_for("the run to finish", lambda: dict(query(home, "SELECT dag_id, state FROM dag_run")).get(DAG_ID)
                         in {"success", "failed"} and dict(query(home, "SELECT dag_id, state FROM dag_run"))[DAG_ID],
                         timeout=300, interval=1, alive=airflow.check_alive)
        tries = query(home, "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", (DAG_ID,))
        assert state == "success", (tries, airflow.tail())

    assert held_polls >= 6
    files = {t: log_files(home, t) for t in TASKS}
    print({t: list(f) for t, f in files.items()})
    for task_id in TASKS:
        job_id = job_ids[task_id]
        text = "\n".join(files[task_id].values())
        lines = progress_lines(text, job_id)
        print(task_id, lines)
        held = [line for line in lines if line.startswith("Sutro progress: RUNNING")]
        assert len(held) >= 2, (task_id, lines)
        assert any("0 / 5 rows (0.0%)" in line for line in held), (task_id, lines)  # rows done: the progress stream
        assert any(re.match(rf"Sutro job {job_id} RUNNING -> SUCCEEDED: 5 / 5 rows \(100\.0%\); elapsed \d+s; "
                            r"tokens [\d,]+ in / [\d,]+ out; cost \$[\d.]+", line) for line in lines), (task_id, lines)
        assert_no_secrets(text, server.api_key, f"the logs of {task_id}")
