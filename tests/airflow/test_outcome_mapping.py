"""The Airflow side of the outcome table: trigger events on the wire, the core
errors they stand for, and the one table from those to Airflow exceptions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider.exceptions import (
    SutroInputException,
    SutroJobCancelledException,
    SutroJobFailedException,
    SutroJobPollException,
    SutroJobTimeoutException,
    SutroTransientException,
    SutroTriggerEventError,
    airflow_exception,
)
from airflow_provider.operators.batch import SutroBatchFunctionOperator
from airflow_provider.sensors.sutro import SutroJobSensor
from airflow_provider.triggers.sutro import event_payload, parse_event
from sutro_providers.client.models import JobStatus
from sutro_providers.errors import SutroInputError, SutroJobError
from sutro_providers.waiting.outcome import JobOutcome, outcome_error
from tests.airflow.conftest import TICKETS, make_context

# written out here, not read from the table: breaking AIRFLOW_EXCEPTIONS must fail these tests
EXPECTED = {
    JobOutcome.FAILED: SutroJobFailedException,
    JobOutcome.CANCELLED: SutroJobCancelledException,
    JobOutcome.TIMEOUT: SutroJobTimeoutException,
    JobOutcome.ERROR: SutroJobPollException,
}
FAILING = [o for o in JobOutcome if not o.is_success]


def _event(outcome: JobOutcome) -> dict[str, Any]:
    """A payload as the triggerer hands it over: through JSON."""
    payload = event_payload(outcome, ["job-1", "job-2"], "why", {"job-1": JobStatus.SUCCEEDED, "job-2": JobStatus.FAILED})
    return json.loads(json.dumps(payload))


@pytest.mark.parametrize("outcome", list(JobOutcome))
def test_events_round_trip_through_json(outcome: JobOutcome) -> None:
    event = _event(outcome)
    assert event["status"] == outcome.value and event["statuses"] == {"job-1": "SUCCEEDED", "job-2": "FAILED"}
    waited = parse_event(event)
    assert waited.outcome is outcome and waited.message == "why"
    assert waited.statuses == {"job-1": JobStatus.SUCCEEDED, "job-2": JobStatus.FAILED}


def test_an_event_without_statuses_reads_unknown() -> None:
    waited = parse_event(event_payload(JobOutcome.ERROR, ["job-1"], "no connection"))
    assert waited.statuses == {"job-1": JobStatus.UNKNOWN}


@pytest.mark.parametrize("event", [None, {}, {"status": "weird"}, {"status": "SUCCESS"}, "success", []])
def test_bad_events_are_rejected(event: Any) -> None:
    with pytest.raises(SutroTriggerEventError):
        parse_event(event)


@pytest.mark.parametrize("outcome", FAILING)
def test_every_core_outcome_error_has_its_airflow_exception(outcome: JobOutcome) -> None:
    core = outcome_error(outcome, "why", {"job-1": "FAILED"})
    assert core is not None
    mapped = airflow_exception(core)
    assert type(mapped) is EXPECTED[outcome]
    assert str(mapped) == "why" and mapped.job_ids == ["job-1"]
    assert airflow_exception(core, "other text").args == ("other text",)


def test_core_errors_outside_the_outcomes_map_by_their_class() -> None:
    assert type(airflow_exception(SutroInputError("bad column"))) is SutroInputException
    assert type(airflow_exception(SutroJobError("shard 0 was never submitted"))) is SutroTransientException


@pytest.mark.parametrize("outcome", FAILING)
def test_sensor_raises_the_table_exception_for_every_outcome(outcome: JobOutcome) -> None:
    sensor = SutroJobSensor(task_id="s", job_ids=["job-1", "job-2"])
    with pytest.raises(EXPECTED[outcome], match="why") as info:
        sensor.execute_complete({}, _event(outcome))
    assert info.value.job_ids == ["job-1", "job-2"]


def test_sensor_success_returns_the_statuses() -> None:
    sensor = SutroJobSensor(task_id="s", job_ids=["job-1"])
    event = json.loads(json.dumps(event_payload(JobOutcome.SUCCESS, ["job-1"], "ok", {"job-1": JobStatus.SUCCEEDED})))
    assert sensor.execute_complete({}, event) == {"job-1": "SUCCEEDED"}


@pytest.mark.parametrize("outcome", FAILING)
def test_operator_raises_the_table_exception_for_every_outcome(sutro_staged: Any, outcome: JobOutcome) -> None:
    op = SutroBatchFunctionOperator(task_id="triage", function_name="ticket-triage", input_data=TICKETS)
    with pytest.raises(EXPECTED[outcome]) as info:
        op.execute_complete(make_context(), _event(outcome))
    assert info.value.job_ids == ["job-1", "job-2"]
    text = str(info.value)
    if outcome is JobOutcome.TIMEOUT:  # cancelled on timeout (nothing of this run was running)
        assert text == "why; cancelled job(s) none still running"
    else:
        assert text == f"Sutro run failed [{outcome}] for job(s) job-1 (SUCCEEDED), job-2 (FAILED): why"
    assert isinstance(info.value.__cause__, SutroJobError)  # chained to the core error
