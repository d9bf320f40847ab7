"""The one outcome type of a wait and the one mapping from outcomes to core errors."""

from __future__ import annotations

import pickle

import pytest

from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.errors import (
    SutroJobCancelledError,
    SutroJobError,
    SutroJobFailedError,
    SutroJobPollError,
    SutroJobTimeoutError,
    SutroServerError,
)
from sutro_providers.waiting.outcome import JobOutcome, outcome_error, outcome_of
from sutro_providers.waiting.polling import PollState

# written out here, not read from the table: breaking OUTCOME_ERRORS must fail these tests
EXPECTED = {
    JobOutcome.FAILED: SutroJobFailedError,
    JobOutcome.CANCELLED: SutroJobCancelledError,
    JobOutcome.TIMEOUT: SutroJobTimeoutError,
    JobOutcome.ERROR: SutroJobPollError,
}


def test_outcomes_are_their_wire_strings() -> None:
    assert [str(o) for o in JobOutcome] == ["success", "failed", "cancelled", "timeout", "error"]
    assert JobOutcome.SUCCESS == "success" and JobOutcome.SUCCESS.is_success
    assert not any(o.is_success for o in JobOutcome if o is not JobOutcome.SUCCESS)
    assert all(JobOutcome.parse(str(o)) is o for o in JobOutcome)
    for junk in ("weird", "SUCCESS", None, 1, ["success"]):
        assert JobOutcome.parse(junk) is None


@pytest.mark.parametrize("outcome", [o for o in JobOutcome if not o.is_success])
def test_every_outcome_maps_to_its_core_error(outcome: JobOutcome) -> None:
    exc = outcome_error(outcome, "why", {"job-1": JobStatus.SUCCEEDED, "job-2": "FAILED"})
    assert type(exc) is EXPECTED[outcome]
    assert isinstance(exc, SutroJobError) and str(exc) == "why"
    assert exc.job_ids == ["job-1", "job-2"] and exc.job_id == "job-1, job-2"
    assert exc.statuses == {"job-1": "SUCCEEDED", "job-2": "FAILED"}
    assert outcome_of(exc) is outcome
    again = pickle.loads(pickle.dumps(exc))  # crosses processes (Airflow, Dagster)
    assert type(again) is type(exc) and again.job_ids == exc.job_ids and again.statuses == exc.statuses


def test_success_raises_nothing() -> None:
    assert outcome_error(JobOutcome.SUCCESS, "fine", {"job-1": "SUCCEEDED"}) is None
    assert outcome_of(SutroJobError("not from a wait", job_id="job-1")) is None


def test_job_error_without_ids_list_reads_them_from_job_id() -> None:
    assert SutroJobFailedError("x", job_id="a, b").job_ids == ["a", "b"]
    assert SutroJobFailedError("x").job_ids == [] and SutroJobFailedError("x").job_id is None


def _job(job_id: str, status: str, reason: str | None = None) -> JobRecord:
    return JobRecord.model_validate({"job_id": job_id, "status": status, "failure_reason": reason})


@pytest.mark.parametrize(
    ("statuses", "outcome", "named"),
    [
        ({"a": "SUCCEEDED", "b": "SUCCEEDED"}, JobOutcome.SUCCESS, "2 Sutro job(s) succeeded"),
        ({"a": "SUCCEEDED", "b": "FAILED"}, JobOutcome.FAILED, "Sutro job b FAILED: GPU lost"),
        ({"a": "RUNNING", "b": "CANCELLING"}, JobOutcome.CANCELLED, "Sutro job b was cancelled"),
    ],
)
def test_poll_state_decides_with_the_enum(statuses: dict[str, str], outcome: JobOutcome, named: str) -> None:
    state = PollState(list(statuses))
    state.apply({j: _job(j, s, "GPU lost" if s == "FAILED" else None) for j, s in statuses.items()})
    result = state.result(now=0.0)
    assert result is not None and result.outcome is outcome and named in result.message
    error = result.error()
    assert (error is None) if outcome.is_success else type(error) is EXPECTED[outcome]


def test_poll_state_timeout_and_error_are_enum_members() -> None:
    state = PollState(["a"], deadline=10.0, max_consecutive_errors=0)
    state.apply({"a": _job("a", "RUNNING")})
    assert state.result(now=5.0) is None
    timeout = state.result(now=10.0)
    assert timeout is not None and timeout.outcome is JobOutcome.TIMEOUT
    assert type(timeout.error("late; cancelled")) is SutroJobTimeoutError
    state.failed_poll(SutroServerError("503", status_code=503))
    gave_up = state.result(now=0.0)
    assert gave_up is not None and gave_up.outcome is JobOutcome.ERROR and "503" in gave_up.message
