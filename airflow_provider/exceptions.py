"""Exceptions raised by the Sutro Airflow operators and sensor.

All are :class:`~airflow.sdk.exceptions.AirflowException` subclasses, so Airflow's
normal retry policy applies. A retry of the batch operator reattaches to the jobs
of the same run (the pipeline's ledger on object storage), it never pays twice.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


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
