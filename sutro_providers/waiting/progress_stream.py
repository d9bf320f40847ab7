"""Reading ``stream-job-progress`` beside a wait, into a :class:`~sutro_providers.waiting.progress_report.ProgressReporter`.

The poll tells a job's status; only the progress stream tells how many rows are
done while it runs. Both pollers open one stream per job (at most
:data:`MAX_STREAMS` jobs of a wait; the other jobs are known from their polls)
when ``progress_stream`` is on: :func:`following` with daemon threads on the sync
client (the worker's wait, the Dagster asset), :func:`following_async` with tasks
on a client of their own (the Airflow trigger: the shared poller's connection pool
is never taken by long-lived streams).

A stream is a nicety, never a reason for a wait to fail or to end: a stream the
deployment refuses (an error that is not transient, e.g. 404) is given up at once;
one that drops or ends while its job still runs is opened again after
:data:`REOPEN_DELAY` seconds, at most :data:`MAX_REOPENS` times in a row without
an update in between (a stream that delivered updates is reopened for as long as
the wait lasts: a multi-hour job outlives many idle-connection timeouts). Errors are logged
at DEBUG by type only (no URL, no key). When the wait ends, the async tasks are
cancelled; the sync threads stop at their next line (the server sends a heartbeat
line every few seconds) or when the client is closed, and the reporter, closed by
then, ignores what they still read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager

from sutro_providers.client.config import SutroConfig
from sutro_providers.client.sutro import AsyncSutroClient, SutroClient
from sutro_providers.errors import SutroError, is_transient
from sutro_providers.waiting.progress_report import ProgressReporter

log = logging.getLogger(__name__)

MAX_STREAMS = 8
"""Jobs of one wait whose progress stream is read (the others: polls only)."""
REOPEN_DELAY = 5.0
"""Seconds before a dropped stream of a running job is opened again."""
MAX_REOPENS = 3
"""Times in a row a dropped stream is opened again when it delivered nothing."""


def _gave_up(job_id: str, exc: Exception, reporter: ProgressReporter) -> bool:
    """Log a stream's end; ``True`` when it must not be opened again."""
    log.debug("progress stream of Sutro job %s ended: %s", job_id, type(exc).__name__)
    return (isinstance(exc, SutroError) and not is_transient(exc)) or reporter.finished(job_id)


@contextmanager
def following(client: SutroClient, job_ids: Iterable[str], reporter: ProgressReporter) -> Iterator[None]:
    """Read the progress streams of ``job_ids`` in daemon threads while the block runs."""
    stop = threading.Event()
    for job_id in list(job_ids)[:MAX_STREAMS]:
        threading.Thread(target=_follow, args=(client, job_id, reporter, stop), daemon=True,
                         name=f"sutro-progress-{job_id}").start()
    try:
        yield
    finally:
        stop.set()


def _follow(client: SutroClient, job_id: str, reporter: ProgressReporter, stop: threading.Event) -> None:
    empty = 0  # streams in a row that delivered nothing
    while empty <= MAX_REOPENS:
        got = False
        try:
            for update in client.stream_progress(job_id):
                if stop.is_set():
                    return
                got = True
                reporter.stream(job_id, update)
            ended: Exception = EOFError("the stream ended")
        except Exception as exc:  # a stream never fails the wait
            ended = exc
        empty = 0 if got else empty + 1
        if stop.is_set() or _gave_up(job_id, ended, reporter) or stop.wait(REOPEN_DELAY):
            return


@asynccontextmanager
async def following_async(config: SutroConfig, job_ids: Iterable[str], reporter: ProgressReporter) -> AsyncIterator[None]:
    """Read the progress streams of ``job_ids`` in tasks while the block runs (never blocks the loop)."""
    ids = list(job_ids)[:MAX_STREAMS]
    if not ids:
        yield
        return
    client = await asyncio.to_thread(AsyncSutroClient, config=config)  # no TLS set-up on the loop
    tasks = [asyncio.create_task(_follow_async(client, j, reporter), name=f"sutro-progress {j}") for j in ids]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        await client.aclose()


async def _follow_async(client: AsyncSutroClient, job_id: str, reporter: ProgressReporter) -> None:
    empty = 0  # streams in a row that delivered nothing
    while empty <= MAX_REOPENS:
        got = False
        try:
            async for update in client.stream_progress(job_id):
                got = True
                reporter.stream(job_id, update)
            ended: Exception = EOFError("the stream ended")
        except Exception as exc:  # a stream never fails the wait (cancellation is not an Exception)
            ended = exc
        empty = 0 if got else empty + 1
        if _gave_up(job_id, ended, reporter):
            return
        await asyncio.sleep(REOPEN_DELAY)
