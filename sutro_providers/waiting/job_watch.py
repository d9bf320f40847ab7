"""One shared job-status poller per event loop and Sutro connection.

Many waiters on one event loop (Airflow's triggerer runs hundreds of
:class:`~airflow_provider.triggers.sutro.SutroJobTrigger` on one loop) would each
make one ``GET jobs/{id}`` per poll with a client of their own. Here they share a
:class:`JobWatch` per (running event loop, :class:`~sutro_providers.client.config.SutroConfig`):
the config holds the API URL, the key, timeouts and retry policy, so two
connections with the same URL and key but different retry settings get two
pollers. A watch owns one :class:`~sutro_providers.client.sutro.AsyncSutroClient` and one
task; the task starts with the first waiter on the loop and ends (closing the
client) when the last waiter leaves, whether it finished, failed or was cancelled.

Each poll of a waiter is a request "statuses of these jobs, read no later than
``delay`` seconds from now". The task serves every request that is due, together
with every request that has waited at least half of its delay (``SLACK``), so
waiters that started at different times fall into step after a round or two and a
waiter is never polled less often than it asked (at most twice as often). A round
starts early by the previous round's duration (at most ``MAX_LEAD`` seconds, and
never before a request's earliest time), so that its last page is read by the due
time. A round reads the statuses it needs like this:

* with at least ``MIN_LIST_BATCH`` jobs wanted: ``list-jobs`` pages of 100
  (newest first) until every wanted job was seen, or a page ends with a job older
  than the oldest wanted job, or the page cap (``len(wanted) // MIN_LIST_BATCH``,
  at most ``MAX_PAGES``) is hit, or there is no next page;
* every wanted job not found that way: ``GET jobs/{id}``, ``GET_CONCURRENCY`` at a
  time; a failed read is handed to the waiter as the :class:`SutroError` (the
  waiter counts transient ones toward its ``max_consecutive_errors``).

A deployment whose ``list-jobs`` refuses the request (an error that is not
transient, e.g. 404 or 422) or does not paginate (more than ``limit`` jobs in one
page) is read with individual GETs from then on. A transient ``list-jobs`` error
(after the client's own retries) is that round's read error for every job not
seen yet, exactly as a failed GET would be; the next round lists again.

Nothing here blocks the loop: the client is built in a worker thread, everything
else is awaited I/O, and a big round wakes its waiters ``DELIVERY_CHUNK`` per loop
iteration. The API key is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

# httpx's async stack imports anyio's asyncio backend on its first request; import
# it with this module, not on the event loop in the middle of a poll (~25-150 ms).
# (Importing it in a worker thread instead was measured worse: the import holds the
# GIL, so the loop stalled as long, and the triggerer's ramp-up stall grew from ~20
# to 44-59 ms in bench B5.)
import anyio._backends._asyncio  # noqa: F401

from sutro_providers.client.config import SutroConfig
from sutro_providers.client.models import JobRecord
from sutro_providers.client.sutro import AsyncSutroClient
from sutro_providers.errors import SutroError, is_transient
from sutro_providers.waiting.polling import PollState, WaitResult, combine_callbacks
from sutro_providers.waiting.progress_report import ProgressReporter
from sutro_providers.waiting.progress_stream import following_async

log = logging.getLogger(__name__)

T = TypeVar("T")

Status = JobRecord | SutroError
"""What a waiter gets per job: the job record, or the error that reading it raised."""

SLACK = 0.5
PAGE_SIZE = 100
MAX_PAGES = 20
MIN_LIST_BATCH = 3
GET_CONCURRENCY = 4
MAX_LEAD = 1.0  # seconds a round may start before its due time (the last round's duration, capped)
DELIVERY_CHUNK = 100  # waiters woken per loop iteration: bounds the loop stall of a big round


@dataclass(eq=False)
class _Request:
    job_ids: frozenset[str]
    due: float  # monotonic time by which the statuses must be read
    earliest: float  # a round at or after this time may serve the request
    future: asyncio.Future[dict[str, Status]]


@dataclass
class WatchStats:
    """Counters of one :class:`JobWatch` (for tests and benchmarks)."""

    rounds: int = 0
    list_pages: int = 0
    gets: int = 0
    deliveries: int = 0

    @property
    def requests(self) -> int:
        """HTTP calls made (each may include the client's own retries)."""
        return self.list_pages + self.gets


class JobWatch:
    """The shared poller of one (event loop, config); get it through :func:`watching`."""

    def __init__(self, config: SutroConfig) -> None:
        self.config = config
        self.stats = WatchStats()
        self.list_jobs_usable = True
        self._requests: list[_Request] = []
        self._waiters = 0
        self._watched: Counter[str] = Counter()
        self._created: dict[str, datetime] = {}
        self._wake = asyncio.Event()
        self._sleeping_until = -math.inf
        self._lead = 0.0
        self._failure: Exception | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The polling task (``None`` before the first waiter)."""
        return self._task

    async def statuses(self, job_ids: Iterable[str], delay: float, slack: float = SLACK) -> dict[str, Status]:
        """The statuses of ``job_ids``, read within ``delay`` seconds from now.

        A round that other waiters made due may serve this request once it has
        waited ``(1 - slack) * delay`` seconds (``slack=0``: not before ``delay``)."""
        if self._failure is not None:
            raise self._failure
        now = time.monotonic()
        future: asyncio.Future[dict[str, Status]] = asyncio.get_running_loop().create_future()
        request = _Request(frozenset(job_ids), now + delay, now + delay * (1.0 - slack), future)
        self._requests.append(request)
        if request.earliest < self._sleeping_until:
            self._wake.set()
        return await future

    # -- waiters ------------------------------------------------------------------------------

    def _add(self, job_ids: Iterable[str]) -> None:
        self._waiters += 1
        self._watched.update(job_ids)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"sutro-job-watch {self.config.api_url}")

    def _remove(self, job_ids: Iterable[str]) -> bool:
        """Forget one waiter and its jobs; ``True`` when it was the last waiter."""
        self._waiters -= 1
        for job_id in job_ids:
            self._watched[job_id] -= 1
            if self._watched[job_id] <= 0:  # nobody waits for it any more
                del self._watched[job_id]
                self._created.pop(job_id, None)
        return self._waiters == 0

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # the task closes the client; our own cancellation still propagates

    # -- the polling task ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._poll()
        except Exception as exc:  # a bug: fail the waiters (now and later) instead of leaving them waiting
            log.exception("Sutro job poller for %s stopped", self.config.api_url)
            self._failure = exc
            for r in self._requests:
                if not r.future.done():
                    r.future.set_exception(exc)

    async def _poll(self) -> None:
        client = await asyncio.to_thread(AsyncSutroClient, config=self.config)  # no TLS set-up on the loop
        try:
            while True:
                self._requests = [r for r in self._requests if not r.future.done()]
                # a round starts early by the last round's duration (so that its last page is read by the due
                # time), but never before a request's earliest time: no request is served sooner than it allows
                now, lead = time.monotonic(), self._lead
                start = min((r.due - min(lead, r.due - r.earliest) for r in self._requests), default=math.inf)
                if start > now:
                    await self._sleep(start - now)
                    continue
                batch = [r for r in self._requests if r.earliest <= now]
                self._requests = [r for r in self._requests if r.earliest > now]
                started = time.monotonic()
                await self._serve(client, batch)
                self._lead = min(MAX_LEAD, time.monotonic() - started)
        finally:
            await client.aclose()

    async def _sleep(self, seconds: float) -> None:
        """Sleep until ``seconds`` pass or a request due sooner arrives."""
        self._wake.clear()
        self._sleeping_until = time.monotonic() + seconds
        try:
            async with asyncio.timeout(None if math.isinf(seconds) else seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
        finally:
            self._sleeping_until = -math.inf

    async def _serve(self, client: AsyncSutroClient, batch: list[_Request]) -> None:
        self.stats.rounds += 1
        wanted = set().union(*(r.job_ids for r in batch))
        try:
            found = await self._read(client, wanted)
        except Exception as exc:  # a bug, not a Sutro error: fail the waiters rather than hang them
            log.exception("Sutro job poller: reading %d job(s) failed", len(wanted))
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(exc)
            return

        def deliver(r: _Request) -> None:
            if not r.future.done():
                self.stats.deliveries += 1
                r.future.set_result({j: found[j] for j in r.job_ids})

        await in_chunks(batch, deliver, DELIVERY_CHUNK)

    async def _read(self, client: AsyncSutroClient, wanted: set[str]) -> dict[str, Status]:
        found: dict[str, Status] = {}
        if self.list_jobs_usable and len(wanted) >= MIN_LIST_BATCH:
            await self._read_pages(client, wanted, found)
        missing = [j for j in wanted if j not in found]
        if missing:
            await self._read_each(client, missing, found)
        return found

    async def _read_pages(self, client: AsyncSutroClient, wanted: set[str], found: dict[str, Status]) -> None:
        oldest = self._oldest(wanted)
        cursor: str | None = None
        for _ in range(min(MAX_PAGES, len(wanted) // MIN_LIST_BATCH)):
            self.stats.list_pages += 1
            try:
                page = await client.list_jobs(limit=PAGE_SIZE, cursor=cursor)
            except SutroError as exc:
                if not is_transient(exc):
                    self._give_up_listing(f"list-jobs failed: {type(exc).__name__}")
                    return
                # the client's retries are spent: the unseen jobs' poll failed (as a GET's would have);
                # a GET each now would multiply the load on a struggling server
                found.update((j, exc) for j in wanted if j not in found)
                return
            if len(page.jobs) > PAGE_SIZE:
                self._give_up_listing(f"list-jobs returned {len(page.jobs)} jobs for limit={PAGE_SIZE}")
            for job in page.jobs:
                if job.job_id in wanted:
                    found[job.job_id] = job
                    self._note_created(job)
            if len(found) == len(wanted) or not page.jobs or not page.next_cursor or not self.list_jobs_usable:
                return
            if oldest is not None and _older(page.jobs[-1].datetime_created, oldest):
                return  # newest first: the wanted jobs not seen yet are not on later pages
            cursor = page.next_cursor

    async def _read_each(self, client: AsyncSutroClient, job_ids: list[str], found: dict[str, Status]) -> None:
        queue = iter(job_ids)

        async def worker() -> None:
            for job_id in queue:
                self.stats.gets += 1
                try:
                    job = await client.get_job(job_id)
                except SutroError as exc:
                    found[job_id] = exc
                else:
                    found[job_id] = job
                    self._note_created(job)

        await asyncio.gather(*(worker() for _ in range(min(GET_CONCURRENCY, len(job_ids)))))

    def _give_up_listing(self, why: str) -> None:
        if self.list_jobs_usable:
            log.warning("Sutro job poller for %s: %s; reading job statuses one by one from now on", self.config.api_url, why)
        self.list_jobs_usable = False

    def _note_created(self, job: JobRecord) -> None:
        if job.datetime_created is not None and job.job_id in self._watched:
            self._created[job.job_id] = job.datetime_created

    def _oldest(self, wanted: set[str]) -> datetime | None:
        """The creation time of the oldest wanted job, when every one is known."""
        times = [self._created.get(j) for j in wanted]
        known = [t for t in times if t is not None]
        if len(known) < len(times):
            return None
        try:
            return min(known)
        except TypeError:  # naive and aware times mixed: do not guess
            return None


async def in_chunks(items: Iterable[T], wake: Callable[[T], None], chunk: int) -> None:
    """``wake(item)`` for each item (typically: set a waiter's future), yielding to
    the loop after every ``chunk`` of them, so that the woken waiters' next steps
    (and everything else on the loop) run between chunks instead of together."""
    for n, item in enumerate(items):
        if n and n % chunk == 0:
            await asyncio.sleep(0)
        wake(item)


def _older(created: datetime | None, than: datetime) -> bool:
    try:
        return created is not None and created < than
    except TypeError:
        return False


_watches: dict[tuple[asyncio.AbstractEventLoop, SutroConfig], JobWatch] = {}
_registry_lock = threading.Lock()


@asynccontextmanager
async def watching(config: SutroConfig, job_ids: Iterable[str]) -> AsyncIterator[JobWatch]:
    """Register a waiter for ``job_ids``; yields the shared :class:`JobWatch` of
    this loop and config. Leaving the block unregisters (the last one out stops
    the polling task and closes its client before this returns)."""
    ids = list(job_ids)
    key = (asyncio.get_running_loop(), config)
    with _registry_lock:
        watch = _watches.get(key)
        if watch is None:
            watch = _watches[key] = JobWatch(config)
        watch._add(ids)
    try:
        yield watch
    finally:
        with _registry_lock:
            last = watch._remove(ids)
            if last and _watches.get(key) is watch:
                del _watches[key]
        if last:
            await watch._stop()


def active_watches() -> list[JobWatch]:
    """The watches with waiters on the running event loop."""
    loop = asyncio.get_running_loop()
    with _registry_lock:
        return [w for (lp, _), w in _watches.items() if lp is loop]


async def watch_jobs(config: SutroConfig, job_ids: Iterable[str], *, progress: ProgressReporter | None = None,
                     progress_stream: bool = False, **options: object) -> WaitResult:
    """Wait for ``job_ids`` as :func:`sutro_providers.waiting.polling.wait_for_jobs` does, through
    the shared poller, never blocking the loop.

    Options are the fields of :class:`~sutro_providers.waiting.polling.PollState`; the
    semantics (outcomes, interval growth, deadline, error counting) are the same,
    except that a poll may come up to half an interval early. ``progress`` and
    ``progress_stream`` as in ``wait_for_jobs``: a task of this waiter beats the
    reporter between polls, and the streams are read with a client of this waiter's
    own (:func:`~sutro_providers.waiting.progress_stream.following_async`)."""
    state = PollState(list(job_ids), **options)  # type: ignore[arg-type]
    if progress is None:
        return await _watch(config, state)
    state.on_progress = combine_callbacks(state.on_progress, progress)
    beats = asyncio.get_running_loop().create_task(_beat(progress), name="sutro-progress heartbeat")
    try:
        if not progress_stream:
            return await _watch(config, state)
        async with following_async(config, state.job_ids, progress):
            return await _watch(config, state)
    finally:
        progress.close()
        beats.cancel()
        await asyncio.wait([beats])


async def _watch(config: SutroConfig, state: PollState) -> WaitResult:
    async with watching(config, state.job_ids) as watch:
        delay, slack = 0.0, 0.0
        while True:
            state.apply(await watch.statuses(state.pending, delay, slack))
            done = state.result(time.time())
            if done is not None:
                return done
            delay = state.next_delay(time.time())
            # the last poll before the deadline is never early: the timeout is then reported on time
            slack = 0.0 if state.deadline is not None and time.time() + delay >= state.deadline - 1e-3 else SLACK


async def _beat(progress: ProgressReporter) -> None:
    """The reporter's heartbeat lines between polls (until cancelled)."""
    while True:
        await asyncio.sleep(progress.beat())
