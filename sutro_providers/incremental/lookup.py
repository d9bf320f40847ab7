"""The lookup: which input rows have a result in the cache already.

One pass over the source, which staging reads a second time: a file source is
first copied to local scratch as it is (one streaming read per file, no
re-encoding), an in-memory table is read twice as it is, and any other source
(a SQL query, a stream: read once only) is copied batch by batch to a local scratch
file (:class:`ScratchInput`, Arrow IPC + LZ4) while it is read. Every row's content
key, with its position, goes to one of :data:`KEY_BUCKETS` local key-range buckets
(:class:`~sutro_providers.incremental.spill.BucketSpill`). Then, bucket by bucket (in key order),
the bucket's keys are matched against the committed segments, newest first: only
the row groups whose ``k_hi`` range holds one of the keys are read (row-group
statistics), each at most once, and only their keys (a segment's keys file:
~16 bytes per cached row, :mod:`~sutro_providers.incremental.segments`). A found
row's place (segment, segment row) goes, with its position, to the run's map of
reused rows (:mod:`~sutro_providers.incremental.reuse`); the collect reads the
results from the segments themselves, held for it by a pin
(:mod:`~sutro_providers.incremental.pins`). No result is copied at lookup.

Memory: one batch, one key bucket (rows / 64), one row group of keys and one
map row group, plus one byte per input row (the hit mask staging reads).

Staging then reads that copy (:attr:`Planner.replay`) instead of the source (the
source is read once, and both passes see the same rows even if it is replaced in
between) and leaves the rows that were found out of the shards. Disk: the source's
size (a file) or ~1/3 of its size in memory (a stream, LZ4), plus 24 bytes per row
of keys.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sutro_providers.errors import SutroStagingError
from sutro_providers.incremental.keys import HI, LO, bucket_of, content_keys
from sutro_providers.incremental.matching import (
    POSITION,
    KeyBatch,
    SegmentMatch,
    Tally,
    Wanted,
    key_batches,
    match_segment,
)
from sutro_providers.incremental.prefetch import KeysPrefetch
from sutro_providers.incremental.reuse import MapWriter, ReuseHeader
from sutro_providers.incremental.segments import SegmentReader
from sutro_providers.incremental.spill import IPC_OPTIONS, BucketSpill, bucket_order
from sutro_providers.incremental.store import Catalog, ResultsCache
from sutro_providers.inputs.sources import SourceReader
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.prefetch import Lane, prefetched
from sutro_providers.staging.store import store_errors

log = logging.getLogger("sutro_providers.incremental.lookup")

KEY_BITS = 6
KEY_BUCKETS = 2**KEY_BITS
LOOKUP_RETRIES = 3


@dataclass
class Lookup:
    """What the lookup found: ``hits[i]`` is True when row ``i`` has a cached result."""

    hits: np.ndarray
    rows_reused: int = 0
    cost_avoided_usd: float | None = None
    map_file: str | None = None  # where the found rows' results are (reuse.MapWriter)
    bytes_read: int = 0  # of segment keys
    seconds: float = 0.0

    def mask(self, first: int, rows: int) -> np.ndarray | None:
        """The hit mask of rows ``[first, first + rows)`` (``None``: no hit there)."""
        piece = self.hits[first:first + rows]
        return piece if piece.any() else None


class ScratchInput:
    """The local scratch copy of the source: batches as they were read."""

    def __init__(self, directory: str, schema: pa.Schema) -> None:
        self.path = os.path.join(directory, "input.arrow")
        self.schema = schema
        self._sink = pa.OSFile(self.path, "wb")
        self._writer = pa.ipc.new_file(self._sink, schema, options=IPC_OPTIONS)
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def finish(self) -> None:
        self._writer.close()
        self._sink.close()

    def reader(self, batch_size: int, description: str) -> SourceReader:
        def batches() -> Iterator[pa.RecordBatch]:
            with pa.OSFile(self.path, "rb") as source:
                file = pa.ipc.open_file(source)
                for index in range(file.num_record_batches):
                    yield file.get_batch(index)

        return SourceReader(self.schema, batches, num_rows=self.rows, batch_size=batch_size,
                            description=f"{description} (scratch copy)")


_KEY_SCHEMA = pa.schema([(POSITION, pa.int64()), (HI, pa.uint64()), (LO, pa.uint64())])
KEY_FLUSH_ROWS = 2**18
"""Keys gathered before they are spread over the buckets (fewer, larger writes: 6 MiB)."""


class _Keys:
    """Keys of the batches read since the last flush, with their positions."""

    def __init__(self) -> None:
        self.position = 0  # of the next batch
        self.rows = 0
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, hi: np.ndarray, lo: np.ndarray) -> None:
        self._parts.append((np.arange(self.position, self.position + len(hi), dtype=np.int64), hi, lo))
        self.rows += len(hi)

    def take(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The keys gathered since the last take (for :func:`_spread`)."""
        parts, self._parts, self.rows = self._parts, [], 0
        return parts


def _spread(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], spill: BucketSpill) -> None:
    """Append gathered keys (with their positions) to their key-range buckets."""
    if not parts:
        return
    positions, hi, lo = (np.concatenate(c) for c in zip(*parts, strict=True))
    buckets = bucket_of(hi, KEY_BITS)
    order = bucket_order(buckets)  # in numpy: cheaper than an Arrow take of the table
    spill.append_grouped(pa.table({POSITION: positions[order], HI: hi[order], LO: lo[order]}, schema=_KEY_SCHEMA),
                         buckets[order])


class Planner:
    """Reads the source once, computes keys and looks them up (see the module docstring)."""

    def __init__(self, cache: ResultsCache | None, validator: InputValidator) -> None:
        self.cache = cache  # None: refresh (nothing is looked up)
        self.validator = validator
        self._tmp = tempfile.TemporaryDirectory(prefix="sutro-incremental-")
        self.rows = 0  # the source's rows, counted by read()
        self.replay: SourceReader | None = None  # the source for the second pass (staging), set by read()
        self._prefetch: KeysPrefetch | None = None

    def close(self) -> None:
        """Wait for the prefetch (it may still write the pin) and remove the scratch files. Idempotent."""
        if self._prefetch is not None:
            self._prefetch.close()
            self._prefetch = None
        self._tmp.cleanup()

    def prepare(self, pin: str, rows: int | None) -> None:
        """Pin the cache's segments and copy their keys while :meth:`read` reads the
        source (:mod:`~sutro_providers.incremental.prefetch`; ``rows``: the source's
        row count when known). Optional: :meth:`lookup` pins and opens them itself."""
        if self.cache is not None:
            self._prefetch = KeysPrefetch(self.cache, pin, rows, self._tmp.name)

    def read(self, reader: SourceReader) -> BucketSpill:
        """The pass over the source: keys by bucket, and the source made readable a
        second time (:attr:`replay`). A source that can promise the same rows twice
        (:meth:`~sutro_providers.inputs.sources.SourceReader.replayable`: a file is
        copied to local scratch as it is, first; an Arrow table is itself) is read from
        there; any other source (a SQL query, a stream) is copied batch by batch to a
        local scratch file (Arrow IPC + LZ4) while it is read.

        Up to four threads: the source is read (decoded) a few batches ahead on one,
        the scratch copy written on another, the keys computed on the caller's and
        spread over their buckets on a fourth (Arrow, LZ4, numpy and polars release
        the GIL)."""
        with store_errors(f"cannot copy {reader.description} to local scratch"):
            replayable = reader.replayable(self._tmp.name)
        if replayable is not None and replayable is not reader:
            reader.close()
        source = replayable or reader
        self.validator.check_schema(source.schema)
        scratch = None if replayable is not None else ScratchInput(self._tmp.name, source.schema)
        keys = BucketSpill(self._tmp.name, "keys", _KEY_SCHEMA, KEY_BUCKETS, compress=False)  # hashes: no LZ4
        pending = _Keys()
        lanes = Lane("lookup-scratch"), Lane("lookup-keys")
        try:
            for batch in prefetched(source.batches()):
                if scratch is not None:
                    lanes[0].submit(scratch.write, batch)
                if self.cache is not None:
                    pending.add(*content_keys(self.validator.cast_for_submit(batch)))
                    if pending.rows >= KEY_FLUSH_ROWS:
                        lanes[1].submit(_spread, pending.take(), keys)
                pending.position += batch.num_rows
            lanes[1].submit(_spread, pending.take(), keys)
            for lane in lanes:
                lane.drain()
        except BaseException:
            for lane in lanes:
                lane.stop()
            raise
        keys.finish()
        self.rows = pending.position
        if scratch is None:
            assert replayable is not None
            self.replay = replayable
        else:
            scratch.finish()
            self.replay = scratch.reader(reader.batch_size, reader.description)
        return keys

    def lookup(self, keys: BucketSpill, map_path: str, pin: str) -> Lookup:
        """Match every key bucket against the cache, with the segments held by ``pin``;
        write where each found row's results are to ``map_path`` (no file: no hit,
        and no pin either)."""
        assert self.replay is not None, "read() first"
        started = time.monotonic()
        hits = np.zeros(self.rows, dtype=bool)
        if self.cache is None:
            return Lookup(hits)
        for _ in range(LOOKUP_RETRIES):
            prefetch, self._prefetch = self._prefetch, None
            try:
                with store_errors(f"cannot read the results cache {self.cache.display(self.cache.root)}"):
                    catalog, readers = (prefetch.result() if prefetch is not None and prefetch.pin == pin
                                        else self._open(pin))
            except FileNotFoundError:  # a segment gone before it was read (its pin lapsed?): start over
                continue
            if not catalog.segments:
                return Lookup(hits, seconds=time.monotonic() - started)
            out = MapWriter(self.cache.fs, map_path, ReuseHeader(cache_root=self.cache.root, pin=pin,
                                                                 segments=[r.segment for r in readers]))
            try:
                with store_errors(f"cannot look rows up in the results cache {self.cache.display(self.cache.root)}"):
                    found = self._match(keys, readers, hits, out, started)
            except FileNotFoundError:  # a segment gone under the lookup (its pin lapsed?): start over
                log.info("a segment of the results cache went away during the lookup; looking up again")
                out.abort()
                hits[:] = False
                continue
            except BaseException:
                out.abort()
                raise
            finally:
                for reader in readers:
                    reader.close()
            with store_errors(f"cannot stage the map of reused rows to {self.cache.display(map_path)}"):
                found.map_file = out.close()
            if found.map_file is None:
                self.cache.pins.release(pin)
            return found
        raise SutroStagingError("the results cache kept changing during the lookup; try again")

    def _open(self, pin: str) -> tuple[Catalog, list[SegmentReader]]:
        assert self.cache is not None
        catalog = self.cache.pinned(pin)
        return catalog, self.cache.open_segments(catalog)

    def _match(self, keys: BucketSpill, readers: list[SegmentReader], hits: np.ndarray, out: MapWriter,
               started: float) -> Lookup:
        """Bucket by bucket, in key order. The newest segment's keys are read (and each
        bucket's keys sorted) on a thread of its own, a few batches ahead of the
        matching on the caller's: numpy and Arrow release the GIL, so the two overlap."""
        tally = Tally()
        newest, older = readers[0], readers[1:]
        newest.offsets, newest.min_hi  # noqa: B018 - open the file and its statistics here, not on both threads
        match: SegmentMatch | None = None
        for want, batch, last in prefetched(_newest_reads(keys, newest), name="sutro-cache-lookup"):
            if match is None or match.want is not want:
                match = SegmentMatch(newest, 0, want, hits, out, tally)
            if batch is not None:
                match.match(batch)
            if last:  # the bucket's keys not in the newest segment: in the older ones, newest first
                left = match.remaining()
                for index, reader in enumerate(older, start=1):
                    if not len(left):
                        break
                    left = match_segment(reader, index, left, hits, out, tally)
        bytes_read = sum(r.bytes_read for r in readers)
        seconds = time.monotonic() - started
        log.info("results cache: %d of %d rows found (%.1f MiB of segment keys read, %.2f s)",
                 out.rows, len(hits), bytes_read / 2**20, seconds)
        return Lookup(hits, out.rows, round(tally.cost, 9) if tally.rows_with_cost else None, None, bytes_read,
                      seconds)


def _newest_reads(keys: BucketSpill, newest: SegmentReader) -> Iterator[tuple[Wanted, KeyBatch | None, bool]]:
    """Each bucket's keys (sorted) with the newest segment's candidate key batches for
    them, in order; ``True`` marks a bucket's last item."""
    for bucket in keys.buckets():
        want = Wanted.of(keys.read(bucket))
        pending: KeyBatch | None = None
        for batch in key_batches(newest, want):
            if pending is not None:
                yield want, pending, False
            pending = batch
        yield want, pending, True


__all__ = ["Lookup", "Planner", "ScratchInput"]
