"""Work on worker threads: read-ahead (:func:`prefetched`, the next items of an
iterator produced while the caller consumes this one) and write-behind (:class:`Lane`,
tasks run in order on a thread of their own while the caller goes on).

Used where Arrow (or a driver) releases the GIL on both sides of the hand-over: the
collect (reading and unpacking results, joining them to the source while the output
is written, :mod:`sutro_providers.collection.collector`) and the PostgreSQL load
(reading the enriched Parquet and encoding CSV while ``COPY`` sends the previous
batch, :mod:`sutro_providers.landing.postgres`). Memory: ``depth`` items more than
the synchronous loop, plus the one the worker is producing.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_ITEM, _ERROR, _END = range(3)


def prefetched(items: Iterator[T], depth: int = 2, name: str = "sutro-prefetch") -> Generator[T, None, None]:
    """``items``, produced up to ``depth`` ahead on a worker thread (named ``name``).

    Arrow releases the GIL while it reads Parquet, parses JSON and encodes Parquet or
    CSV, so producing the next batches overlaps with consuming this one (two cores:
    about the time of the slower side instead of the sum). Memory: ``depth`` items
    more. An exception of ``items`` is raised here, after the items produced before
    it; closing this generator (or an exception in the consumer) stops the worker,
    which closes ``items``, and waits for it, so whatever ``items`` reads from may be
    closed afterwards."""
    box: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[int, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        outcome: tuple[int, Any] = (_END, None)
        try:
            for item in items:
                if not put((_ITEM, item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            outcome = (_ERROR, exc)
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            except BaseException as exc:  # noqa: BLE001
                outcome = outcome if outcome[0] == _ERROR else (_ERROR, exc)
        put(outcome)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()


class Lane:
    """One worker thread running tasks in submission order. :meth:`submit` blocks while
    ``depth`` tasks wait and raises the lane's first error; after an error the lane
    skips the tasks still queued."""

    def __init__(self, name: str, depth: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sutro-{name}")
        self._pending: deque[Future[None]] = deque()
        self._depth = depth
        self._error: BaseException | None = None

    def submit(self, task: Callable[..., None], *args: Any) -> None:
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        if self._error is not None:
            raise self._error
        self._pending.append(self._pool.submit(self._run, task, args))

    def _run(self, task: Callable[..., None], args: tuple[Any, ...]) -> None:
        if self._error is not None:
            return
        try:
            task(*args)
        except BaseException as exc:
            self._error = exc
            raise

    def drain(self) -> None:
        """Wait for every queued task and end the thread; raise the first error."""
        try:
            while self._pending:
                self._pending.popleft().result()
            if self._error is not None:
                raise self._error
        finally:
            self._pool.shutdown(wait=True)

    def stop(self) -> None:
        """Skip the queued tasks, wait for the running one, end the thread. Never raises."""
        self._error = self._error or Stopped()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


class Stopped(Exception):
    """Marks a lane stopped on the way out of a failed step (its queued tasks are skipped)."""


__all__ = ["Lane", "Stopped", "prefetched"]
