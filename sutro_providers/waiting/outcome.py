"""How a wait ended, and the one mapping from that outcome to the core's exceptions.

:class:`JobOutcome` is produced by :class:`~sutro_providers.waiting.polling.PollState`
(and so by both pollers), carried as its string value in the Airflow trigger's
event, and parsed back with :meth:`JobOutcome.parse`. :func:`outcome_error` is the
only place that decides which :class:`~sutro_providers.errors.SutroJobError` a
wait outcome raises; each orchestrator adapter then maps those core errors to its
own exception types with one small table.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from sutro_providers.errors import (
    SutroJobCancelledError,
    SutroJobError,
    SutroJobFailedError,
    SutroJobPollError,
    SutroJobTimeoutError,
)


class JobOutcome(StrEnum):
    """``success`` (every job SUCCEEDED), ``failed`` (one FAILED), ``cancelled``
    (one CANCELLED or CANCELLING), ``timeout`` (the deadline passed; the caller
    decides whether to cancel), ``error`` (polling gave up; the jobs run on)."""

    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def is_success(self) -> bool:
        return self is JobOutcome.SUCCESS

    @classmethod
    def parse(cls, value: object) -> JobOutcome | None:
        """The outcome named by ``value`` (e.g. an event's ``"status"``); ``None`` if none is."""
        try:
            return cls(value) if isinstance(value, str) else None
        except ValueError:
            return None


OUTCOME_ERRORS: Mapping[JobOutcome, type[SutroJobError]] = {
    JobOutcome.FAILED: SutroJobFailedError,
    JobOutcome.CANCELLED: SutroJobCancelledError,
    JobOutcome.TIMEOUT: SutroJobTimeoutError,
    JobOutcome.ERROR: SutroJobPollError,
}
"""The core exception of every outcome but ``success``."""


def outcome_error(outcome: JobOutcome, message: str, statuses: Mapping[str, object]) -> SutroJobError | None:
    """The exception a wait with this outcome raises (``None`` on success).

    ``statuses`` maps each job id of the wait to its last status (a
    :class:`~sutro_providers.client.models.JobStatus` or its string value)."""
    if outcome.is_success:
        return None
    named = {str(j): str(getattr(s, "value", s)) for j, s in statuses.items()}
    return OUTCOME_ERRORS[outcome](message, job_ids=list(named), statuses=named)


def outcome_of(exc: SutroJobError) -> JobOutcome | None:
    """The outcome a core job error stands for (``None`` for job errors raised elsewhere)."""
    for outcome, cls in OUTCOME_ERRORS.items():
        if type(exc) is cls:
            return outcome
    return None
