"""Progress lines on a real Airflow (``airflow dags test``: the tasks and, in line, the
trigger): a job held for 3 poll rounds shows them in the task's log when the worker
waits, and in the trigger's log when the task is deferred."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sutro_providers.client.sutro import SutroClient
from tests.airflow.harness import BIN, TEST_DAGS, all_log_text, prepare_home, query, xcom_values
from tests.airflow.test_dags_e2e import airflow_env, assert_no_secrets, seed_tickets

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

DAG_ID = "sutro_e2e_progress"
TASKS = ("on_worker", "deferred")


def polls(server: Any) -> int:
    return int(server.admin.stats()["requests"].get("jobs", 0))


def progress_lines(text: str, job_id: str) -> list[str]:
    return re.findall(rf"(Sutro (?:progress|job {job_id})[^\n\"]*)", text)


def hold_each_for_polls(server: Any, count: int, rounds: int, alive: Any, timeout: float = 600) -> list[str]:
    """Release each of ``count`` held jobs once it was polled ``rounds`` times; their ids, in order."""
    released: list[str] = []
    deadline = time.monotonic() + timeout
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        while len(released) < count:
            alive()
            fresh = [j.job_id for j in client.iter_jobs() if j.job_id not in released]
            if not fresh:
                assert time.monotonic() < deadline, f"only {len(released)} of {count} jobs were submitted"
                time.sleep(0.2)
                continue
            (job_id,) = fresh
            start = polls(server)
            while polls(server) < start + rounds:
                alive()
                assert time.monotonic() < deadline, f"fewer than {rounds} polls of {job_id}"
                time.sleep(0.1)
            server.admin.release(job_id)
            released.append(job_id)
    return released


def test_progress_lines_in_the_task_log_and_the_trigger_log(migrated_home: Path, tmp_path: Path, sutro_clean: Any,
                                                            sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    """``airflow dags test`` runs the two tasks one after the other: ``on_worker`` waits in
    the task, ``deferred`` defers and its trigger runs in line (``dags test`` has no
    separate triggerer). Each job is held until it was polled 3 times."""
    warehouse = tmp_path / "warehouse.db"
    seed_tickets(warehouse, datetime(2026, 11, 20, tzinfo=UTC))
    home = prepare_home(migrated_home, tmp_path / "home", [TEST_DAGS / "sutro_e2e_progress.py"])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)
    server = sutro_clean
    server.admin.set_faults([{"kind": "hold_job", "count": 2}])
    out = home / "dags_test.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen([str(BIN / "airflow"), "dags", "test", DAG_ID, "2026-11-21"], env=env,
                                cwd=home, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)

    def alive() -> None:
        assert proc.poll() is None, out.read_text(errors="replace")[-4000:]

    try:
        first, second = hold_each_for_polls(server, 2, 3, alive)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started
            proc.wait(30)
    output = out.read_text(errors="replace")
    states = query(home, "SELECT task_id, state FROM task_instance WHERE dag_id = ?", (DAG_ID,))
    assert proc.returncode == 0 and sorted(states) == [("deferred", "success"), ("on_worker", "success")], \
        (states, output[-4000:])
    ((run_id,),) = query(home, "SELECT run_id FROM dag_run WHERE dag_id = ?", (DAG_ID,))
    job_ids = {t: xcom_values(home, DAG_ID, run_id)[(t, "sutro_job_ids")][0] for t in TASKS}
    assert sorted(job_ids.values()) == sorted([first, second])
    text = output + all_log_text(home / "logs")
    # the tasks ran one after the other (in either order): each one's lines are those from its
    # job's first mention to the other job's
    split = output.index(second)
    parts = {t: output[split:] if job_ids[t] == second else output[:split] for t in TASKS}
    for task_id in TASKS:
        job_id = job_ids[task_id]
        lines = progress_lines(parts[task_id], job_id)
        print(task_id, lines)
        held = [line for line in lines if line.startswith("Sutro progress: RUNNING")]
        assert len(held) >= 2, (task_id, lines)
        # the worker's wait logs through the task's logger, the deferred wait through the trigger's
        logger = "[airflow_provider.triggers.sutro.SutroJobTrigger]" if task_id == "deferred" else "[airflow.task."
        assert all(logger in line for line in lines), (task_id, lines)
        assert any("0 / 5 rows (0.0%)" in line for line in held), (task_id, lines)  # rows done: the progress stream
        assert any(re.match(rf"Sutro job {job_id} RUNNING -> SUCCEEDED: 5 / 5 rows \(100\.0%\); elapsed \d+s; "
                            r"tokens [\d,]+ in / [\d,]+ out; cost \$[\d.]+", line) for line in lines), (task_id, lines)
    assert_no_secrets(text, server.api_key, "the airflow dags test output and logs")
