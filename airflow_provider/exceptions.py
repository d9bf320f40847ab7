"""Exceptions raised by the Sutro Airflow operators and sensor.

All are :class:`~airflow.sdk.exceptions.AirflowException` subclasses, so Airflow's
normal retry policy applies. A retry of the batch operator reattaches to the jobs
of the same run (the pipeline's ledger on object storage), it never pays twice.

The core decides which :class:`~sutro_providers.errors.SutroJobError` a wait
outcome raises (:func:`sutro_providers.waiting.outcome.outcome_error`);
:data:`AIRFLOW_EXCEPTIONS` is the one table from those to the exceptions here.
Other core errors (bad input, configuration, cost limit...) are raised as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowException

from sutro_providers.errors import (
    SutroError,
    SutroJobCancelledError,
    SutroJobError,
    SutroJobFailedError,
    SutroJobPollError,
    SutroJobTimeoutError,
)


class SutroAirflowError(AirflowException):
    """Base class. ``job_ids`` names the Sutro jobs concerned."""

    def __init__(self, message: str, job_ids: list[str] | None = None) -> None:
        super().__init__(message)
        self.job_ids = list(job_ids or [])


class SutroJobFailedException(SutroAirflowError):
    """A Sutro job ended FAILED."""


class SutroJobCancelledException(SutroAirflowError):
    """A Sutro job was cancelled (by a user, on a timeout or task kill)."""


class SutroJobTimeoutException(SutroAirflowError):
    """The jobs did not finish before the operator's ``timeout``; they were cancelled
    when ``cancel_on_timeout`` is set."""


class SutroJobPollException(SutroAirflowError):
    """Polling gave up (too many failed polls in a row, or a non-transient API error).
    The jobs were left running: a retry reattaches to them."""


class SutroTriggerEventError(SutroAirflowError):
    """``execute_complete`` received an event it does not understand."""


AIRFLOW_EXCEPTIONS: Mapping[type[SutroJobError], type[SutroAirflowError]] = {
    SutroJobFailedError: SutroJobFailedException,
    SutroJobCancelledError: SutroJobCancelledException,
    SutroJobTimeoutError: SutroJobTimeoutException,
    SutroJobPollError: SutroJobPollException,
}
"""The Airflow exception of each core job error of a wait."""


def airflow_exception(exc: SutroError, message: str | None = None) -> SutroAirflowError | None:
    """``exc`` as its Airflow exception (same job ids; ``message`` replaces its text),
    looked up along its class hierarchy; ``None`` for core errors the table does not
    name, which are raised as they are."""
    for cls in type(exc).__mro__:
        if cls in AIRFLOW_EXCEPTIONS:
            job_ids = exc.job_ids if isinstance(exc, SutroJobError) else []
            return AIRFLOW_EXCEPTIONS[cls](str(exc) if message is None else message, job_ids)
    return None


@contextmanager
def as_airflow_exceptions(describe: Callable[[SutroJobError], str] | None = None) -> Iterator[None]:
    """Raise the core job errors of the block as their Airflow exceptions (chained to
    the core error; ``describe`` writes the message); other errors pass unchanged."""
    try:
        yield
    except SutroJobError as exc:
        mapped = airflow_exception(exc, describe(exc) if describe is not None else None)
        if mapped is None:
            raise
        raise mapped from exc
