"""Exceptions raised by the Sutro Airflow operators and sensor.

Every core error (:class:`~sutro_providers.errors.SutroError`) that reaches a task
is raised as one of the exceptions here. Whether it is retried is the core's answer,
:func:`sutro_providers.errors.worth_retrying` (the Dagster adapter reads the same);
:data:`AIRFLOW_EXCEPTIONS` (looked up along the error's class hierarchy, so the most
specific entry wins) names the exception of each kind, and an error it does not
name is a :class:`SutroTransientException` or a :class:`SutroNonRetryableException`
as the core says. Two kinds:

* **Not retryable**: subclasses of :class:`~airflow.sdk.exceptions.AirflowFailException`.
  The task fails at once, whatever its ``retries``: a retry would fail the same
  way (and re-read and re-validate the input first). Bad input rows or request,
  a quota the input exceeds, the cost limit, configuration, authentication, an
  input that changed since the run's ledger record, a destination table that
  cannot take the rows, results that do not account for every row exactly once.
* **Retryable**: plain :class:`~airflow.sdk.exceptions.AirflowException` subclasses,
  so the task's ``retries`` apply. A retry reattaches to the jobs of the same run
  (the pipeline's ledger on object storage): it never pays twice. Failed,
  cancelled and timed-out jobs (a retry submits the shard again), polls that gave
  up (the jobs were left running), rate limits, 5xx, dropped connections, a
  truncated download, staging and load errors, another attempt holding the run.

The core decides which :class:`~sutro_providers.errors.SutroJobError` a wait outcome
raises (:func:`sutro_providers.waiting.outcome.outcome_error`); ``docs/configuration.md``
("Airflow exceptions: which are retried") lists this table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sutro_providers.errors import (
    SutroAuthenticationError,
    SutroConfigurationError,
    SutroCostLimitError,
    SutroDestinationSchemaError,
    SutroError,
    SutroJobCancelledError,
    SutroJobError,
    SutroJobFailedError,
    SutroJobPollError,
    SutroJobTimeoutError,
    SutroLedgerConflictError,
    SutroNotFoundError,
    SutroResultsError,
    SutroResultsIncompleteError,
    SutroValidationError,
    worth_retrying,
)
from sutro_providers.waiting.outcome import JobOutcome, outcome_of


class SutroAirflowError(AirflowException):
    """Base class. ``job_ids`` names the Sutro jobs concerned (empty when none)."""

    def __init__(self, message: str, job_ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.job_ids = list(job_ids or [])


# ---------------------------------------------------------------- retryable
class SutroJobFailedException(SutroAirflowError):
    """A Sutro job ended FAILED. Retryable: a retry submits the shard again."""


class SutroJobCancelledException(SutroAirflowError):
    """A Sutro job was cancelled (by a user, on a timeout or task kill). Retryable:
    a retry submits the shard again."""


class SutroJobTimeoutException(SutroAirflowError):
    """The jobs did not finish before the operator's ``timeout``; they were cancelled
    when ``cancel_on_timeout`` is set. Retryable."""


class SutroJobPollException(SutroAirflowError):
    """Polling gave up (too many failed polls in a row, or a non-transient API error).
    The jobs were left running: a retry reattaches to them."""


class SutroTransientException(SutroAirflowError):
    """Any other core error: rate limits, 5xx/524, dropped connections, a submission
    whose outcome is unknown, a truncated results download, staging or load errors,
    another attempt holding the run. Retryable (a retry reattaches)."""


class SutroTriggerEventError(SutroAirflowError):
    """``execute_complete`` received an event it does not understand."""


# ---------------------------------------------------------------- not retryable
class SutroNonRetryableException(SutroAirflowError, AirflowFailException):
    """Base of the errors a retry cannot fix: the task fails without retrying."""


class SutroInputException(SutroNonRetryableException):
    """The input rows or the request are invalid (names the row, column, field), or
    the input exceeds the deployment's quota. Raised before any job is submitted."""


class SutroCostLimitException(SutroNonRetryableException):
    """The cost estimate is above ``max_cost_usd`` (or the estimate job failed):
    nothing was submitted."""


class SutroConfigurationException(SutroNonRetryableException):
    """The connection or the task's options are wrong (API URL or key missing or
    malformed, an option out of range, a Function or job that does not exist)."""


class SutroAuthenticationException(SutroNonRetryableException):
    """The API refused the key (HTTP 401/403)."""


class SutroInputChangedException(SutroNonRetryableException):
    """The input changed since an earlier attempt of the same run recorded it in the
    ledger (``on_input_change="fail"``); ``"resubmit"`` starts over instead."""


class SutroDestinationSchemaException(SutroNonRetryableException):
    """The destination table is missing or lacks columns: checked before submit,
    nothing was paid for."""


class SutroResultsException(SutroNonRetryableException):
    """The results do not account for every submitted row exactly once, or do not
    match the Function's output schema; nothing was written."""


AIRFLOW_EXCEPTIONS: Mapping[type[SutroError], type[SutroAirflowError]] = {
    # not retryable
    SutroValidationError: SutroInputException,  # SutroInputError, SutroQuotaExceededError
    SutroCostLimitError: SutroCostLimitException,
    SutroConfigurationError: SutroConfigurationException,
    SutroNotFoundError: SutroConfigurationException,
    SutroAuthenticationError: SutroAuthenticationException,
    SutroLedgerConflictError: SutroInputChangedException,
    SutroDestinationSchemaError: SutroDestinationSchemaException,
    SutroResultsError: SutroResultsException,
    # retryable
    SutroResultsIncompleteError: SutroTransientException,
    SutroJobFailedError: SutroJobFailedException,  # the outcomes of a wait
    SutroJobCancelledError: SutroJobCancelledException,
    SutroJobTimeoutError: SutroJobTimeoutException,
    SutroJobPollError: SutroJobPollException,
}
"""The Airflow exception of each kind of core error, looked up along the error's class
hierarchy; each agrees with :func:`~sutro_providers.errors.worth_retrying` (an
``AirflowFailException`` exactly where a retry cannot help)."""


def retryable(exc: BaseException) -> bool:
    """Whether Airflow retries ``exc`` (a Sutro Airflow exception or any other)."""
    return not isinstance(exc, AirflowFailException)


def airflow_exception(exc: SutroError, message: str | None = None) -> SutroAirflowError:
    """``exc`` as its Airflow exception (same job ids; ``message`` replaces its text),
    retryable exactly when the core says a retry may help."""
    retry = worth_retrying(exc)
    cls: type[SutroAirflowError] | None = next(
        (AIRFLOW_EXCEPTIONS[c] for c in type(exc).__mro__ if c in AIRFLOW_EXCEPTIONS), None)
    if cls is None or issubclass(cls, AirflowFailException) == retry:  # unnamed, or named against the core
        cls = SutroTransientException if retry else SutroNonRetryableException
    job_ids = exc.job_ids if isinstance(exc, SutroJobError) else []
    return cls(str(exc) if message is None else message, job_ids)


def describe_run_failure(exc: SutroJobError) -> str:
    """The message of a failed run's Airflow exception: each job's status, then the reason
    (a timeout, or an error that is no wait outcome, keeps its own message)."""
    outcome = outcome_of(exc)
    if outcome is None or outcome is JobOutcome.TIMEOUT:
        return str(exc)
    named = ", ".join(f"{j} ({exc.statuses.get(j, '?')})" for j in exc.job_ids)
    return f"Sutro run failed [{outcome}] for job(s) {named}: {exc}"


@contextmanager
def as_airflow_exceptions(describe: Callable[[SutroJobError], str] | None = None) -> Iterator[None]:
    """Raise the core errors of the block as their Airflow exceptions, chained to the
    core error (``describe`` writes the message of job errors); other exceptions
    (Airflow's deferral, programming errors) pass unchanged."""
    try:
        yield
    except SutroError as exc:
        message = describe(exc) if describe is not None and isinstance(exc, SutroJobError) else None
        raise airflow_exception(exc, message) from exc
