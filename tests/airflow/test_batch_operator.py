"""SutroBatchFunctionOperator against the local server and moto S3 (no Airflow DB)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from airflow.sdk import AssetAlias
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airflow_provider.exceptions import (
    SutroInputException,
    SutroJobCancelledException,
    SutroJobFailedException,
    SutroJobPollException,
    SutroJobTimeoutException,
    SutroTriggerEventError,
)
from airflow_provider.operators.batch import SutroBatchFunctionOperator
from airflow_provider.triggers.sutro import SutroJobTrigger
from sutro_providers.client.sutro import SutroClient
from sutro_providers.errors import SutroInputError
from tests.airflow.conftest import TICKETS, make_context

pytestmark = pytest.mark.timeout(90)


def operator(**kwargs: Any) -> SutroBatchFunctionOperator:
    defaults: dict[str, Any] = {"task_id": "triage", "function_name": "ticket-triage", "poll_interval": 0.1,
                                "max_poll_interval": 0.3}
    return SutroBatchFunctionOperator(**{**defaults, **kwargs})


def defer(op: SutroBatchFunctionOperator, context: dict[str, Any]) -> SutroJobTrigger:
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    assert info.value.method_name == "execute_complete"
    assert isinstance(info.value.trigger, SutroJobTrigger)
    return info.value.trigger


def fire(trigger: SutroJobTrigger) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(first())


def test_defers_with_the_right_trigger_then_completes(sutro_staged: Any) -> None:
    output = f"s3://{sutro_staged.bucket}/out/triaged.parquet"
    op = operator(input_data=TICKETS, output_uri=output, deferrable=True, timeout=600, sutro_conn_id="sutro_default")
    context = make_context()
    trigger = defer(op, context)
    job_ids = context["ti"].xcoms["sutro_job_ids"]
    assert len(job_ids) == 1
    assert context["ti"].xcoms["sutro_job_url"] == f"{sutro_staged.server.url}/jobs/{job_ids[0]}"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider.triggers.sutro.SutroJobTrigger"
    assert kwargs["job_ids"] == job_ids and kwargs["sutro_conn_id"] == "sutro_default"
    assert kwargs["poll_interval"] == 0.1 and kwargs["max_poll_interval"] == 0.3
    assert kwargs["max_consecutive_errors"] == 5
    import time

    assert time.time() + 590 < kwargs["deadline"] <= time.time() + 600  # absolute deadline

    event = fire(trigger)
    assert event["status"] == "success"
    result = operator(input_data=TICKETS, output_uri=output, deferrable=True).execute_complete(make_context(), event)
    assert result["state"] == "succeeded" and result["rows_out"] == len(TICKETS)
    assert result["job_ids"] == job_ids
    table = pq.read_table(output.removeprefix("s3://"), filesystem=sutro_staged.s3.filesystem())
    assert table.num_rows == len(TICKETS)
    assert set(table.column_names) >= {"subject", "body", "label"}
    assert sutro_staged.server.admin.job_count() == 1


def test_retry_reattaches_instead_of_resubmitting(sutro_staged: Any) -> None:
    sutro_staged.server.admin.set_faults([{"kind": "hold_job", "count": 1}])
    first = defer(operator(input_data=TICKETS, deferrable=True), make_context())
    second = defer(operator(input_data=TICKETS, deferrable=True), make_context())  # try 2, same run
    assert first.job_ids == second.job_ids
    assert sutro_staged.server.admin.job_count() == 1
    other = defer(operator(input_data=TICKETS, deferrable=True), make_context(run_id="manual__2"))
    assert other.job_ids != first.job_ids  # another run is another job


def test_no_deferral_when_jobs_already_finished(sutro_staged: Any) -> None:
    trigger = defer(operator(input_data=TICKETS, deferrable=True), make_context())
    assert fire(trigger)["status"] == "success"
    result = operator(input_data=TICKETS, deferrable=True).execute(make_context())  # a retry: no TaskDeferred
    assert result["state"] == "succeeded" and result["rows_out"] == len(TICKETS)
    assert sutro_staged.server.admin.job_count() == 1


def test_non_deferrable_waits_on_the_worker(sutro_staged: Any) -> None:
    context = make_context()
    result = operator(input_data=TICKETS, deferrable=False).execute(context)
    assert result["state"] == "succeeded" and result["rows_out"] == len(TICKETS)
    assert context["ti"].xcoms["sutro_job_ids"] == result["job_ids"]


def test_empty_interval_is_a_noop_and_clears_the_run_rows(sutro_staged: Any, sqlite_db: Path) -> None:
    _warehouse(sqlite_db)
    with sqlite3.connect(sqlite_db) as db:  # a stale row of this run, from an earlier attempt
        db.execute("INSERT INTO triaged VALUES (1, 'stale', 'bug', 0.9, 'manual__1')")
    result = operator(sql="SELECT subject, body, customer_tier FROM tickets WHERE 1 = 0", conn_id="warehouse",
                      destination_table="triaged", destination_conn_id="warehouse",
                      destination_columns=["subject", "label", "confidence"], deferrable=True).execute(make_context(run_id="manual__1"))
    assert result["state"] == "noop" and result["job_ids"] == []
    assert sutro_staged.server.admin.job_count() == 0
    with sqlite3.connect(sqlite_db) as db:
        assert db.execute("SELECT count(*) FROM triaged").fetchone() == (0,)


def test_invalid_input_fails_before_any_job(sutro_staged: Any) -> None:
    with pytest.raises(SutroInputException) as info:  # not retryable: an AirflowFailException
        operator(input_data=[{"subject": "no body"}], deferrable=True).execute(make_context())
    assert isinstance(info.value, AirflowFailException) and isinstance(info.value.__cause__, SutroInputError)
    assert sutro_staged.server.admin.job_count() == 0


@pytest.mark.parametrize(
    ("status", "exc"),
    [("failed", SutroJobFailedException), ("cancelled", SutroJobCancelledException), ("error", SutroJobPollException)],
)
def test_execute_complete_maps_failures(sutro_staged: Any, status: str, exc: type[Exception]) -> None:
    event = {"status": status, "job_ids": ["job-9"], "message": "why", "statuses": {"job-9": "FAILED"}}
    with pytest.raises(exc, match="job-9") as info:
        operator(input_data=TICKETS).execute_complete(make_context(), event)
    assert info.value.job_ids == ["job-9"]


@pytest.mark.parametrize("event", [{}, {"status": "weird"}, "success"])
def test_execute_complete_rejects_bad_events(sutro_staged: Any, event: Any) -> None:
    with pytest.raises(SutroTriggerEventError):
        operator(input_data=TICKETS).execute_complete(make_context(), event)


def test_resumed_without_event_reattaches_and_defers_again(sutro_staged: Any) -> None:
    """A deferral resumed without its event (the waiting process was killed): the same
    attempt goes back to the ledger and waits on the job already paid for."""
    sutro_staged.server.admin.set_faults([{"kind": "hold_job", "count": 1}])
    first = defer(operator(input_data=TICKETS, deferrable=True), make_context())
    resumed, context = operator(input_data=TICKETS, deferrable=True), make_context()  # a new process
    with pytest.raises(TaskDeferred) as info:
        resumed.execute_complete(context, None)
    assert info.value.method_name == "execute_complete"
    assert info.value.trigger.job_ids == first.job_ids
    assert context["ti"].xcoms["sutro_job_ids"] == first.job_ids
    assert resumed.sutro_job_url == f"{sutro_staged.server.url}/jobs/{first.job_ids[0]}"
    assert sutro_staged.server.admin.job_count() == 1
    sutro_staged.server.admin.release(first.job_ids[0])
    result = operator(input_data=TICKETS, deferrable=True).execute_complete(make_context(), fire(info.value.trigger))
    assert result["state"] == "succeeded" and result["rows_out"] == len(TICKETS) and result["job_ids"] == first.job_ids


def test_resumed_without_event_completes_a_finished_job(sutro_staged: Any) -> None:
    output = f"s3://{sutro_staged.bucket}/out/resumed.parquet"
    trigger = defer(operator(input_data=TICKETS, output_uri=output, deferrable=True), make_context())
    assert fire(trigger)["status"] == "success"  # the event that never reached the task
    result = operator(input_data=TICKETS, output_uri=output, deferrable=True).execute_complete(make_context(), None)
    assert result["state"] == "succeeded" and result["rows_out"] == len(TICKETS)
    assert result["job_ids"] == trigger.job_ids
    assert pq.read_table(output.removeprefix("s3://"), filesystem=sutro_staged.s3.filesystem()).num_rows == len(TICKETS)
    assert sutro_staged.server.admin.job_count() == 1


def test_timeout_event_cancels_the_jobs(sutro_staged: Any) -> None:
    server = sutro_staged.server
    server.admin.set_faults([{"kind": "hold_job", "count": 1}])
    trigger = defer(operator(input_data=TICKETS, deferrable=True, timeout=1), make_context())
    event = fire(trigger)
    assert event["status"] == "timeout"
    with pytest.raises(SutroJobTimeoutException, match="cancelled job"):
        operator(input_data=TICKETS, timeout=1).execute_complete(make_context(), event)
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        assert client.job_status(trigger.job_ids[0]) in {"CANCELLING", "CANCELLED"}


def test_real_failure_end_to_end(sutro_staged: Any) -> None:
    sutro_staged.server.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "GPU on fire"}])
    trigger = defer(operator(input_data=TICKETS, deferrable=True), make_context())
    event = fire(trigger)
    with pytest.raises(SutroJobFailedException, match="GPU on fire"):
        operator(input_data=TICKETS).execute_complete(make_context(), event)


def test_on_kill_cancels(sutro_staged: Any) -> None:
    server = sutro_staged.server
    server.admin.set_faults([{"kind": "hold_job", "count": 1}])
    op = operator(input_data=TICKETS, deferrable=True)
    trigger = defer(op, make_context())
    op.on_kill()
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        assert client.job_status(trigger.job_ids[0]) in {"CANCELLING", "CANCELLED"}


def _warehouse(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, subject TEXT, body TEXT, customer_tier TEXT)")
        db.executemany("INSERT INTO tickets (subject, body, customer_tier) VALUES (:subject, :body, :customer_tier)",
                       TICKETS)
        db.execute("CREATE TABLE triaged (id INTEGER, subject TEXT, label TEXT, confidence REAL, airflow_run_id TEXT)")


def test_sql_to_destination_table_is_idempotent(sutro_staged: Any, sqlite_db: Path) -> None:
    _warehouse(sqlite_db)
    with sqlite3.connect(sqlite_db) as db:  # rows of another run must survive
        db.execute("INSERT INTO triaged VALUES (99, 'old', 'other', 0.5, 'older_run')")
    kwargs = dict(sql="SELECT id, subject, body, customer_tier FROM tickets", conn_id="warehouse", id_column="id",
                  destination_table="triaged", destination_conn_id="warehouse",
                  destination_columns=["id", "subject", "label", "confidence"], deferrable=False)
    for _ in range(2):  # the second execution is a retry of the same run
        result = operator(**kwargs).execute(make_context(run_id="scheduled__2026-11-20"))
        assert result["rows_out"] == len(TICKETS)
    with sqlite3.connect(sqlite_db) as db:
        rows = db.execute("SELECT id, label, airflow_run_id FROM triaged ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 99]
    assert all(r[1] for r in rows)
    assert {r[2] for r in rows} == {"scheduled__2026-11-20", "older_run"}
    assert sutro_staged.server.admin.job_count() == 1


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SutroBatchFunctionOperator(task_id="x", function_name="f", input_data=[], sql="select 1", conn_id="c")
    with pytest.raises(ValueError, match="conn_id"):
        SutroBatchFunctionOperator(task_id="x", function_name="f", sql="select 1")
    with pytest.raises(ValueError, match="destination_conn_id"):
        SutroBatchFunctionOperator(task_id="x", function_name="f", input_data=[], destination_table="t")


def test_literal_output_uri_is_an_asset_outlet() -> None:
    op = SutroBatchFunctionOperator(task_id="x", function_name="f", input_data=[], output_uri="s3://b/out.parquet")
    assert [a.uri for a in op.outlets] == ["s3://b/out.parquet"]
    templated = SutroBatchFunctionOperator(task_id="y", function_name="f", input_data=[],
                                           output_uri="s3://b/{{ ds }}.parquet")
    assert templated.outlets == [AssetAlias(f"sutro/{templated.dag_id}/y")]  # its events come at run time


def test_partition_value_replaces_rows_across_runs(sutro_staged: Any, sqlite_db: Path) -> None:
    """A new run of the same interval (new run id, new job) replaces the interval's rows."""
    _warehouse(sqlite_db)
    with sqlite3.connect(sqlite_db) as db:
        db.execute("ALTER TABLE triaged RENAME COLUMN airflow_run_id TO day")
    kwargs = dict(sql="SELECT id, subject, body, customer_tier FROM tickets", conn_id="warehouse", id_column="id",
                  destination_table="triaged", destination_conn_id="warehouse", partition_column="day",
                  partition_value="2026-11-20", destination_columns=["id", "subject", "label", "confidence"],
                  deferrable=False)
    for run_id in ("scheduled__2026-11-21", "manual__rerun"):
        operator(**kwargs).execute(make_context(run_id=run_id))
    with sqlite3.connect(sqlite_db) as db:
        assert db.execute("SELECT id, day FROM triaged ORDER BY id").fetchall() == [
            (i, "2026-11-20") for i in (1, 2, 3, 4)]
    assert sutro_staged.server.admin.job_count() == 2  # a new run is a new job; only retries reattach


@pytest.mark.parametrize("deferrable", [True, False])
def test_every_row_skipped_lands_the_rows_without_a_job(sutro_staged: Any, deferrable: bool) -> None:
    output = f"s3://{sutro_staged.bucket}/out/skipped-{deferrable}.parquet"
    rows = [{"subject": t["subject"], "body": None} for t in TICKETS]
    result = operator(input_data=rows, output_uri=output, deferrable=deferrable, on_invalid_rows="skip"
                      ).execute(make_context())  # no job: nothing to defer for
    assert result["rows_out"] == len(TICKETS) and result["rows_skipped"] == len(TICKETS) and result["job_ids"] == []
    table = pq.read_table(output.removeprefix("s3://"), filesystem=sutro_staged.s3.filesystem())
    assert table.num_rows == len(TICKETS) and table["sutro_skip_reason"].null_count == 0
    assert sutro_staged.server.admin.job_count() == 0
