"""Pins: a run's hold on the cache segments its lookup matched, until its collect is done.

An incremental run does not copy the results it reuses: its collect reads them from
the committed segments the lookup matched (:mod:`~sutro_providers.incremental.reuse`),
possibly hours later and in another process (a deferred Airflow task). A compaction
meanwhile may retire those segments; a pin keeps the garbage collection
(:meth:`~sutro_providers.incremental.store.ResultsCache.collect_garbage`) from
removing them::

    <staging>/cache/<namespace>/pins/<pin id>.json   {"segments": [...], "pinned_at": <epoch s>}

Order, so no removal can slip in between: the lookup reads the catalog, writes its
pin naming those segments, reads the catalog again and looks up only segments still
committed in that second read (:meth:`~sutro_providers.incremental.store.ResultsCache.pinned`).
A segment is removed only :data:`~sutro_providers.incremental.store.ORPHAN_GRACE_SECONDS`
after it was retired, by a garbage collection that lists the pins after that: it
sees the pin. A pin is released when its run is completed and its staged snapshot
removed (the run is never collected from the segments again); otherwise (a run
without ``output_uri`` keeps its snapshot, so collecting it again reads the
segments again; a run abandoned before its collect) it lapses after
:data:`PIN_SECONDS`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Any

log = logging.getLogger("sutro_providers.incremental.pins")

PIN_SECONDS = 7 * 86400.0
"""How long a pin holds when its run does not release it."""


class Pins:
    """The pins of one cache folder (``<root>/pins/``)."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.prefix = f"{root.rstrip('/')}/pins"

    def path(self, pin: str) -> str:
        return f"{self.prefix}/{pin}.json"

    def write(self, pin: str, segments: list[str]) -> None:
        """Hold ``segments`` for ``pin`` (replaces that pin's earlier hold)."""
        self.fs.makedirs(self.prefix, exist_ok=True)  # local paths; a no-op on object stores
        self.fs.pipe_file(self.path(pin), json.dumps({"segments": segments, "pinned_at": time.time()}).encode())

    def release(self, pin: str) -> None:
        """Drop ``pin`` (best effort: a pin left behind lapses after :data:`PIN_SECONDS`)."""
        try:
            self.fs.rm_file(self.path(pin))
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - it lapses on its own
            log.warning("could not release the cache pin %s: %s", pin, exc)

    def held(self) -> set[str]:
        """The segments held by a live pin; lapsed pins are removed on the way. Raises
        the store's error when the pins cannot be listed or read (then nothing may be
        removed)."""
        try:
            paths = [p for p in self.fs.find(self.prefix) if p.endswith(".json")]
        except FileNotFoundError:
            return set()
        if not paths:
            return set()
        contents = self.fs.cat(paths, on_error="omit")  # a pin released meanwhile is simply gone
        now = time.time()
        held: set[str] = set()
        for path, data in contents.items():
            pin = json.loads(data)
            if now - float(pin["pinned_at"]) > PIN_SECONDS:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(path)
                continue
            held.update(pin["segments"])
        return held


__all__ = ["PIN_SECONDS", "Pins"]
