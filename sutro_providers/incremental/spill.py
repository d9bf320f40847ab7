"""Local scratch files of the incremental steps: rows spread over a few Arrow IPC
files by bucket, written batch by batch and read back one bucket at a time, so no
step ever holds more than one bucket (a key range, or a range of row positions).

IPC with LZ4 buffers (``compress=False`` for data LZ4 cannot shrink, e.g. hashes):
the fastest local round trip Arrow offers (no Parquet encoding), read back through
``OSFile`` (not a memory map, whose pages would count in the process's resident
memory)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
PLAIN_OPTIONS = pa.ipc.IpcWriteOptions()


def bucket_order(buckets: np.ndarray) -> np.ndarray:
    """The stable order that groups ``buckets`` (small non-negative ints): a radix sort
    on the narrowest integer type that holds them (~15x faster than on int64)."""
    top = int(buckets.max()) if len(buckets) else 0
    narrow = buckets.astype(np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int64, copy=False)
    return np.argsort(narrow, kind="stable")


class BucketSpill:
    """``count`` local IPC files of one schema under ``directory`` (``name``-NNNN.arrow)."""

    def __init__(self, directory: str, name: str, schema: pa.Schema, count: int, *, compress: bool = True,
                 gather_rows: int = 0) -> None:
        """``gather_rows``: rows :meth:`append` gathers before it spreads them (a few
        rows per bucket per append would make many tiny writes); 0: none."""
        self.directory, self.name, self.schema, self.count = directory, name, schema, count
        self._options = IPC_OPTIONS if compress else PLAIN_OPTIONS
        self.gather_rows = gather_rows
        self._gathered: list[tuple[pa.Table | pa.RecordBatch, np.ndarray]] = []
        self._gathered_rows = 0
        self._writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
        self._sinks: dict[int, pa.NativeFile] = {}
        self.rows = np.zeros(count, dtype=np.int64)

    def _path(self, bucket: int) -> str:
        return os.path.join(self.directory, f"{self.name}-{bucket:04d}.arrow")

    def append(self, table: pa.Table | pa.RecordBatch, buckets: np.ndarray) -> None:
        """Append ``table``'s rows, row i to bucket ``buckets[i]``."""
        if not len(buckets):
            return
        if self.gather_rows:
            self._gathered.append((table, buckets))
            self._gathered_rows += len(buckets)
            if self._gathered_rows >= self.gather_rows:
                self._spread_gathered()
            return
        self._spread(table, buckets)

    def _spread_gathered(self) -> None:
        if not self._gathered:
            return
        parts, self._gathered, self._gathered_rows = self._gathered, [], 0
        tables = [t if isinstance(t, pa.Table) else pa.Table.from_batches([t]) for t, _ in parts]
        self._spread(pa.concat_tables(tables) if len(tables) > 1 else tables[0], np.concatenate([b for _, b in parts]))

    def _spread(self, table: pa.Table | pa.RecordBatch, buckets: np.ndarray) -> None:
        order = bucket_order(buckets)
        ordered = buckets[order]
        table = table.take(pa.array(order)) if not np.all(order[1:] > order[:-1]) else table
        self.append_grouped(table, ordered)

    def append_grouped(self, table: pa.Table | pa.RecordBatch, ordered: np.ndarray) -> None:
        """:meth:`append` of rows already grouped by bucket (``ordered``: non-decreasing)."""
        if not len(ordered):
            return
        edges = np.flatnonzero(np.diff(ordered)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [len(ordered)]])
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            self._write(int(ordered[start]), table.slice(start, end - start))

    def _write(self, bucket: int, piece: pa.Table | pa.RecordBatch) -> None:
        writer = self._writers.get(bucket)
        if writer is None:
            sink = pa.OSFile(self._path(bucket), "wb")
            self._sinks[bucket] = sink
            writer = self._writers[bucket] = pa.ipc.new_file(sink, self.schema, options=self._options)
        if isinstance(piece, pa.Table):
            writer.write_table(piece.cast(self.schema) if not piece.schema.equals(self.schema) else piece)
        else:
            writer.write_batch(piece)
        self.rows[bucket] += piece.num_rows

    def finish(self) -> None:
        """Close every file (call once all rows are appended, before reading)."""
        self._spread_gathered()
        for writer in self._writers.values():
            writer.close()
        for sink in self._sinks.values():
            sink.close()
        self._writers.clear()

    def read(self, bucket: int) -> pa.Table:
        """Every row of ``bucket`` (an empty table when none went there)."""
        if not self.rows[bucket]:
            return self.schema.empty_table()
        with pa.OSFile(self._path(bucket), "rb") as source:
            return pa.ipc.open_file(source).read_all()

    def buckets(self) -> Iterator[int]:
        """The buckets that hold rows, in order."""
        return (int(b) for b in np.flatnonzero(self.rows))
