"""The lookup: which input rows have a result in the cache already.

One pass over the source (it may be a one-shot stream, e.g. a SQL query): every
batch goes to a local scratch copy (:class:`~sutro_providers.incremental.spill.BucketSpill`,
IPC + LZ4), and every row's content key, with its position, to one of
:data:`KEY_BUCKETS` local key-range buckets. Then, bucket by bucket (in key order),
the bucket's keys are matched against the committed segments, newest first: only
the row groups whose ``k_hi`` range holds one of the keys are read (row-group
statistics), and each row group at most once. A found row's cached results, with
its position, go to a local position-range bucket; at the end each of those is
sorted by position and uploaded as ``reused-cNNNN.parquet`` into the run's staging
folder, where the collect step reads them back in input order.

Memory: one batch, one key bucket (rows / 64) and one position chunk
(:data:`CHUNK_ROWS` rows of results), plus one byte per input row (the hit mask
staging reads).

Staging then reads the scratch copy instead of the source (the source is read once)
and leaves the rows that were found out of the shards.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.columns import ROW_ID
from sutro_providers.errors import SutroStagingError
from sutro_providers.incremental.keys import HI, LO, bucket_of, content_keys
from sutro_providers.incremental.spill import IPC_OPTIONS, BucketSpill
from sutro_providers.incremental.store import CACHED_AT, ROW_COST, ResultsCache, SegmentReader
from sutro_providers.inputs.sources import SourceReader
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.parquet_io import STAGED, ParquetSink, open_upload
from sutro_providers.staging.store import store_errors

log = logging.getLogger("sutro_providers.incremental.lookup")

KEY_BITS = 6
KEY_BUCKETS = 2**KEY_BITS
CHUNK_ROWS = 2**19
"""Rows per ``reused-cNNNN.parquet`` (a position range): what the merge holds at most."""
POSITION = ROW_ID
LOOKUP_RETRIES = 3


@dataclass
class Lookup:
    """What the lookup found: ``hits[i]`` is True when row ``i`` has a cached result."""

    hits: np.ndarray
    rows_reused: int = 0
    cost_avoided_usd: float | None = None
    reused_files: list[str] = field(default_factory=list)
    bytes_read: int = 0
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


def match_keys(entry_hi: np.ndarray, entry_lo: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """For each key ``(hi[i], lo[i])`` its row in the entries (sorted by ``(hi, lo)``), or -1."""
    left = np.searchsorted(entry_hi, hi, side="left")
    right = np.searchsorted(entry_hi, hi, side="right")
    out = np.full(len(hi), -1, dtype=np.int64)
    single = np.flatnonzero(right - left == 1)
    rows = left[single]
    same = entry_lo[rows] == lo[single]
    out[single[same]] = rows[same]
    for i in np.flatnonzero(right - left > 1):  # two entries share k_hi (about 1 in 2^64 / entries): by k_lo
        run = entry_lo[left[i]:right[i]]
        match = np.flatnonzero(run == lo[i])
        if len(match):
            out[i] = left[i] + match[0]
    return out


class Planner:
    """Reads the source once, computes keys and looks them up (see the module docstring)."""

    def __init__(self, cache: ResultsCache | None, validator: InputValidator) -> None:
        self.cache = cache  # None: refresh (nothing is looked up)
        self.validator = validator
        self._tmp = tempfile.TemporaryDirectory(prefix="sutro-incremental-")
        self.scratch: ScratchInput | None = None

    def close(self) -> None:
        self._tmp.cleanup()

    def read(self, reader: SourceReader) -> BucketSpill:
        """The pass over the source: scratch copy + keys by bucket."""
        self.validator.check_schema(reader.schema)
        self.scratch = ScratchInput(self._tmp.name, reader.schema)
        keys = BucketSpill(self._tmp.name, "keys", _KEY_SCHEMA, KEY_BUCKETS)
        position = 0
        for batch in reader.batches():
            self.scratch.write(batch)
            if self.cache is not None:
                hi, lo = content_keys(self.validator.cast_for_submit(batch))
                rows = pa.table({POSITION: np.arange(position, position + batch.num_rows, dtype=np.int64),
                                 HI: hi, LO: lo})
                keys.append(rows, bucket_of(hi, KEY_BITS))
            position += batch.num_rows
        self.scratch.finish()
        keys.finish()
        return keys

    def lookup(self, keys: BucketSpill, upload: Callable[[int], str]) -> Lookup:
        """Match every key bucket against the cache; upload the found results by
        position chunk (``upload(chunk)`` names the staging path of a chunk)."""
        assert self.scratch is not None
        started = time.monotonic()
        hits = np.zeros(self.scratch.rows, dtype=bool)
        if self.cache is None:
            return Lookup(hits)
        for _ in range(LOOKUP_RETRIES):
            catalog = self.cache.load()
            if not catalog.segments:
                return Lookup(hits, seconds=time.monotonic() - started)
            readers = self.cache.open_segments(catalog)
            try:
                return self._match(keys, readers, hits, upload, started)
            except FileNotFoundError:  # a compaction removed a segment this lookup read: start over
                log.info("a segment of the results cache was compacted away during the lookup; looking up again")
                hits[:] = False
            finally:
                for reader in readers:
                    reader.close()
        raise SutroStagingError("the results cache kept changing during the lookup; try again")

    def _match(self, keys: BucketSpill, readers: list[SegmentReader], hits: np.ndarray,
               upload: Callable[[int], str], started: float) -> Lookup:
        schema = pa.unify_schemas([r.schema for r in readers])
        results = [f for f in schema if f.name not in (HI, LO)]
        found_schema = pa.schema([pa.field(POSITION, pa.int64()), *results])
        chunks = BucketSpill(self._tmp.name, f"reused-{int(time.monotonic() * 1e6)}", found_schema,
                             max(1, -(-len(hits) // CHUNK_ROWS)))
        for bucket in keys.buckets():
            want = keys.read(bucket)
            want = want.take(pc.sort_indices(want, sort_keys=[(HI, "ascending")]))
            for reader in readers:  # newest first: a key found is not looked for in older segments
                if not want.num_rows:
                    break
                want = self._match_segment(reader, want, found_schema, chunks)
        chunks.finish()
        rows = cost = 0.0
        files = []
        costed = False
        for chunk in chunks.buckets():
            table = chunks.read(chunk)
            table = table.take(pc.sort_indices(table, sort_keys=[(POSITION, "ascending")]))
            hits[table[POSITION].to_numpy()] = True
            rows += table.num_rows
            if ROW_COST in table.column_names and table[ROW_COST].null_count < table.num_rows:
                cost += float(pc.sum(table[ROW_COST]).as_py() or 0.0)
                costed = True
            files.append(self._upload(table, upload(chunk)))
        bytes_read = sum(r.bytes_read for r in readers)
        seconds = time.monotonic() - started
        log.info("results cache: %d of %d rows found (%.1f MiB of segments read, %.2f s)",
                 int(rows), len(hits), bytes_read / 2**20, seconds)
        return Lookup(hits, int(rows), round(cost, 9) if costed else None, files, bytes_read, seconds)

    @staticmethod
    def _match_segment(reader: SegmentReader, want: pa.Table, found_schema: pa.Schema,
                       chunks: BucketSpill) -> pa.Table:
        """Find ``want``'s keys (sorted by ``k_hi``) in one segment; return those not found."""
        sorted_hi = want[HI].to_numpy()
        want_lo = want[LO].to_numpy()
        positions = want[POSITION].to_numpy()
        found = np.zeros(want.num_rows, dtype=bool)
        for group in reader.candidates(sorted_hi):
            low = int(np.searchsorted(sorted_hi, reader.min_hi[group], side="left"))
            high = int(np.searchsorted(sorted_hi, reader.max_hi[group], side="right"))
            entries = reader.read(group)
            rows = match_keys(entries[HI].to_numpy(), entries[LO].to_numpy(), sorted_hi[low:high], want_lo[low:high])
            hit = rows >= 0
            if not hit.any():
                continue
            index = np.flatnonzero(hit) + low
            fresh = ~found[index]
            index, rows = index[fresh], rows[hit][fresh]
            found[index] = True
            taken = entries.take(pa.array(rows))
            arrays = [pa.array(positions[index]) if f.name == POSITION else
                      taken[f.name].cast(f.type) if f.name in taken.column_names else pa.nulls(len(rows), f.type)
                      for f in found_schema]
            table = pa.Table.from_arrays(arrays, schema=found_schema)
            chunks.append(table, positions[index] // CHUNK_ROWS)
        return want.filter(pa.array(~found)) if found.any() else want

    def _upload(self, table: pa.Table, path: str) -> str:
        what = f"cannot stage the reused results to {path}"
        with store_errors(what):
            assert self.cache is not None
            self.cache.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)  # local paths; a no-op on object stores
            sink = ParquetSink(open_upload(self.cache.fs, path), table.schema, STAGED)
        try:
            with store_errors(what):
                for batch in table.to_batches(STAGED.row_group_size):
                    sink.write(batch)
                sink.close()
        except BaseException:
            sink.abort()
            raise
        return path


__all__ = ["CACHED_AT", "CHUNK_ROWS", "Lookup", "Planner", "ScratchInput"]
