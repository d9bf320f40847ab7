"""Live progress of a wait as INFO lines: the one reporter of every orchestrator.

A :class:`ProgressReporter` takes what a wait learns about its jobs and turns it
into log lines through ``emit`` (the Airflow task log, the Airflow trigger log,
Dagster's ``context.log.info``). It learns from two sources, whichever the
deployment offers:

* every poll's job record (:class:`~sutro_providers.waiting.polling.JobProgress`:
  status, total rows, tokens and cost once reported), as a ``ProgressCallback``;
* the ``stream-job-progress`` updates (:meth:`stream`: rows done so far, tokens so
  far), read by :mod:`sutro_providers.waiting.progress_stream` beside the poll.

Lines look like this (one job; several jobs are summed, statuses counted)::

    Sutro job job-1 QUEUED: 5,000 rows; elapsed 2s
    Sutro job job-1 QUEUED -> RUNNING: 0 / 5,000 rows (0.0%); elapsed 41s
    Sutro progress: RUNNING; 1,200 / 5,000 rows (24.0%); elapsed 3m10s; ETA 10m02s; tokens 91,200 in / 12,004 out
    Sutro progress: RUNNING; 1,200 / 5,000 rows (24.0%); elapsed 4m10s; ETA 13m12s; ...; last update 1m00s ago
    Sutro job job-1 RUNNING -> SUCCEEDED: 5,000 / 5,000 rows (100.0%); elapsed 16m; tokens ...; cost $1.23

When lines come:

* at every status change of any job (the first status seen counts), whatever the interval;
* otherwise at most one line per ``interval`` seconds (default
  :data:`~sutro_providers.options.PROGRESS_INTERVAL`, 60 s);
* :meth:`beat`, which the pollers call while they sleep between polls, emits a
  heartbeat line once ``interval`` passed since the last line even without news. A
  wait whose poll interval is longer than ``interval`` (``max_poll_interval=600``)
  therefore still shows a line every ``interval``; those lines repeat the last
  numbers and end with "last update ... ago" (how old they are). The pollers never
  poll more often because of the reporter.

What the numbers mean: ``elapsed`` counts from the earliest job's creation when the
API reported it (so a re-created trigger or a retry keeps counting), else from the
reporter's start. Rows done are known from the progress stream (a deployment whose
stream is off or unreachable shows the total rows only, and every row once a job
SUCCEEDED). The ETA is the remaining rows at the rate since the jobs started; it is
shown once a row is done. Tokens and cost are shown once the API reports them
(Sutro's job record reports cost when a job ends). A line names job ids, statuses,
counts, durations and dollars only: never a key or a URL.

A run that calls a Function row by row (Opper) has no jobs to poll: its progress is
"rows answered", counted after each journal flush. :class:`RowProgressReporter` turns
those counts into lines of the same kind, at most one per ``interval`` and always the
last one::

    Opper ticket-triage: 1,200 / 5,000 rows answered (24.0%); elapsed 3m10s; ETA 10m02s
    Opper ticket-triage: 5,000 / 5,000 rows answered (100.0%); elapsed 13m12s

The reporters are pure (no I/O but ``emit``; ``clock`` is injectable for tests) and
thread-safe (the stream readers of the sync wait run in threads). After
:meth:`close` it ignores everything (a stream reader that outlives its wait).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sutro_providers.client.models import JobRecord, JobStatus, ProgressUpdate
from sutro_providers.money import usd
from sutro_providers.options import PROGRESS_INTERVAL

MIN_BEAT = 0.05
"""The shortest sleep :meth:`ProgressReporter.beat` asks for (seconds)."""


@dataclass(frozen=True)
class JobProgress:
    """Passed to progress callbacks after every poll of one job."""

    job_id: str
    status: JobStatus
    num_rows: int | None
    input_tokens: int | None
    output_tokens: int | None
    job_cost: float | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None

    @classmethod
    def of(cls, job: JobRecord) -> JobProgress:
        return cls(job.job_id, job.status, job.num_rows, job.input_tokens, job.output_tokens, job.job_cost,
                   job.datetime_created, job.datetime_started)


ProgressCallback = Callable[[JobProgress], None]


@dataclass
class _Job:
    status: JobStatus | None = None
    total: int | None = None
    done: int | None = None  # from the stream
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    created: float | None = None  # epoch seconds
    started: float | None = None

    @property
    def rows_done(self) -> int | None:
        if self.status is JobStatus.SUCCEEDED and self.total is not None:
            return self.total
        return self.done


class ProgressReporter:
    """Progress lines of one wait over ``job_ids``; see the module docstring.

    :param job_ids: the jobs of the wait (a run's shards).
    :param emit: where a line goes (e.g. ``logger.info``); called under the reporter's lock.
    :param interval: at most one line per this many seconds, status changes apart.
    :param clock: epoch seconds (``time.time``; tests pass a fake).
    """

    def __init__(self, job_ids: Iterable[str], emit: Callable[[str], None], *, interval: float = PROGRESS_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        if interval <= 0:
            raise ValueError(f"progress interval must be positive, got {interval}")
        self.job_ids = list(job_ids)
        self.emit = emit
        self.interval = float(interval)
        self.clock = clock
        self._jobs = {j: _Job() for j in self.job_ids}
        self._lock = threading.Lock()
        self._began = clock()
        self._last_line: float | None = None
        self._last_news = self._began
        self._closed = False
        self.lines = 0
        """Lines emitted so far."""

    # -- what the wait learns -------------------------------------------------------------------

    def __call__(self, progress: JobProgress) -> None:
        """A poll's record of one job (the reporter is a ``ProgressCallback``)."""
        with self._lock:
            if self._closed or progress.job_id not in self._jobs:
                return
            job, now = self._jobs[progress.job_id], self.clock()
            self._last_news = now
            before = job.status
            job.status = progress.status
            job.total = progress.num_rows if progress.num_rows is not None else job.total
            job.input_tokens = _most(job.input_tokens, progress.input_tokens)
            job.output_tokens = _most(job.output_tokens, progress.output_tokens)
            job.cost = progress.job_cost if progress.job_cost is not None else job.cost
            job.created = _epoch(progress.created_at) or job.created
            job.started = _epoch(progress.started_at) or job.started
            if job.started is None and progress.status is JobStatus.RUNNING:
                job.started = now  # first seen running: the rate counts from here
            if before is not progress.status:
                change = progress.status.value if before is None else f"{before.value} -> {progress.status.value}"
                self._line(f"Sutro job {progress.job_id} {change}: ", now)
            else:
                self._due_line(now)

    def stream(self, job_id: str, update: ProgressUpdate) -> None:
        """One ``stream-job-progress`` update (``progress``: rows done so far; ``tokens``)."""
        with self._lock:
            if self._closed or job_id not in self._jobs:
                return
            job, now = self._jobs[job_id], self.clock()
            rows, tokens = update.rows_done, update.tokens
            if rows is None and tokens is None:
                return  # heartbeats and unknown kinds carry no news
            self._last_news = now
            job.done = _most(job.done, rows)
            if tokens is not None:
                job.input_tokens = _most(job.input_tokens, tokens[0])
                job.output_tokens = _most(job.output_tokens, tokens[1])
            self._due_line(now)

    def beat(self) -> float:
        """Emit a heartbeat line if ``interval`` passed since the last line; the
        seconds until the next one is due (how long a poller may sleep)."""
        with self._lock:
            if self._closed:
                return self.interval
            now = self._due_line(self.clock())
            since = now - (self._last_line if self._last_line is not None else self._began)
            return max(MIN_BEAT, self.interval - since)

    def finished(self, job_id: str) -> bool:
        """The job's last polled status is final (its stream has nothing more to say)."""
        with self._lock:
            status = self._jobs[job_id].status if job_id in self._jobs else None
            return self._closed or (status is not None and status.is_terminal)

    def close(self) -> None:
        """The wait ended: no more lines."""
        with self._lock:
            self._closed = True

    # -- lines ----------------------------------------------------------------------------------

    def _due_line(self, now: float) -> float:
        since = now - (self._last_line if self._last_line is not None else self._began)
        if since >= self.interval:
            self._line("Sutro progress: ", now, heartbeat=True)
        return now

    def _line(self, prefix: str, now: float, heartbeat: bool = False) -> None:
        self._last_line = now
        self.lines += 1
        self.emit(prefix + self.summary(now, stale=heartbeat))

    def summary(self, now: float | None = None, *, stale: bool = False) -> str:
        """The state of the wait in one line (without the prefix)."""
        now = self.clock() if now is None else now
        jobs = list(self._jobs.values())
        parts: list[str] = []
        statuses = Counter(j.status for j in jobs if j.status is not None)
        if stale or len(jobs) > 1:  # the status is in the prefix of a one-job change line
            parts.append(_statuses(statuses, len(jobs)))
        total = sum(j.total for j in jobs if j.total is not None) if all(j.total is not None for j in jobs) else None
        known_done = [j.rows_done for j in jobs if j.rows_done is not None]
        done = sum(known_done) if known_done else None
        if done is not None and total:
            parts.append(f"{done:,} / {total:,} rows ({100.0 * done / total:.1f}%)")
        elif total is not None:
            parts.append(f"{total:,} rows")
        elif done is not None:
            parts.append(f"{done:,} rows done")
        created = [j.created for j in jobs if j.created is not None]
        parts.append(f"elapsed {duration(now - min(created, default=self._began))}")
        eta = self._eta(jobs, now, done, total)
        if eta is not None:
            parts.append(f"ETA {duration(eta)}")
        if any(j.input_tokens is not None or j.output_tokens is not None for j in jobs):
            parts.append(f"tokens {sum(j.input_tokens or 0 for j in jobs):,} in / "
                         f"{sum(j.output_tokens or 0 for j in jobs):,} out")
        costs = [j.cost for j in jobs if j.cost is not None]
        if costs:
            parts.append(f"cost ${usd(sum(costs))}" + ("" if len(costs) == len(jobs) else " so far"))
        if stale and now - self._last_news >= self.interval:
            parts.append(f"last update {duration(now - self._last_news)} ago")
        return "; ".join(parts)

    def _eta(self, jobs: list[_Job], now: float, done: int | None, total: int | None) -> float | None:
        if not done or not total or done >= total:
            return None
        started = [j.started for j in jobs if j.started is not None]
        ran = now - min(started, default=self._began)
        return (total - done) * ran / done if ran > 0 else None


class RowProgressReporter:
    """Progress lines of a run that answers rows one call at a time (see the module
    docstring): an ``on_progress(done, total)`` callback.

    :param label: what the line starts with (``"Opper ticket-triage"``).
    :param emit: where a line goes (e.g. ``logger.info``).
    :param interval: at most one line per this many seconds; the first and the last
        counts (``done == total``) always get one.
    :param clock: epoch seconds (``time.time``; tests pass a fake).
    """

    def __init__(self, label: str, emit: Callable[[str], None], *, interval: float = PROGRESS_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        if interval <= 0:
            raise ValueError(f"progress interval must be positive, got {interval}")
        self.label, self.emit, self.interval, self.clock = label, emit, float(interval), clock
        self._began = clock()
        self._last_line: float | None = None
        self._lock = threading.Lock()
        self.lines = 0
        """Lines emitted so far."""

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            now = self.clock()
            if done < total and self._last_line is not None and now - self._last_line < self.interval:
                return
            self._last_line = now
            self.lines += 1
            self.emit(f"{self.label}: {self.summary(done, total, now)}")

    def summary(self, done: int, total: int, now: float | None = None) -> str:
        """``done`` of ``total`` rows in one line (without the label)."""
        now = self.clock() if now is None else now
        ran = now - self._began
        parts = [f"{done:,} / {total:,} rows answered" + (f" ({100.0 * done / total:.1f}%)" if total else ""),
                 f"elapsed {duration(ran)}"]
        if 0 < done < total and ran > 0:
            parts.append(f"ETA {duration((total - done) * ran / done)}")
        return "; ".join(parts)


def _statuses(counts: Counter[JobStatus], n: int) -> str:
    if n == 1:
        return next(iter(counts)).value if counts else "not polled yet"
    known = [f"{counts[s]} {s.value}" for s in JobStatus if counts.get(s)]
    unseen = n - sum(counts.values())
    return f"{n} jobs: " + ", ".join(known + ([f"{unseen} not polled yet"] if unseen else []))


def _most(a: int | None, b: int | None) -> int | None:
    """Counters only move forward (a later, lower reading is ignored)."""
    if b is None:
        return a
    return b if a is None else max(a, int(b))


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def duration(seconds: float) -> str:
    """``45s``, ``3m10s``, ``2h05m`` (no fraction; negatives read as 0s)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
