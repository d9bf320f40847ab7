"""Waiting for Sutro jobs: one sans-IO state (:class:`PollState`), the sync poller
:func:`wait_for_jobs`, and (for async callers) :func:`sutro_providers.waiting.job_watch.watch_jobs`.

Semantics, shared by the worker path, the Airflow trigger and the Dagster asset:

* each poll reads the record (status, rows, tokens) of every job not yet finished
  (``GET jobs/{id}``; the shared async poller may read it from ``list-jobs`` pages);
  the interval starts at ``poll_interval`` and grows by 1.5x up to ``max_poll_interval``;
* transient errors (5xx, 524, 429, dropped connections) are already retried inside
  the client; on top of that up to ``max_consecutive_errors`` failed polls in a row
  are tolerated before the wait gives up with outcome ``error`` (the job itself
  is left alone: a retry of the task reattaches to it);
* outcomes: ``success`` (every job SUCCEEDED), ``failed`` (one FAILED),
  ``cancelled`` (one CANCELLED or CANCELLING), ``timeout`` (the deadline passed;
  the caller decides whether to cancel), ``error``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.client.sutro import SutroClient
from sutro_providers.errors import SutroError, is_transient

Outcome = Literal["success", "failed", "cancelled", "timeout", "error"]


@dataclass(frozen=True)
class JobProgress:
    """Passed to progress callbacks after every poll of one job."""

    job_id: str
    status: JobStatus
    num_rows: int | None
    input_tokens: int | None
    output_tokens: int | None


ProgressCallback = Callable[[JobProgress], None]


@dataclass
class WaitResult:
    outcome: Outcome
    statuses: dict[str, JobStatus]
    message: str
    records: dict[str, JobRecord] = field(default_factory=dict)


@dataclass
class PollState:
    """The decisions of a wait, free of I/O (so both pollers behave the same)."""

    job_ids: list[str]
    poll_interval: float = 10.0
    max_poll_interval: float = 60.0
    deadline: float | None = None
    max_consecutive_errors: int = 5
    on_progress: ProgressCallback | None = None
    records: dict[str, JobRecord] = field(default_factory=dict)
    errors_in_a_row: int = 0
    _interval: float = 0.0
    _last_error: str = ""

    def __post_init__(self) -> None:
        self._interval = self.poll_interval

    @property
    def pending(self) -> list[str]:
        return [j for j in self.job_ids if j not in self.records or not self.records[j].status.is_terminal]

    def statuses(self) -> dict[str, JobStatus]:
        return {j: (self.records[j].status if j in self.records else JobStatus.UNKNOWN) for j in self.job_ids}

    def record(self, job: JobRecord) -> None:
        self.records[job.job_id] = job
        self.errors_in_a_row = 0
        if self.on_progress:
            self.on_progress(JobProgress(job.job_id, job.status, job.num_rows, job.input_tokens, job.output_tokens))

    def apply(self, statuses: Mapping[str, JobRecord | SutroError]) -> None:
        """Take one poll's reads (a record or the read's error per job), in job
        order: records are recorded, the first error counts as a failed poll."""
        for job_id in self.pending:
            got = statuses.get(job_id)
            if isinstance(got, SutroError):
                self.failed_poll(got)
                return
            if got is not None:
                self.record(got)

    def failed_poll(self, exc: SutroError) -> None:
        """Count a failed poll; re-raise errors that are not transient."""
        if not is_transient(exc):
            raise exc
        self.errors_in_a_row += 1
        self._last_error = str(exc)

    def result(self, now: float) -> WaitResult | None:
        statuses = self.statuses()
        for job_id, status in statuses.items():
            if status is JobStatus.FAILED:
                reason = self.records[job_id].failure_reason
                why = reason.message if reason and reason.message else "no reason given"
                return self._done("failed", f"Sutro job {job_id} FAILED: {why}")
            if status in (JobStatus.CANCELLED, JobStatus.CANCELLING):
                return self._done("cancelled", f"Sutro job {job_id} was cancelled")
        if all(s is JobStatus.SUCCEEDED for s in statuses.values()):
            return self._done("success", f"{len(statuses)} Sutro job(s) succeeded")
        if self.errors_in_a_row > self.max_consecutive_errors:
            return self._done("error", f"gave up after {self.errors_in_a_row} failed polls in a row: {self._last_error}")
        if self.deadline is not None and now >= self.deadline:
            return self._done("timeout", f"Sutro job(s) {', '.join(self.pending)} not finished before the timeout")
        return None

    def next_delay(self, now: float) -> float:
        delay = self._interval
        self._interval = min(self.max_poll_interval, self._interval * 1.5)
        if self.deadline is not None:
            delay = max(0.0, min(delay, self.deadline - now))
        return delay

    def _done(self, outcome: Outcome, message: str) -> WaitResult:
        return WaitResult(outcome, self.statuses(), message, dict(self.records))


def deadline_from(timeout: float | None) -> float | None:
    """An absolute (epoch) deadline; survives a trigger being re-created."""
    return None if timeout is None else time.time() + timeout


def wait_for_jobs(client: SutroClient, job_ids: Iterable[str], **options: object) -> WaitResult:
    """Block until the jobs finish, fail, or the deadline passes.

    Options are the fields of :class:`PollState` (``poll_interval``,
    ``max_poll_interval``, ``deadline``, ``max_consecutive_errors``, ``on_progress``).
    """
    state = PollState(list(job_ids), **options)  # type: ignore[arg-type]
    while True:
        for job_id in state.pending:
            try:
                state.record(client.get_job(job_id))
            except SutroError as exc:
                state.failed_poll(exc)
                break
        done = state.result(time.time())
        if done is not None:
            return done
        time.sleep(state.next_delay(time.time()))
