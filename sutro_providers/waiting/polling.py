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
* outcomes: a :class:`~sutro_providers.waiting.outcome.JobOutcome`: ``success`` (every
  job SUCCEEDED), ``failed`` (one FAILED), ``cancelled`` (one CANCELLED or CANCELLING),
  ``timeout`` (the deadline passed; the caller decides whether to cancel), ``error``;
  :meth:`WaitResult.error` is the core exception of an outcome that is not success.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.client.sutro import SutroClient
from sutro_providers.errors import SutroError, SutroJobError, is_transient
from sutro_providers.options import MAX_CONSECUTIVE_POLL_ERRORS, MAX_POLL_INTERVAL, POLL_INTERVAL
from sutro_providers.waiting.outcome import JobOutcome, outcome_error
from sutro_providers.waiting.progress_report import JobProgress, ProgressCallback, ProgressReporter
from sutro_providers.waiting.progress_stream import following


@dataclass
class WaitResult:
    """How a wait ended: its outcome, each job's last status and a message naming the job at fault."""

    outcome: JobOutcome
    statuses: dict[str, JobStatus]
    message: str
    records: dict[str, JobRecord] = field(default_factory=dict)

    def error(self, message: str | None = None) -> SutroJobError | None:
        """The core exception of this outcome (``None`` on success); ``message`` replaces the wait's."""
        return outcome_error(self.outcome, self.message if message is None else message, self.statuses)


@dataclass
class PollState:
    """The decisions of a wait, free of I/O (so both pollers behave the same)."""

    job_ids: list[str]
    poll_interval: float = POLL_INTERVAL
    max_poll_interval: float = MAX_POLL_INTERVAL
    deadline: float | None = None
    max_consecutive_errors: int = MAX_CONSECUTIVE_POLL_ERRORS
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
            self.on_progress(JobProgress.of(job))

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
        """The wait's result once it is decided (``None``: poll again after :meth:`next_delay`)."""
        statuses = self.statuses()
        for job_id, status in statuses.items():
            if status is JobStatus.FAILED:
                reason = self.records[job_id].failure_reason
                why = reason.message if reason and reason.message else "no reason given"
                return self._done(JobOutcome.FAILED, f"Sutro job {job_id} FAILED: {why}")
            if status in (JobStatus.CANCELLED, JobStatus.CANCELLING):
                return self._done(JobOutcome.CANCELLED, f"Sutro job {job_id} was cancelled")
        if all(s is JobStatus.SUCCEEDED for s in statuses.values()):
            return self._done(JobOutcome.SUCCESS, f"{len(statuses)} Sutro job(s) succeeded")
        if self.errors_in_a_row > self.max_consecutive_errors:
            return self._done(JobOutcome.ERROR, f"gave up after {self.errors_in_a_row} failed polls in a row: {self._last_error}")
        if self.deadline is not None and now >= self.deadline:
            return self._done(JobOutcome.TIMEOUT, f"Sutro job(s) {', '.join(self.pending)} not finished before the timeout")
        return None

    def next_delay(self, now: float) -> float:
        delay = self._interval
        self._interval = min(self.max_poll_interval, self._interval * 1.5)
        if self.deadline is not None:
            delay = max(0.0, min(delay, self.deadline - now))
        return delay

    def _done(self, outcome: JobOutcome, message: str) -> WaitResult:
        return WaitResult(outcome, self.statuses(), message, dict(self.records))


def deadline_from(timeout: float | None) -> float | None:
    """An absolute (epoch) deadline; survives a trigger being re-created."""
    return None if timeout is None else time.time() + timeout


def wait_for_jobs(client: SutroClient, job_ids: Iterable[str], *, progress: ProgressReporter | None = None,
                  progress_stream: bool = False, **options: object) -> WaitResult:
    """Block until the jobs finish, fail, or the deadline passes.

    Options are the fields of :class:`PollState` (``poll_interval``,
    ``max_poll_interval``, ``deadline``, ``max_consecutive_errors``, ``on_progress``).
    ``progress`` gets every poll and a :meth:`~ProgressReporter.beat` at least every
    ``progress.interval`` while this sleeps between polls (the polls themselves keep
    their own interval); with ``progress_stream`` the jobs' progress streams feed it
    too (:func:`~sutro_providers.waiting.progress_stream.following`). It is closed when
    the wait ends.
    """
    state = PollState(list(job_ids), **options)  # type: ignore[arg-type]
    if progress is not None:
        state.on_progress = combine_callbacks(state.on_progress, progress)
    streams: AbstractContextManager[None] = (
        following(client, state.job_ids, progress) if progress is not None and progress_stream else nullcontext())
    try:
        with streams:
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
                _sleep(state.next_delay(time.time()), progress)
    finally:
        if progress is not None:
            progress.close()


def _sleep(seconds: float, progress: ProgressReporter | None) -> None:
    """Sleep ``seconds``, waking for the reporter's heartbeat lines when one is given."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(left if progress is None else min(left, progress.beat()))


def combine_callbacks(first: ProgressCallback | None, second: ProgressCallback) -> ProgressCallback:
    """One callback calling ``first`` (when given), then ``second``."""
    if first is None:
        return second

    def both(p: JobProgress) -> None:
        first(p)
        second(p)

    return both


def poll_once(client: SutroClient, job_ids: Iterable[str], on_progress: ProgressCallback | None = None) -> WaitResult | None:
    """Read every job once and decide as a wait would: the result when every job
    succeeded or one failed or was cancelled, ``None`` while any is still running.
    Read errors propagate (a caller that polls again, such as a sensor, decides)."""
    state = PollState(list(job_ids), on_progress=on_progress)
    for job_id in state.job_ids:
        state.record(client.get_job(job_id))
    return state.result(time.time())
