"""The example DAG under a real Airflow: ``airflow dags test`` and ``airflow standalone``.

Everything is real: Airflow 3.3 CLI processes with a SQLite metadata DB in a temp
AIRFLOW_HOME, the local Sutro server, a moto S3 server and a SQLite warehouse. The
``airflow standalone`` test shares the session's one instance with the other
standalone tests (``tests/airflow/shared_standalone.py``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from airflow_provider.links import SutroJobLink
from sutro_providers.identity import RunIdentity
from tests.airflow.conftest import conn_json, sutro_conn_env
from tests.airflow.harness import (
    BIN,
    EXAMPLE_DAG,
    TEST_DAGS,
    all_log_text,
    base_env,
    prepare_home,
    query,
    run_cli,
    run_cli_parallel,
    run_cli_sequence,
    wait_for,
    xcom_values,
)
from tests.airflow.shared_standalone import XDIST_GROUP, SharedStandalone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SECRET_MARKERS = ("X-Amz-Signature", "X-Amz-Credential", "Signature=", "AWSAccessKeyId=")


def seed_tickets(path: Path, day: datetime) -> list[int]:
    """support_tickets with 3 tickets on ``day`` and one the day before and after;
    returns the ids of ``day``'s tickets."""
    rows = [
        (day - timedelta(hours=3), "Old", "Yesterday's ticket", "free"),
        (day + timedelta(hours=1), "Refund please", "I was charged twice", "pro"),
        (day + timedelta(hours=9), "App crashes", "Crash when opening settings", "free"),
        (day + timedelta(hours=23, minutes=59), "Dark mode", "Please add a dark mode", None),
        (day + timedelta(days=1, hours=2), "Tomorrow", "Not in the interval", "enterprise"),
    ]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE support_tickets (id INTEGER PRIMARY KEY, subject TEXT, body TEXT, "
                   "customer_tier TEXT, created_at TEXT)")
        db.executemany("INSERT INTO support_tickets (created_at, subject, body, customer_tier) VALUES (?, ?, ?, ?)",
                       [(t.strftime("%Y-%m-%d %H:%M:%S"), *rest) for t, *rest in rows])
    return [2, 3, 4]


def airflow_env(home: Path, server: Any, s3: Any, bucket: str, warehouse: Path) -> dict[str, str]:
    env = base_env(home, home / "dags")
    env["AIRFLOW_CONN_SUTRO_DEFAULT"] = sutro_conn_env(server, s3, bucket)
    env["AIRFLOW_CONN_SUTRO_SOURCE_DB"] = conn_json(conn_type="sqlite", host=str(warehouse))
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    return env


def triaged(warehouse: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(warehouse) as db:
        return db.execute("SELECT id, label, confidence, interval_start FROM support_tickets_triaged ORDER BY id").fetchall()


def assert_no_secrets(text: str, api_key: str, where: str) -> None:
    assert api_key not in text, f"the Sutro API key leaked into {where}"
    for marker in SECRET_MARKERS:
        assert marker not in text, f"a pre-signed URL ({marker}) leaked into {where}"


def test_airflow_dags_test_example_dag(migrated_home: Path, tmp_path: Path, sutro_clean: Any, sutro_s3_server: Any,
                                       sutro_s3_bucket: str) -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    warehouse = tmp_path / "warehouse.db"
    expected_ids = seed_tickets(warehouse, day)
    home = prepare_home(migrated_home, tmp_path / "home", [EXAMPLE_DAG])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)

    # A run at 2026-11-21 00:00 covers the interval [2026-11-20, 2026-11-21).
    proc = run_cli(["dags", "test", "sutro_ticket_enrichment", "2026-11-21"], env, timeout=300)
    output = proc.stdout + proc.stderr

    rows = triaged(warehouse)
    assert [r[0] for r in rows] == expected_ids  # every source row of the interval, once
    assert all(r[1] in {"billing", "bug", "feature_request", "account", "other"} for r in rows)
    assert all(r[2] is not None for r in rows)
    assert {r[3] for r in rows} == {"2026-11-20"}
    fs = sutro_s3_server.filesystem()
    outputs = fs.glob(f"{sutro_s3_bucket}/staging/enriched/support_tickets/*.parquet")
    # named by the day of the data (the interval start), not by {{ ds }} (the run's day, 2026-11-21)
    assert outputs == [f"{sutro_s3_bucket}/staging/enriched/support_tickets/2026-11-20.parquet"], outputs
    parquet = pq.read_table(outputs[0], filesystem=fs)
    assert sorted(parquet.column("id").to_pylist()) == expected_ids
    assert sutro_clean.admin.job_count() == 1
    # the "Sutro job" link, evaluated by the task instance resumed after deferring
    links = query(home, "SELECT value FROM xcom WHERE task_id = 'triage_tickets' AND key = ?",
                  (SutroJobLink().xcom_key,))
    values = [json.loads(v) if isinstance(v, str | bytes) else v for (v,) in links]
    assert len(values) == 1 and values[0].startswith(f"{sutro_clean.url}/jobs/"), values
    assert_no_secrets(output, sutro_clean.api_key, "the `airflow dags test` output")


@pytest.mark.xdist_group(XDIST_GROUP)
@pytest.mark.timeout(1200)  # the first test of the group also pays the shared instance's boot (wait_ready: 600 s)
def test_standalone_defer_and_crash_retry(airflow_standalone: SharedStandalone, sutro_clean: Any,
                                          sutro_s3_server: Any) -> None:
    """Real scheduler + LocalExecutor + triggerer + api-server + dag-processor (the
    session's shared instance: ``tests/airflow/shared_standalone.py``)."""
    shared = airflow_standalone
    airflow, home, bucket, warehouse = shared.airflow, shared.home, shared.bucket, shared.warehouse
    dags = ("sutro_ticket_enrichment", "sutro_e2e_crash")
    server = sutro_clean
    env = shared.env

    # Both runs at once (keeps the test short):
    # 1. unpaused, the example DAG gets the scheduled run of yesterday's interval;
    #    its task defers and the triggerer completes it;
    # 2. the crash DAG's task SIGKILLs itself after submit on try 1; try 2 reattaches.
    # The local jobs would finish in 0.3 s, before the operator's one status check,
    # and the task would then complete inline without deferring. Hold both jobs
    # until their task is seen DEFERRED, then release them.
    server.admin.set_faults([{"kind": "hold_job", "count": 2}])
    run_cli_parallel([["dags", "unpause", "sutro_ticket_enrichment"], ["dags", "unpause", "sutro_e2e_crash"],
                      ["dags", "trigger", "sutro_e2e_crash", "--run-id", "crash_1"]], env)
    deferred_seen: set[str] = set()
    deferred_since: dict[str, float] = {}

    def finished() -> dict[str, str] | None:
        for dag_id, task_id, run in query(home, "SELECT dag_id, task_id, run_id FROM task_instance "
                                                "WHERE state = 'deferred' AND dag_id IN (?, ?)", dags):
            # Release a few seconds after the deferral: resuming a task before the executor
            # has processed the deferring workload's exit trips an Airflow race under load
            # ("finished with state success, but the task instance's state attribute is running").
            if time.monotonic() - deferred_since.setdefault(dag_id, time.monotonic()) < 5:
                continue
            for job_id in xcom_values(home, dag_id, run).get((task_id, "sutro_job_ids"), []):
                server.admin.release(job_id)
                deferred_seen.add(dag_id)
        runs = dict(query(home, "SELECT dag_id, state FROM dag_run WHERE dag_id IN (?, ?)", dags))
        done = len(runs) == 2 and all(state in {"success", "failed"} for state in runs.values())
        return runs if done else None

    runs = wait_for("both runs to finish", finished, timeout=300, interval=2, alive=airflow.check_alive)
    tries = query(home, "SELECT dag_id, task_id, state, try_number FROM task_instance WHERE dag_id IN (?, ?) "
                        "ORDER BY dag_id, task_id", dags)
    assert runs == {"sutro_ticket_enrichment": "success", "sutro_e2e_crash": "success"}, (tries, airflow.tail())

    # Both tasks deferred; the triggerer completed them after the release.
    assert deferred_seen == {"sutro_ticket_enrichment", "sutro_e2e_crash"}
    # The example run: deferred, completed by the triggerer, every row landed once.
    (run_id,) = query(home, "SELECT run_id FROM dag_run WHERE dag_id = 'sutro_ticket_enrichment'")[0]
    rows = triaged(warehouse)
    assert [r[0] for r in rows] == shared.expected_ids and all(r[1] for r in rows)
    task_log = all_log_text(home / "logs" / "dag_id=sutro_ticket_enrichment")
    assert "Pausing task as DEFERRED" in task_log
    assert "succeeded; collecting results" in task_log  # execute_complete after the trigger event

    # The crashed run: killed on try 1, succeeded on try 2 with ONE Sutro job.
    assert ("sutro_e2e_crash", "triage", "success", 2) in tries
    crash_log = all_log_text(home / "logs" / "dag_id=sutro_e2e_crash")
    assert "e2e: killing the task process" in crash_log
    names = server.admin.stats()["jobs"]["by_name"]
    crash_prefix = "sp-" + RunIdentity.airflow("sutro_e2e_crash", "triage", "crash_1", -1).short
    assert sum(c for n, c in names.items() if n.startswith(crash_prefix)) == 1, names
    assert server.admin.job_count() == 2  # one per run, none for the killed attempt's retry
    out = pq.read_table(f"{bucket}/staging/e2e/crash_1.parquet", filesystem=sutro_s3_server.filesystem())
    assert sorted(out.column("id").to_pylist()) == [1, 2, 3, 4, 5]
    assert out.column("label").null_count == 0

    # No secret in any log under AIRFLOW_HOME nor in any XCom value.
    xcoms = {**xcom_values(home, "sutro_ticket_enrichment", run_id), **xcom_values(home, "sutro_e2e_crash", "crash_1")}
    assert len(xcoms[("triage_tickets", "sutro_job_ids")]) == 1
    assert xcoms[("triage", "return_value")]["rows_out"] == 5
    assert_no_secrets(all_log_text(home), server.api_key, "the Airflow logs")
    assert_no_secrets(repr(xcoms), server.api_key, "XCom")


def test_tasks_test_killed_while_deferred_resumes_into_the_same_job(migrated_home: Path, tmp_path: Path,
                                                                     sutro_clean: Any, sutro_s3_server: Any,
                                                                     sutro_s3_bucket: str) -> None:
    """SIGKILL `airflow tasks test` while its task is deferred: the task instance stays
    deferred, and the next `airflow tasks test` of the run resumes it into
    execute_complete without an event. That attempt reattaches to the job (no second
    job) and completes, instead of failing with "unexpected Sutro trigger event: None"."""
    warehouse = tmp_path / "warehouse.db"
    seed_tickets(warehouse, datetime(2026, 11, 20, tzinfo=UTC))
    home = prepare_home(migrated_home, tmp_path / "home", [TEST_DAGS / "sutro_e2e_resume.py"])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)
    # no scheduler: the triggered run stays queued
    run_cli_sequence([["dags", "reserialize"], ["dags", "trigger", "sutro_e2e_resume", "--run-id", "resume_1"]], env)
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    command = [str(BIN / "airflow"), "tasks", "test", "sutro_e2e_resume", "triage", "resume_1"]
    with (home / "first.log").open("wb") as out:
        first = subprocess.Popen(command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        # `tasks test` runs the trigger in line, the task instance queued with next_method set
        wait_for("the task to defer", lambda: "running trigger in line" in (home / "first.log").read_text(),
                 timeout=180, interval=0.5)
        time.sleep(1)  # the trigger waits on the held job
        assert first.poll() is None, (home / "first.log").read_text()[-4000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # the group this test started
        first.wait(30)
    (job_id,) = xcom_values(home, "sutro_e2e_resume", "resume_1")[("triage", "sutro_job_ids")]
    assert query(home, "SELECT next_method FROM task_instance WHERE dag_id = 'sutro_e2e_resume'") == [
        ("execute_complete",)]
    sutro_clean.admin.release(job_id)

    proc = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert "unexpected Sutro trigger event" not in output, output[-4000:]
    assert "reattaching to the run's jobs through its ledger" in output, output[-4000:]
    assert query(home, "SELECT state FROM task_instance WHERE dag_id = 'sutro_e2e_resume'") == [("success",)], \
        output[-4000:]
    assert sutro_clean.admin.job_count() == 1  # the killed attempt's job, reattached
    out = pq.read_table(f"{sutro_s3_bucket}/staging/e2e/resume_1.parquet", filesystem=sutro_s3_server.filesystem())
    assert sorted(out.column("id").to_pylist()) == [1, 2, 3, 4, 5] and out.column("label").null_count == 0


def _ledger(s3: Any, bucket: str, identity: RunIdentity) -> dict[str, Any] | None:
    from sutro_providers.options import StagingLocation
    from sutro_providers.staging.area import StagingArea

    area = StagingArea(StagingLocation(url=f"s3://{bucket}/staging", storage_options=s3.storage_options))
    path = area.ledger_path(identity)
    return json.loads(area.fs.cat_file(path)) if area.fs.exists(path) else None


def _claimed_without_job(ledger: dict[str, Any] | None) -> bool:
    return bool(ledger) and any(s["state"] == "intent" and s["holder"] and not s["job_id"] for s in ledger["shards"])


@pytest.mark.timeout(1200)  # two task processes, one held inside its create call until B waits for it
@pytest.mark.parametrize("on_concurrent_attempt", ["wait"])  # 'fail': tests/exactly_once
def test_two_task_processes_of_one_task_instance_pay_once(migrated_home: Path, tmp_path: Path, sutro_clean: Any,
                                                          sutro_s3_server: Any, sutro_s3_bucket: str,
                                                          on_concurrent_attempt: str) -> None:
    """A task process that looks dead but is not, and its replacement, both running the
    operator: `airflow tasks test` A holds the claim on the shard's job while its create
    call is held by the server (a ``hold_request`` fault, released by the test once B is
    seen waiting for A's job id, so the hold lasts as long as B needs to start and no
    longer); the task instance is cleared (what the
    scheduler does when it gives up on a worker: Airflow then lets another process start
    the task instance, which it refuses while A's try is marked running), and
    `airflow tasks test` B runs it. ONE job on the server: B waits for A's job id and
    reattaches, completing the task instance on that job, or with
    on_concurrent_attempt='fail' fails at once naming the holder."""
    from sutro_providers.client.sutro import SutroClient

    warehouse = tmp_path / "warehouse.db"
    seed_tickets(warehouse, datetime(2026, 11, 20, tzinfo=UTC))
    home = prepare_home(migrated_home, tmp_path / "home", [TEST_DAGS / "sutro_e2e_twice.py"])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)
    env["AIRFLOW_CONN_SUTRO_DEFAULT"] = sutro_conn_env(sutro_clean, sutro_s3_server, sutro_s3_bucket,
                                                      timeouts={"read": 400})
    env["SUTRO_E2E_ON_CONCURRENT_ATTEMPT"] = on_concurrent_attempt
    # no scheduler: the triggered run stays queued
    run_cli_sequence([["dags", "reserialize"], ["dags", "trigger", "sutro_e2e_twice", "--run-id", "twice_1"]], env)
    identity = RunIdentity.airflow("sutro_e2e_twice", "triage", "twice_1", -1)
    # A's create call waits in the server until the test releases it (B is then waiting for
    # A's job id); the job it creates stays RUNNING until released.
    sutro_clean.admin.set_faults([{"kind": "hold_request", "endpoint": "batch-inference", "count": 1},
                                  {"kind": "hold_job", "count": 1}])
    command = [str(BIN / "airflow"), "tasks", "test", "sutro_e2e_twice", "triage", "twice_1"]
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        with (home / f"{name}.log").open("wb") as out:
            procs[name] = subprocess.Popen(command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)

    def log(name: str) -> str:
        return (home / f"{name}.log").read_text(errors="replace")

    def alive() -> None:
        for name, proc in procs.items():
            if proc.poll() is not None and not (name == "b" and on_concurrent_attempt == "fail"):
                raise AssertionError(f"{name} exited {proc.returncode}:\n{log(name)[-4000:]}")

    try:
        start("a")
        wait_for("A's claim on the shard", lambda: _claimed_without_job(_ledger(sutro_s3_server, sutro_s3_bucket,
                                                                                 identity)),
                 timeout=300, interval=0.5, alive=alive)
        wait_for("A's create call to be held", lambda: sutro_clean.admin.held_requests() == {"batch-inference": 1},
                 timeout=300, interval=0.5, alive=alive)
        run_cli(["tasks", "clear", "sutro_e2e_twice", "-t", "triage", "-y"], env)  # A's try is given up on
        start("b")
        if on_concurrent_attempt == "fail":
            procs["b"].wait(240)
            assert procs["b"].returncode != 0, log("b")[-4000:]
            assert "another attempt of run" in log("b") and "holder" in log("b"), log("b")[-4000:]
            assert sutro_clean.admin.job_count() == 0  # B paid nothing; A is still inside its call
        else:
            wait_for("B to wait for A's job", lambda: "is creating its job; waiting for its job id" in log("b"),
                     timeout=300, interval=0.5, alive=alive)
            assert sutro_clean.admin.job_count() == 0
        # B has met A's claim while A is still inside its call: now let A's call go on
        assert sutro_clean.admin.held_requests() == {"batch-inference": 1}
        assert sutro_clean.admin.release_requests("batch-inference") == 1
        wait_for("A's job", lambda: sutro_clean.admin.job_count() == 1, timeout=300, interval=0.5, alive=alive)
        with SutroClient(sutro_clean.url, sutro_clean.api_key) as client:
            (job,) = list(client.iter_jobs())
        if on_concurrent_attempt == "wait":
            wait_for("B to defer on A's job", lambda: "running trigger in line" in log("b"), timeout=300,
                     interval=0.5, alive=alive)
        sutro_clean.admin.release(job.job_id)
        if on_concurrent_attempt == "wait":
            procs["b"].wait(300)
            assert procs["b"].returncode == 0, log("b")[-4000:]
            assert query(home, "SELECT state FROM task_instance WHERE dag_id = 'sutro_e2e_twice'") == [("success",)]
        procs["a"].wait(300)  # the given-up try finishes its own work (Airflow may refuse its state reports)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the groups this test started
                proc.wait(30)
    assert sutro_clean.admin.job_count() == 1  # one paid job for the two task processes
    assert f"submitted job {job.job_id}" in log("a")
    assert "submitted job" not in log("b")
    if on_concurrent_attempt == "wait":
        assert f"reattaching to job {job.job_id}" in log("b"), log("b")[-4000:]
    out = pq.read_table(f"{sutro_s3_bucket}/staging/e2e/twice_1.parquet", filesystem=sutro_s3_server.filesystem())
    assert out.column("id").to_pylist() == [1, 2, 3, 4, 5] and out.column("label").null_count == 0
    assert_no_secrets(log("a") + log("b"), sutro_clean.api_key, "the task logs")
