"""The results cache: earlier results on the staging store, keyed by content key.

Layout, one folder per namespace (:func:`~sutro_providers.incremental.keys.cache_namespace`)::

    <staging>/cache/<namespace>/catalog.json                   the committed segments (the only truth)
    <staging>/cache/<namespace>/seg-<ms>-<token>.keys.parquet  one segment's keys: sorted by (k_hi, k_lo)
    <staging>/cache/<namespace>/seg-<ms>-<token>.parquet       ... and its results, row for row
    <staging>/cache/<namespace>/pins/<pin id>.json             segments a run still has to read

A **segment** (:mod:`~sutro_providers.incremental.segments`) holds entries (``k_hi``,
``k_lo``, when it was cached, the row's share of its job's cost, the result columns
without ``output_prefix``), sorted by key, in row groups of
:data:`~sutro_providers.incremental.segments.ROW_GROUP_ROWS` with min/max statistics
on ``k_hi``; the keys and the results are two files. A lookup of N keys reads each
segment's keys footer and only the row groups whose key range holds one of the
keys: O(N) bytes, whatever the cache's size, and never a result column.

**Visibility is the catalog.** A segment is uploaded first (a multipart upload is
all or nothing), then named in ``catalog.json`` by a conditional write (S3
``If-Match``, local ``flock``: the ledger's machinery,
:mod:`sutro_providers.submission.ledger_store`). A writer killed before that write
leaves unnamed files, which no lookup reads and the next compaction removes
(after :data:`ORPHAN_GRACE_SECONDS`). Two runs committing at once both land: the
loser of the write reads the catalog again and re-applies its change.

**Compaction** (when more than :data:`MAX_SEGMENTS` are committed) merges every
segment into one, key range by key range (memory: one of :data:`SLICES` ranges of
the cache), keeping the newest entry of a key and dropping entries older than the
retention (``cache_retention_days``). Replaced files are retired, and removed
:data:`ORPHAN_GRACE_SECONDS` later unless a run's pin still holds them
(:mod:`~sutro_providers.incremental.pins`: the collect of a run reads the results
of its reused rows from the segments its lookup matched). Retention also drops, at
every commit, whole segments whose newest entry is older than the cutoff.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

from sutro_providers.errors import SutroConcurrentAttemptError
from sutro_providers.incremental.keys import HI, LO
from sutro_providers.incremental.pins import Pins
from sutro_providers.incremental.segments import (
    CACHED_AT,
    LAYOUT,
    ROW_COST,
    ROW_GROUP_ROWS,
    Segment,
    SegmentReader,
    SegmentWriter,
    keys_name,
    segment_of,
)
from sutro_providers.staging.store import store_errors
from sutro_providers.submission.ledger_store import LedgerWriteConflict, open_ledger_store

log = logging.getLogger("sutro_providers.incremental.store")

MAX_SEGMENTS = 8
SLICES = 64
ORPHAN_GRACE_SECONDS = 3600.0
COMMIT_RETRIES = 20


class Retired(BaseModel):
    name: str
    retired_at: float


class Catalog(BaseModel):
    version: int = 1
    segments: list[Segment] = Field(default_factory=list)  # oldest first
    retired: list[Retired] = Field(default_factory=list)
    function: str | None = None
    revision: str | None = None

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.segments)


def slice_bounds(index: int, count: int = SLICES) -> tuple[int, int]:
    """The inclusive ``k_hi`` range of key slice ``index`` of ``count`` (a power of two)."""
    width = 2**64 // count
    return index * width, (index + 1) * width - 1


def sort_entries(table: pa.Table) -> pa.Table:
    """Sorted by key, newest first within a key, then one entry per key (the newest)."""
    if table.num_rows == 0:
        return table
    table = table.take(pc.sort_indices(table, sort_keys=[(HI, "ascending"), (LO, "ascending"),
                                                          (CACHED_AT, "descending")]))
    hi = table[HI].to_numpy()
    lo = table[LO].to_numpy()
    first = np.ones(len(hi), dtype=bool)
    first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    return table if first.all() else table.filter(pa.array(first))


class ResultsCache:
    """One namespace's cache folder on the staging store (see the module docstring)."""

    def __init__(self, fs: Any, root: str, *, display: Callable[[str], str], unconditional: bool = False,
                 retention_seconds: float | None = None) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.display = display
        self.retention_seconds = retention_seconds
        self._store = open_ledger_store(fs, f"{self.root}/catalog.json", unconditional=unconditional)
        self.pins = Pins(fs, self.root)
        self._tag: str | None = None

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    # ---------------------------------------------------------------- catalog
    def load(self) -> Catalog:
        with store_errors(f"cannot read the results cache {self.display(self.root)}"):
            found = self._store.read()
        if found is None:
            self._tag = None
            return Catalog()
        data, self._tag = found
        return Catalog.model_validate_json(data)

    def update(self, change: Callable[[Catalog], None]) -> Catalog:
        """Read the catalog, apply ``change``, write it back only if nobody wrote in
        between (else read again and re-apply)."""
        for _ in range(COMMIT_RETRIES):
            catalog = self.load()
            change(catalog)
            data = catalog.model_dump_json().encode()
            try:
                with store_errors(f"cannot write the results cache {self.display(self.root)}"):
                    self._tag = (self._store.replace(data, self._tag) if self._tag is not None
                                 else self._store.create(data))
                return catalog
            except LedgerWriteConflict:
                time.sleep(0.05 + secrets.randbelow(100) / 1000)
        raise SutroConcurrentAttemptError(f"the results cache {self.display(self.root)} kept changing under this run")

    def open_segments(self, catalog: Catalog) -> list[SegmentReader]:
        """The committed segments, newest first (a newer entry of a key wins)."""
        with store_errors(f"cannot read the results cache {self.display(self.root)}"):
            return [SegmentReader(self.fs, self.root, s) for s in reversed(catalog.segments)]

    def pinned(self, pin: str) -> Catalog:
        """The catalog to look up in, its segments held by ``pin`` (see
        :mod:`~sutro_providers.incremental.pins`: pin first, then read the catalog
        again and keep only segments still committed). No segments: no pin."""
        catalog = self.load()
        for _ in range(3):
            if not catalog.segments:
                self.pins.release(pin)
                return catalog
            names = {s.name for s in catalog.segments}
            with store_errors(f"cannot pin segments of the results cache {self.display(self.root)}"):
                self.pins.write(pin, sorted(names))
            again = self.load()
            if {s.name for s in again.segments} <= names:
                return again
            catalog = again  # committed meanwhile: pin those too
        again.segments = [s for s in again.segments if s.name in names]
        return again

    # ---------------------------------------------------------------- writing
    def write_segment(self, tables: Iterator[pa.Table], schema: pa.Schema) -> Segment | None:
        """Upload one segment from ``tables`` (each sorted and deduplicated, in key order,
        ranges not overlapping; ``schema``: the key columns and the results). Not
        visible until :meth:`commit`. ``None``: no rows."""
        name = f"seg-{int(time.time() * 1000):013d}-{secrets.token_hex(4)}.parquet"
        what = f"cannot write the results cache {self.display(self.path(name))}"
        rows, newest = 0, 0.0
        writer: SegmentWriter | None = None
        try:
            for table in tables:
                if not table.num_rows:
                    continue
                if writer is None:
                    with store_errors(what):
                        self.fs.makedirs(self.root, exist_ok=True)  # local paths; a no-op on object stores
                        writer = SegmentWriter(self.fs, self.root, name, schema)
                with store_errors(what):
                    for batch in table.cast(schema).to_batches(ROW_GROUP_ROWS):
                        writer.write(batch)
                rows += table.num_rows
                newest = max(newest, float(pc.max(table[CACHED_AT]).as_py()))
            if writer is None:
                return None
            with store_errors(what):
                writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        return Segment(name=name, rows=rows, newest=newest, committed_at=0.0, layout=LAYOUT)

    def commit(self, segment: Segment, run_key: str | None = None) -> Catalog:
        """Name ``segment`` in the catalog (atomically: all its entries at once), drop
        expired segments, and compact when more than :data:`MAX_SEGMENTS` remain."""
        segment.run_key = run_key
        cutoff = self._cutoff()

        def add(catalog: Catalog) -> None:
            segment.committed_at = time.time()
            if all(s.name != segment.name for s in catalog.segments):
                catalog.segments.append(segment)
            if cutoff is not None:
                expired = [s for s in catalog.segments if s.newest < cutoff]
                catalog.segments = [s for s in catalog.segments if s.newest >= cutoff]
                catalog.retired += [Retired(name=s.name, retired_at=time.time()) for s in expired]

        catalog = self.update(add)
        log.info("results cache %s: committed %d entries (%d segments, %d entries in all)",
                 self.display(self.root), segment.rows, len(catalog.segments), catalog.rows)
        if len(catalog.segments) > MAX_SEGMENTS:
            catalog = self.compact(catalog)
        return catalog

    def _cutoff(self) -> float | None:
        return time.time() - self.retention_seconds if self.retention_seconds else None

    # ---------------------------------------------------------------- compaction
    def compact(self, catalog: Catalog | None = None) -> Catalog:
        """Merge every committed segment into one (newest entry per key, retention
        applied), then retire the merged files and remove those retired long enough."""
        catalog = catalog if catalog is not None else self.load()
        merged = list(catalog.segments)
        if len(merged) < 2:
            return catalog
        readers = self.open_segments(catalog)
        cutoff = self._cutoff()
        try:
            schema = pa.unify_schemas([r.schema for r in readers])

            def slices() -> Iterator[pa.Table]:
                for index in range(SLICES):
                    low, high = slice_bounds(index)
                    parts = []
                    for reader in readers:
                        for group in reader.overlapping(low, high):
                            table = reader.read(group)
                            hi = table[HI]
                            inside = pc.and_(pc.greater_equal(hi, pa.scalar(low, pa.uint64())),
                                             pc.less_equal(hi, pa.scalar(high, pa.uint64())))
                            parts.append(table.filter(inside))
                    if not parts:
                        continue
                    table = sort_entries(pa.concat_tables(parts, promote_options="permissive"))
                    if cutoff is not None:
                        table = table.filter(pc.greater_equal(table[CACHED_AT], cutoff))
                    yield table

            segment = self.write_segment(slices(), schema)
        finally:
            for reader in readers:
                reader.close()
        names = {s.name for s in merged}

        def replace(fresh: Catalog) -> None:
            now = time.time()
            kept = [s for s in fresh.segments if s.name not in names]  # committed meanwhile: kept
            if segment is not None:
                segment.committed_at = now
                kept.insert(0, segment)  # older than anything committed meanwhile
            fresh.retired += [Retired(name=n, retired_at=now) for n in sorted(names)
                              if any(s.name == n for s in fresh.segments)]
            fresh.segments = kept

        catalog = self.update(replace)
        log.info("results cache %s: compacted %d segments into one of %d entries",
                 self.display(self.root), len(merged), segment.rows if segment else 0)
        self.collect_garbage(catalog)
        return catalog

    def collect_garbage(self, catalog: Catalog) -> None:
        """Remove retired segments and unnamed ones (a writer killed before its commit)
        older than :data:`ORPHAN_GRACE_SECONDS`, except segments a pin holds. Best
        effort: nothing is removed when the pins cannot be read."""
        now = time.time()
        named = {s.name for s in catalog.segments}
        retired = {r.name for r in catalog.retired}
        try:
            doomed = [r.name for r in catalog.retired if now - r.retired_at > ORPHAN_GRACE_SECONDS]
            for path in self.fs.glob(f"{self.root}/seg-*.parquet"):
                name = segment_of(path.rsplit("/", 1)[-1])
                born = int(name.split("-")[1]) / 1000
                if name not in named and name not in retired and now - born > ORPHAN_GRACE_SECONDS:
                    doomed.append(name)
            held = self.pins.held() if doomed else set()  # listed after the doomed were chosen
            doomed = sorted(set(doomed) - held)
            for name in doomed:
                for file in (keys_name(name), name):
                    with contextlib.suppress(FileNotFoundError):
                        self.fs.rm_file(self.path(file))
        except Exception as exc:  # noqa: BLE001 - garbage stays for the next compaction
            log.warning("results cache %s: could not remove old segments: %s", self.display(self.root), exc)
            return
        if doomed:
            gone = set(doomed)
            self.update(lambda fresh: setattr(fresh, "retired", [r for r in fresh.retired if r.name not in gone]))


__all__ = ["CACHED_AT", "ROW_COST", "ROW_GROUP_ROWS", "Catalog", "ResultsCache", "Segment", "SegmentReader",
           "sort_entries"]
