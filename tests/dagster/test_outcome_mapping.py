"""The Dagster side of the error table: every core error becomes a dg.Failure, and
the table says which allow a step retry."""

from __future__ import annotations

import dagster as dg
import pytest

from dagster_sutro import SutroResource
from dagster_sutro.execution import _failure
from sutro_providers.errors import (
    SutroAuthenticationError,
    SutroConfigurationError,
    SutroCostLimitError,
    SutroError,
    SutroInputError,
    SutroLedgerConflictError,
    SutroQuotaExceededError,
    SutroResultsError,
    SutroServerError,
    SutroStagingError,
    SutroValidationError,
)
from sutro_providers.manifest import Manifest, ShardInfo
from sutro_providers.waiting.outcome import JobOutcome, outcome_error

RESOURCE = SutroResource(api_url="https://sutro.invalid", api_key="sk-test-key", staging_url="s3://bucket/staging")

# written out here, not read from the core: breaking worth_retrying (sutro_providers.errors) must fail these tests
RETRYABLE_OUTCOMES = {JobOutcome.FAILED: True, JobOutcome.CANCELLED: True, JobOutcome.TIMEOUT: True, JobOutcome.ERROR: True}
RETRYABLE_ERRORS: dict[type[SutroError], bool] = {
    SutroInputError: False, SutroValidationError: False, SutroQuotaExceededError: False,
    SutroConfigurationError: False, SutroLedgerConflictError: False, SutroCostLimitError: False,
    SutroAuthenticationError: False, SutroResultsError: False,  # as Airflow: a retry would fail the same way
    SutroServerError: True, SutroStagingError: True,
    SutroError: True,
}


@pytest.mark.parametrize("outcome", [o for o in JobOutcome if not o.is_success])
def test_every_outcome_becomes_a_failure(outcome: JobOutcome) -> None:
    core = outcome_error(outcome, "why it stopped", {"job-1": "FAILED"})
    assert core is not None
    failure = _failure(core, None, RESOURCE)
    assert isinstance(failure, dg.Failure) and failure.description == "why it stopped"
    assert failure.allow_retries is RETRYABLE_OUTCOMES[outcome]
    assert failure.metadata["sutro/error"].value == type(core).__name__


@pytest.mark.parametrize(("cls", "retry"), list(RETRYABLE_ERRORS.items()))
def test_core_errors_allow_retries_per_the_table(cls: type[SutroError], retry: bool) -> None:
    assert _failure(cls("nope"), None, RESOURCE).allow_retries is retry


def test_failure_names_the_jobs_and_their_links() -> None:
    manifest = Manifest(run_key="k", identity="asset", function="f", state="submitted",
                        shards=[ShardInfo(index=0, job_id="job-7", job_name="n", rows=3)])
    failure = _failure(SutroServerError("503"), manifest, RESOURCE)
    assert failure.metadata["sutro/job_ids"].value == "job-7"
    assert failure.metadata["sutro/job/0"].value.endswith("/jobs/job-7")
    assert "sk-test-key" not in repr(failure.metadata)
