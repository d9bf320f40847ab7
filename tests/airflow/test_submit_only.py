"""Submit-only + sensor + collect, estimate-only, the deferred estimate wait,
cancel_on_kill, do_xcom_push, Batch API options and the retry table, through the
operators against the local server and moto S3 (no Airflow DB)."""

from __future__ import annotations

import inspect
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

import sutro_providers.errors as core_errors
from airflow_provider import exceptions as af
from airflow_provider.operators.batch import SutroBatchFunctionOperator
from airflow_provider.operators.collect import SutroCollectResultsOperator
from airflow_provider.sensors.sutro import SutroJobSensor
from airflow_provider.triggers.sutro import SutroJobTrigger
from sutro_providers.client.sutro import SutroClient
from tests.airflow.conftest import TICKETS, FakeTI
from tests.airflow.test_batch_operator import fire

pytestmark = pytest.mark.timeout(120)


class SharedTI(FakeTI):
    """A task instance of one DAG run whose XComs the other tasks of the run can pull."""

    def __init__(self, store: dict[tuple[str, str], Any], task_id: str, run_id: str = "manual__1") -> None:
        super().__init__(dag_id="d", task_id=task_id, run_id=run_id)
        self.store = store

    def xcom_push(self, key: str, value: Any) -> None:
        super().xcom_push(key, value)
        self.store[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int = -1) -> Any:
        return self.store.get((task_ids, key))


def submit_op(**kwargs: Any) -> SutroBatchFunctionOperator:
    defaults: dict[str, Any] = {"task_id": "submit", "function_name": "ticket-triage", "input_data": TICKETS,
                                "poll_interval": 0.1, "max_poll_interval": 0.3, "wait_for_completion": False}
    return SutroBatchFunctionOperator(**{**defaults, **kwargs})


def client_of(server: Any) -> SutroClient:
    return SutroClient(api_url=server.url, api_key=server.api_key)


def all_jobs(server: Any) -> list[Any]:
    with client_of(server) as client:
        return list(client.iter_jobs())


# ---------------------------------------------------------------- the retry table
# Written out here, not read from the table: changing AIRFLOW_EXCEPTIONS must fail this test.
NOT_RETRYABLE = {
    "SutroValidationError": af.SutroInputException, "SutroInputError": af.SutroInputException,
    "SutroQuotaExceededError": af.SutroInputException, "SutroCostLimitError": af.SutroCostLimitException,
    "SutroConfigurationError": af.SutroConfigurationException, "SutroNotFoundError": af.SutroConfigurationException,
    "SutroAuthenticationError": af.SutroAuthenticationException,
    "SutroLedgerConflictError": af.SutroInputChangedException,
    "SutroDestinationSchemaError": af.SutroDestinationSchemaException, "SutroResultsError": af.SutroResultsException,
}
RETRYABLE = {
    "SutroJobFailedError": af.SutroJobFailedException, "SutroJobCancelledError": af.SutroJobCancelledException,
    "SutroJobTimeoutError": af.SutroJobTimeoutException, "SutroJobPollError": af.SutroJobPollException,
    "SutroResultsIncompleteError": af.SutroTransientException, "SutroRateLimitError": af.SutroTransientException,
    "SutroServerError": af.SutroTransientException, "SutroConnectionError": af.SutroTransientException,
    "SutroResultsNotReadyError": af.SutroTransientException, "SutroStagingError": af.SutroTransientException,
    "SutroSubmissionOutcomeUnknownError": af.SutroTransientException,
    "SutroDestinationError": af.SutroTransientException, "SutroConcurrentAttemptError": af.SutroTransientException,
    "SutroRowsFailedError": af.SutroTransientException, "SutroJobError": af.SutroTransientException,
    "SutroError": af.SutroTransientException,
}


def test_every_core_error_maps_to_a_named_exception_retryable_or_not() -> None:
    classes = {n: c for n, c in inspect.getmembers(core_errors, inspect.isclass) if issubclass(c, core_errors.SutroError)}
    assert set(classes) == set(NOT_RETRYABLE) | set(RETRYABLE)  # a new core error must be classified here
    for name, cls in classes.items():
        mapped = af.airflow_exception(cls("why"))
        expected = NOT_RETRYABLE.get(name) or RETRYABLE[name]
        assert type(mapped) is expected, name
        assert isinstance(mapped, AirflowException)
        assert isinstance(mapped, AirflowFailException) is (name in NOT_RETRYABLE), name
        assert af.retryable(mapped) is (name in RETRYABLE)


def test_wrong_templated_option_is_a_configuration_error_before_any_job(sutro_staged: Any) -> None:
    op = submit_op(job_priority="{{ params.priority }}", wait_for_completion=True)
    op.job_priority = "5"  # as rendered
    with pytest.raises(af.SutroConfigurationException, match="job_priority"):
        op.execute({"ti": FakeTI()})
    assert sutro_staged.server.admin.job_count() == 0


def test_input_changed_is_not_retryable(sutro_staged: Any) -> None:
    submit_op().execute({"ti": FakeTI(task_id="submit")})
    with pytest.raises(af.SutroInputChangedException, match="changed since its earlier attempt"):
        submit_op(input_data=TICKETS[:2]).execute({"ti": FakeTI(task_id="submit")})


def test_cost_limit_is_not_retryable(sutro_staged: Any) -> None:
    with pytest.raises(af.SutroCostLimitException, match="above max_cost_usd"):
        submit_op(max_cost_usd=0.0, wait_for_completion=True).execute({"ti": FakeTI()})
    assert all(j.run_type == "COST_ESTIMATE" for j in all_jobs(sutro_staged.server))


# ---------------------------------------------------------------- submit only, sensor, collect
def _warehouse(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE triaged (subject TEXT, label TEXT, confidence REAL, airflow_run_id TEXT)")


@pytest.mark.parametrize("push", [True, False])
def test_submit_only_then_sensor_then_collect_lands_the_table(sutro_staged: Any, sqlite_db: Path, push: bool) -> None:
    _warehouse(sqlite_db)
    server, store = sutro_staged.server, {}
    server.admin.set_faults([{"kind": "hold_job", "count": 1}])
    submit = submit_op(destination_table="triaged", destination_conn_id="warehouse",
                       destination_columns=["subject", "label", "confidence"], do_xcom_push=push)
    submit_ti = SharedTI(store, "submit")
    manifest = submit.execute({"ti": submit_ti})  # returns at once although the job is held
    assert manifest["state"] == "submitted" and len(manifest["job_ids"]) == 1
    (job_id,) = manifest["job_ids"]
    assert store.get(("submit", "sutro_job_ids")) == ([job_id] if push else None)
    assert set(submit_ti.xcoms) == ({"sutro_job_ids", "sutro_job_url", "_link_SutroJobLink"} if push else set())
    assert (submit.operator_extra_links == ()) is (not push)  # nor the link's XCom at the end of the task

    # the sensor finds the job (XCom or ledger) and defers; its trigger never cancels
    sensor = SutroJobSensor(task_id="wait", submit_task_id="submit", deferrable=True, poke_interval=0.1, timeout=60)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({"ti": SharedTI(store, "wait")})
    trigger = info.value.trigger
    assert isinstance(trigger, SutroJobTrigger) and trigger.job_ids == [job_id] and trigger.cancel_on_kill is False

    collect = SutroCollectResultsOperator(task_id="land", submit_task_id="submit")
    with pytest.raises(af.SutroTransientException, match="have not finished"):  # retryable; nothing cancelled
        collect.execute({"ti": SharedTI(store, "land")})
    with client_of(server) as client:
        assert client.job_status(job_id) in {"QUEUED", "STARTING", "RUNNING"}  # held, not cancelled
    server.admin.release(job_id)
    assert sensor.execute_complete({"ti": SharedTI(store, "wait")}, fire(trigger)) == {job_id: "SUCCEEDED"}

    landed = collect.execute({"ti": SharedTI(store, "land")})
    assert landed["state"] == "succeeded" and landed["rows_out"] == len(TICKETS)
    with sqlite3.connect(sqlite_db) as db:
        rows = db.execute("SELECT subject, label, airflow_run_id FROM triaged ORDER BY subject").fetchall()
    assert sorted(r[0] for r in rows) == sorted(t["subject"] for t in TICKETS)
    assert all(r[1] for r in rows) and {r[2] for r in rows} == {"manual__1"}
    # a retry of the collect task replaces the partition: no duplicate
    collect.execute({"ti": SharedTI(store, "land")})
    with sqlite3.connect(sqlite_db) as db:
        assert db.execute("SELECT count(*) FROM triaged").fetchone() == (len(TICKETS),)
    assert server.admin.job_count() == 1


def test_submit_only_retry_reattaches_and_collect_writes_output_uri(sutro_staged: Any) -> None:
    output = f"s3://{sutro_staged.bucket}/out/submit-only.parquet"
    store: dict[tuple[str, str], Any] = {}
    first = submit_op(output_uri=output).execute({"ti": SharedTI(store, "submit")})
    again = submit_op(output_uri=output).execute({"ti": SharedTI(store, "submit")})  # an Airflow retry
    assert again["job_ids"] == first["job_ids"] and sutro_staged.server.admin.job_count() == 1
    SutroJobSensor(task_id="wait", submit_task_id="submit", poke_interval=0.1, timeout=60).execute(
        {"ti": SharedTI(store, "wait")})  # poke mode
    SutroCollectResultsOperator(task_id="land", submit_task_id="submit").execute({"ti": SharedTI(store, "land")})
    table = pq.read_table(output, filesystem=sutro_staged.s3.filesystem())
    assert table.num_rows == len(TICKETS) and table.column("label").null_count == 0


def test_sensor_and_collect_name_a_missing_submit_task(sutro_staged: Any) -> None:
    store: dict[tuple[str, str], Any] = {}
    with pytest.raises(af.SutroConfigurationException, match="has no Sutro run"):
        SutroJobSensor(task_id="wait", submit_task_id="nope").poke({"ti": SharedTI(store, "wait")})
    with pytest.raises(af.SutroConfigurationException, match="left no run plan"):
        SutroCollectResultsOperator(task_id="land", submit_task_id="nope").execute({"ti": SharedTI(store, "land")})
    with pytest.raises(ValueError, match="exactly one of job_ids or submit_task_id"):
        SutroJobSensor(task_id="wait")


def test_submit_only_failed_job_fails_the_collect(sutro_staged: Any) -> None:
    sutro_staged.server.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "GPU on fire"}])
    store: dict[tuple[str, str], Any] = {}
    submit_op().execute({"ti": SharedTI(store, "submit")})
    with pytest.raises(af.SutroJobFailedException, match="GPU on fire"):
        SutroJobSensor(task_id="wait", submit_task_id="submit", poke_interval=0.1, timeout=60).execute(
            {"ti": SharedTI(store, "wait")})


# ---------------------------------------------------------------- estimate only, deferred estimate
def test_estimate_only_returns_the_estimate_and_runs_no_job(sutro_staged: Any) -> None:
    ti = FakeTI()
    manifest = submit_op(estimate_only=True, wait_for_completion=True).execute({"ti": ti})
    assert manifest["state"] == "estimated" and manifest["cost_estimate_usd"] > 0
    assert manifest["job_ids"] == [] and len(manifest["estimate_job_ids"]) == 1
    jobs = all_jobs(sutro_staged.server)
    assert [j.run_type for j in jobs] == ["COST_ESTIMATE"]  # nothing paid: no run job
    assert ti.xcoms == {}


def test_estimate_only_deferrable_defers_on_the_estimate_then_returns_it(sutro_staged: Any) -> None:
    op = submit_op(estimate_only=True, deferrable=True)
    sutro_staged.server.admin.set_faults([{"kind": "hold_job", "count": 1}])
    with pytest.raises(TaskDeferred) as info:
        op.execute({"ti": FakeTI()})
    assert info.value.method_name == "execute_estimated"
    (estimate_id,) = info.value.trigger.job_ids
    sutro_staged.server.admin.release(estimate_id)
    manifest = op.execute_estimated({"ti": FakeTI()}, fire(info.value.trigger))
    assert manifest["state"] == "estimated" and manifest["estimate_job_ids"] == [estimate_id]
    assert [j.run_type for j in all_jobs(sutro_staged.server)] == ["COST_ESTIMATE"]


def test_max_cost_deferrable_waits_for_the_estimate_on_the_triggerer(sutro_staged: Any) -> None:
    server = sutro_staged.server
    server.admin.set_faults([{"kind": "hold_job", "count": 1}])  # the estimate job
    op = submit_op(max_cost_usd=100.0, deferrable=True, wait_for_completion=True)
    with pytest.raises(TaskDeferred) as info:  # no worker slot held while the estimate runs
        op.execute({"ti": FakeTI()})
    assert info.value.method_name == "execute_estimated"
    (estimate_id,) = info.value.trigger.job_ids
    assert [j.run_type for j in all_jobs(server)] == ["COST_ESTIMATE"]  # nothing submitted yet
    server.admin.release(estimate_id)
    server.admin.set_faults([{"kind": "hold_job", "count": 1}])  # the run job: defers again
    with pytest.raises(TaskDeferred) as again:
        op.execute_estimated({"ti": FakeTI()}, fire(info.value.trigger))
    assert again.value.method_name == "execute_complete"
    (run_id,) = again.value.trigger.job_ids
    assert run_id != estimate_id and server.admin.job_count() == 2
    server.admin.release(run_id)
    result = op.execute_complete({"ti": FakeTI()}, fire(again.value.trigger))
    assert result["rows_out"] == len(TICKETS) and result["cost_estimate_usd"] > 0


# ---------------------------------------------------------------- cancel_on_kill
@pytest.mark.parametrize("cancel", [True, False])
def test_cancel_on_kill(sutro_staged: Any, cancel: bool) -> None:
    server = sutro_staged.server
    server.admin.set_faults([{"kind": "hold_job", "count": 1}])
    op = submit_op(deferrable=True, wait_for_completion=True, cancel_on_kill=cancel)
    with pytest.raises(TaskDeferred) as info:
        op.execute({"ti": FakeTI()})
    trigger = info.value.trigger
    assert trigger.cancel_on_kill is cancel
    assert SutroJobTrigger(**trigger.serialize()[1]).cancel_on_kill is cancel  # survives the triggerer
    op.on_kill()  # the running task's kill
    import asyncio

    asyncio.run(trigger.on_kill())  # the deferred task's kill
    with client_of(server) as client:
        status = client.job_status(trigger.job_ids[0])
    assert (status in {"CANCELLING", "CANCELLED"}) is cancel, status


# ---------------------------------------------------------------- Batch API options
def test_sampling_params_and_job_priority_are_templated_and_coerced(sutro_staged: Any) -> None:
    op = submit_op(job_priority="{{ params.p }}", sampling_params={"temperature": "{{ params.t }}", "seed": 7})
    assert {"job_priority", "sampling_params"} <= set(op.template_fields)
    op.job_priority, op.sampling_params = "0", {"temperature": "0.2", "seed": 7}  # as rendered
    manifest = op.execute({"ti": FakeTI()})
    server = sutro_staged.server
    job = httpx.get(f"{server.url}/v1/jobs/{manifest['job_ids'][0]}", headers={"Authorization": f"Key {server.api_key}"},
                    timeout=10).json()["job"]
    assert job["job_priority"] == 0
    assert job["sampling_params"]["temperature"] == 0.2 and job["sampling_params"]["seed"] == 7
    op.sampling_params = json.dumps({"top_p": 0.5})  # a rendered JSON object
    assert op.build_options().sampling_params == {"top_p": 0.5}


def test_random_seed_per_input_reaches_the_server(sutro_staged: Any) -> None:
    rows = [{"subject": "Same", "body": "The very same ticket", "customer_tier": "pro"}] * 40
    store: dict[tuple[str, str], Any] = {}

    def labels(task_id: str, **kwargs: Any) -> set[str]:
        output = f"s3://{sutro_staged.bucket}/out/{task_id}.parquet"
        submit_op(task_id=task_id, input_data=rows, output_uri=output, wait_for_completion=True,
                  options={"confidence_threshold": 0.5}, **kwargs).execute({"ti": SharedTI(store, task_id)})
        return set(pq.read_table(output, filesystem=sutro_staged.s3.filesystem()).column("label").to_pylist())

    assert len(labels("same_seed")) == 1  # equal rows, one answer
    assert len(labels("seed_per_row", random_seed_per_input=True)) > 1  # each row its own seed


def test_truncate_rows_reaches_the_server(sutro_staged: Any) -> None:
    long_row = {"subject": "Long", "body": "x" * 600_000, "customer_tier": "pro"}  # > 131,072 tokens of 4 chars
    common = {"input_data": [long_row, *TICKETS], "wait_for_completion": True, "options": {"max_row_chars": 1_000_000}}
    with pytest.raises(af.SutroJobFailedException, match="context window"):
        submit_op(task_id="no_truncate", **common).execute({"ti": FakeTI(task_id="no_truncate")})
    result = submit_op(task_id="truncate", truncate_rows=True, **common).execute({"ti": FakeTI(task_id="truncate")})
    assert result["rows_out"] == len(TICKETS) + 1
