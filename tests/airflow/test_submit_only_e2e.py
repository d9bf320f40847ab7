"""Non-retryable failures and the submit-only + sensor pattern under a real Airflow
(``airflow dags test``: Airflow 3.3 CLI processes, a SQLite metadata DB in a temp
AIRFLOW_HOME, the local Sutro server, moto S3, a SQLite warehouse)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.airflow.harness import (
    BIN,
    REPO,
    TEST_DAGS,
    all_log_text,
    prepare_home,
    query,
    wait_for,
    xcom_values,
)
from tests.airflow.test_dags_e2e import airflow_env, assert_no_secrets, seed_tickets, triaged

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
SUBMIT_AND_SENSE = REPO / "example_dags" / "airflow" / "sutro_submit_and_sense.py"


def test_input_error_fails_without_retry_although_retries_2(migrated_home: Path, tmp_path: Path, sutro_clean: Any,
                                                             sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    """The task fails before submitting, on its first try, and, as no Sutro job exists,
    nothing looks for one: the task log holds the input error and no error about a
    missing job-URL XCom (the "Sutro job" extra link is evaluated when the task ends)."""
    warehouse = tmp_path / "warehouse.db"
    seed_tickets(warehouse, datetime(2026, 11, 20, tzinfo=UTC))
    home = prepare_home(migrated_home, tmp_path / "home", [TEST_DAGS / "sutro_e2e_no_retry.py"])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)
    proc = subprocess.run([str(BIN / "airflow"), "dags", "test", "sutro_e2e_no_retry"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr + all_log_text(home)
    assert "needs input column 'body'" in output, output[-4000:]
    assert "SutroInputException" in output, output[-4000:]
    rows = query(home, "SELECT state, try_number FROM task_instance WHERE dag_id = 'sutro_e2e_no_retry'")
    assert rows == [("failed", 1)], (rows, output[-3000:])  # not up_for_retry, no second try
    assert query(home, "SELECT state FROM dag_run WHERE dag_id = 'sutro_e2e_no_retry'") == [("failed",)]
    assert sutro_clean.admin.job_count() == 0
    noise = [line for line in output.splitlines() if "XCom not found" in line or "sutro_job_url" in line]
    assert not noise, noise


def test_submit_only_task_and_deferred_sensor_land_the_table(migrated_home: Path, tmp_path: Path, sutro_clean: Any,
                                                            sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    warehouse = tmp_path / "warehouse.db"
    expected_ids = seed_tickets(warehouse, day)
    home = prepare_home(migrated_home, tmp_path / "home", [SUBMIT_AND_SENSE])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)
    server = sutro_clean
    server.admin.set_faults([{"kind": "hold_job", "count": 1}])  # the job runs until the sensor has deferred
    log = home / "dags-test.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "airflow"), "dags", "test", "sutro_submit_and_sense", "2026-11-21"],
                                env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    try:
        def alive() -> None:
            if proc.poll() is not None:
                raise AssertionError(f"dags test exited {proc.returncode}:\n{log.read_text()[-4000:]}")

        def sensor_deferred() -> list[Any]:  # `dags test` runs the trigger in line, next_method set
            return query(home, "SELECT run_id FROM task_instance WHERE task_id = 'wait_for_tickets' "
                               "AND next_method = 'execute_complete'")

        ((run_id,),) = wait_for("the sensor to defer", sensor_deferred, timeout=420, interval=0.5, alive=alive)
        assert "Pausing task as DEFERRED" in log.read_text(errors="replace")
        states = dict(query(home, "SELECT task_id, state FROM task_instance WHERE run_id = ?", (run_id,)))
        assert states["submit_tickets"] == "success", states  # the submit task ended while its job runs
        assert states.get("land_tickets") in (None, "none", "scheduled", "queued"), states
        (job_id,) = xcom_values(home, "sutro_submit_and_sense", run_id)[("submit_tickets", "sutro_job_ids")]
        server.admin.release(job_id)
        proc.wait(timeout=420)
    finally:
        if proc.poll() is None:
            proc.kill()  # the process this test started
            proc.wait(30)
    output = log.read_text(errors="replace")
    tries = query(home, "SELECT task_id, state, try_number FROM task_instance ORDER BY task_id")
    assert {t: s for t, s, _ in tries} == {"create_destination_table": "success", "submit_tickets": "success",
                                           "wait_for_tickets": "success", "land_tickets": "success"}, output[-4000:]
    rows = triaged(warehouse)
    assert [r[0] for r in rows] == expected_ids and all(r[1] for r in rows) and {r[3] for r in rows} == {"2026-11-20"}
    fs = sutro_s3_server.filesystem()
    out = pq.read_table(f"{sutro_s3_bucket}/staging/enriched/submit_and_sense/2026-11-20.parquet", filesystem=fs)
    assert sorted(out.column("id").to_pylist()) == expected_ids
    assert server.admin.job_count() == 1
    xcoms = xcom_values(home, "sutro_submit_and_sense", run_id)
    assert xcoms[("submit_tickets", "return_value")]["state"] == "submitted"
    assert xcoms[("land_tickets", "return_value")]["rows_out"] == len(expected_ids)
    assert_no_secrets(output + all_log_text(home), server.api_key, "the Airflow logs")
    assert_no_secrets(repr(xcoms), server.api_key, "XCom")


def test_do_xcom_push_false_pushes_nothing_and_the_pattern_still_lands(
        migrated_home: Path, tmp_path: Path, sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    warehouse = tmp_path / "warehouse.db"
    seed_tickets(warehouse, datetime(2026, 11, 20, tzinfo=UTC))
    home = prepare_home(migrated_home, tmp_path / "home", [TEST_DAGS / "sutro_e2e_no_xcom.py"])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)
    proc = subprocess.run([str(BIN / "airflow"), "dags", "test", "sutro_e2e_no_xcom"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=420)
    output = proc.stdout + proc.stderr
    states = dict(query(home, "SELECT task_id, state FROM task_instance WHERE dag_id = 'sutro_e2e_no_xcom'"))
    assert states == {"submit": "success", "wait": "success", "land": "success"}, (states, output[-4000:])
    assert query(home, "SELECT key FROM xcom WHERE dag_id = 'sutro_e2e_no_xcom' AND task_id = 'submit'") == []
    assert "from its run's ledger" in output + all_log_text(home)  # the sensor found the job without XCom
    out = pq.read_table(f"{sutro_s3_bucket}/staging/e2e/no_xcom.parquet", filesystem=sutro_s3_server.filesystem())
    assert sorted(out.column("id").to_pylist()) == [1, 2, 3, 4, 5] and out.column("label").null_count == 0
    assert sutro_clean.admin.job_count() == 1
