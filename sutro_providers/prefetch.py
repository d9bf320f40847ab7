"""Read-ahead on a worker thread: the next items of an iterator, produced while the
caller consumes this one.

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
from collections.abc import Generator, Iterator
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


__all__ = ["prefetched"]
