"""Re-execution attaches to the job already paid for; termination cancels it."""

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from sutro_example.tickets import DAILY, support_tickets

from dagster_sutro import SutroDuckDBIOManager, SutroResource, sutro_function_asset
from tests.dagster.conftest import DAY, JobProcess

TRIAGED = dg.AssetKey(["support", "tickets_triaged"])


def triage_job() -> dg.JobDefinition:
    """The job of these tests, its settings read from the environment at run time (``dg.EnvVar``).

    Not ``os.environ[...]`` here: Dagster keeps the last definition a reconstructable job
    built (``ReconstructableJob.get_definition`` is an ``lru_cache``), so a later test in the
    same process re-executing the same step selection gets the definition an earlier test
    built, with that test's DuckDB file (its table then landed in the other test's file)."""
    triaged = sutro_function_asset(function="ticket-triage", upstream=support_tickets, key=TRIAGED,
                                   partitions_def=DAILY, partition_expr="created_at")
    sutro = SutroResource(
        api_url=dg.EnvVar("SUTRO_API_URL"), api_key=dg.EnvVar("SUTRO_API_KEY"),
        staging_url=dg.EnvVar("TEST_STAGING_URL"), s3_endpoint_url=dg.EnvVar("TEST_S3_ENDPOINT"),
        aws_access_key_id="testing", aws_secret_access_key="testing", aws_region_name="us-east-1",
        poll_interval=0.2, max_poll_interval=0.5, read_timeout=180,  # test_dagster_concurrent delays a create call
    )
    job = dg.define_asset_job("triage", selection=[support_tickets.key, TRIAGED], executor_def=dg.in_process_executor)
    defs = dg.Definitions(assets=[support_tickets, triaged], jobs=[job], resources={
        "sutro": sutro, "io_manager": SutroDuckDBIOManager(database=dg.EnvVar("TEST_DUCKDB"))})
    return defs.resolve_job_def("triage")


def test_reexecution_attaches_to_the_submitted_job(sutro_env: Any, sutro_s3_server: Any, sutro_s3_bucket: str, instance: Any,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = str(tmp_path / "w.duckdb")
    monkeypatch.setenv("TEST_STAGING_URL", f"s3://{sutro_s3_bucket}/staging")
    monkeypatch.setenv("TEST_S3_ENDPOINT", sutro_s3_server.endpoint_url)
    monkeypatch.setenv("TEST_DUCKDB", database)
    # the first status poll after submit is rejected: the step fails with the job submitted
    sutro_env.admin.set_faults([{"kind": "status", "endpoint": "jobs", "status": 400, "count": 1}])
    job = dg.reconstructable(triage_job)
    with dg.execute_job(job, instance=instance, tags={"dagster/partition": DAY}) as first:
        assert not first.success
        assert first.get_step_success_events()[0].step_key == "support__tickets"
        (failure,) = first.get_step_failure_events()
        failure_metadata = failure.step_failure_data.user_failure_data.metadata
    assert sutro_env.admin.job_count() == 1

    options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
    with dg.execute_job(job, instance=instance, reexecution_options=options, tags={"dagster/partition": DAY}) as second:
        assert second.success
        run = instance.get_run_by_id(second.run_id)
        assert run.root_run_id == first.run_id
        assert [e.step_key for e in second.get_step_success_events()] == ["support__tickets_triaged"]
        metadata = second.asset_materializations_for_node("support__tickets_triaged")[0].metadata
    assert sutro_env.admin.job_count() == 1  # attached, not resubmitted
    with SutroResource(api_url=sutro_env.url, api_key=sutro_env.api_key, staging_url="s3://x").get_client() as client:
        (server_job,) = list(client.iter_jobs())
    assert metadata["sutro/job_ids"].value == server_job.job_id
    # the failed attempt already named the job it paid for, with its link
    assert failure_metadata["sutro/job_ids"].value == server_job.job_id
    assert failure_metadata["sutro/job/0"].value.endswith(f"/jobs/{server_job.job_id}")
    with duckdb.connect(database) as con:
        assert con.execute("select count(*), count(distinct ticket_id), count(label) from support.tickets_triaged"
                           ).fetchone() == (24, 24, 24)


def _interrupt_when_running(server: Any, stop: threading.Event) -> None:
    """SIGINT this process (what `dagster` does on run termination) once a job is RUNNING."""
    while not stop.is_set():
        if server.admin.stats()["jobs"].get("by_status", {}).get("RUNNING"):
            os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.1)


@pytest.mark.parametrize("cancel", [True, False], ids=["cancel", "keep-running"])
def test_termination_cancels_the_job(make_resource: Any, sutro_clean: Any, instance: Any,
                                     tmp_path: Path, cancel: bool) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    triaged = sutro_function_asset(function="ticket-triage", upstream=support_tickets, key=TRIAGED,
                                   partitions_def=DAILY, partition_expr="created_at")
    resource = make_resource(cancel_on_termination=cancel)
    stop = threading.Event()
    watcher = threading.Thread(target=_interrupt_when_running, args=(sutro_clean, stop), daemon=True)
    watcher.start()
    try:
        result = dg.materialize(
            [support_tickets, triaged], instance=instance, partition_key=DAY, raise_on_error=False,
            resources={"sutro": resource, "io_manager": SutroDuckDBIOManager(database=str(tmp_path / "w.duckdb"))},
        )
    finally:
        stop.set()
        watcher.join(5)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure and failure[0].step_key == "support__tickets_triaged"
    with resource.get_client() as client:
        (job,) = list(client.iter_jobs())
        status = client.job_status(job.job_id).value
        if not cancel:
            client.cancel_job(job.job_id)
    assert status == ("CANCELLED" if cancel else "RUNNING") or (cancel and status == "CANCELLING")
    logs = "\n".join(e.message for e in instance.all_logs(result.run_id) if e.message)
    assert ("cancelled Sutro job(s) " + job.job_id if cancel else "keep running") in logs


KILLED_RUN = """
import dagster as dg
from tests.dagster.test_dagster_recovery import triage_job
with dg.DagsterInstance.get() as instance:
    dg.execute_job(dg.reconstructable(triage_job), instance=instance, tags={"dagster/partition": %r})
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("then", ["reexecute", "cancel_run"])
def test_run_killed_mid_wait_is_reattached_or_cancelled(sutro_env: Any, sutro_s3_server: Any, sutro_s3_bucket: str,
                                                        job_process: JobProcess,
                                                        tmp_path: Path, then: str) -> None:
    """A run whose process is SIGKILLed while it waits: nothing cancels its job then. Its
    re-execution (same root run id) reattaches to that job; or cancel_run cancels it."""
    import subprocess
    import sys

    repo, home, database, env = job_process.repo, job_process.home, job_process.database, job_process.env
    sutro_env.admin.set_faults([{"kind": "hold_job", "count": 1}])
    with (tmp_path / "killed.log").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN % DAY], env=env, cwd=repo, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not sutro_env.admin.stats()["jobs"].get("by_status", {}).get("RUNNING"):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "the run never submitted its job"
            time.sleep(0.2)
        time.sleep(1)  # waiting (polling) on the held job
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started
        proc.wait(30)
    with SutroResource(api_url=sutro_env.url, api_key=sutro_env.api_key, staging_url="s3://x").get_client() as client:
        (job,) = list(client.iter_jobs())
        assert client.job_status(job.job_id).value == "RUNNING"  # orphaned: nothing will cancel it

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        (killed,) = instance.get_runs()
        assert killed.status == dg.DagsterRunStatus.STARTED  # the dead process never ended it
        instance.report_run_failed(killed)  # what run monitoring does for a dead run worker
        if then == "cancel_run":
            resource = SutroResource(
                api_url=sutro_env.url, api_key=sutro_env.api_key, staging_url=f"s3://{sutro_s3_bucket}/staging",
                s3_endpoint_url=sutro_s3_server.endpoint_url, aws_access_key_id="testing",
                aws_secret_access_key="testing", aws_region_name="us-east-1")
            assert resource.cancel_run(TRIAGED, DAY, killed.root_run_id or killed.run_id) == [job.job_id]
            assert resource.cancel_run("support/tickets_triaged", DAY, killed.run_id) == []  # idempotent
            with resource.get_client() as client:
                assert client.job_status(job.job_id).value in {"CANCELLING", "CANCELLED"}
            assert sutro_env.admin.job_count() == 1
            return
        sutro_env.admin.release(job.job_id)
        options = dg.ReexecutionOptions.from_failure(killed.run_id, instance)
        with dg.execute_job(dg.reconstructable(triage_job), instance=instance, reexecution_options=options,
                            tags={"dagster/partition": DAY}) as second:
            assert second.success
            assert instance.get_run_by_id(second.run_id).root_run_id == killed.run_id
            metadata = second.asset_materializations_for_node("support__tickets_triaged")[0].metadata
    assert sutro_env.admin.job_count() == 1  # reattached, not resubmitted
    assert metadata["sutro/job_ids"].value == job.job_id
    with duckdb.connect(database) as con:
        assert con.execute("select count(*), count(distinct ticket_id), count(label) from support.tickets_triaged"
                           ).fetchone() == (24, 24, 24)
