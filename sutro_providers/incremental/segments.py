"""Segment files of the results cache: how one segment is laid out, written and read.

A segment is immutable once uploaded (its name carries a timestamp and a random
token and is never written twice) and sorted by key ``(k_hi, k_lo)``. Since
layout 2 it is two Parquet files with the same row groups (:data:`ROW_GROUP_ROWS`
rows each, in the same order)::

    seg-<ms>-<token>.keys.parquet   k_hi, k_lo, cached at, the row's cost (min/max statistics on k_hi)
    seg-<ms>-<token>.parquet        the result columns (without ``output_prefix``)

so a lookup reads ~16 bytes per cached row (the keys file, front to back, in
:data:`READ_BLOCK` reads), and only the collect of a run that reuses rows reads the
results file, and only the row groups that hold them. Row ``i`` of a segment is row
``i`` of both files. Layout 1 (the first segments written) is one file with every
column; both are read by :class:`SegmentReader`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from sutro_providers.incremental.keys import HI, LO
from sutro_providers.parquet_io import ParquetFormat, ParquetSink, open_parquet, open_upload

CACHED_AT = "__sutro_cached_at"
"""Epoch seconds when the entry was cached (retention goes by it)."""
ROW_COST = "__sutro_row_cost_usd"
"""The entry's share of its job's cost (the job's cost / its rows): what reusing it saves."""
KEY_COLUMNS = (HI, LO, CACHED_AT, ROW_COST)
"""The columns of a layout-2 segment's keys file; every other column is a result."""
LOOKUP_COLUMNS = (HI, LO, ROW_COST)
"""What a lookup reads of a keys file."""
ROW_GROUP_ROWS = 16_384
READ_BLOCK = 4 * 2**20
"""Read-ahead of a segment file: row groups are read in order, so one GET per 4 MiB."""
KEYS_FORMAT = ParquetFormat("zstd", "arrow", statistics=(HI,), row_group_size=ROW_GROUP_ROWS)
RESULTS_FORMAT = ParquetFormat("zstd", "arrow", statistics=False, row_group_size=ROW_GROUP_ROWS)
LAYOUT = 2


class Segment(BaseModel):
    """A segment as the catalog names it."""

    name: str
    rows: int
    newest: float  # the newest entry's CACHED_AT
    committed_at: float
    run_key: str | None = None
    layout: int = 1  # 1: one file; 2: keys and results apart (catalogs written before layout 2 name none)

    @property
    def keys_file(self) -> str:
        return keys_name(self.name) if self.layout >= 2 else self.name

    @property
    def files(self) -> list[str]:
        return [self.keys_file, self.name] if self.layout >= 2 else [self.name]


def keys_name(name: str) -> str:
    """The keys file of segment ``name`` (layout 2)."""
    return f"{name.removesuffix('.parquet')}.keys.parquet"


def segment_of(file: str) -> str:
    """The segment name a file of the cache folder belongs to."""
    return file.replace(".keys.parquet", ".parquet")


class _File:
    """One open segment file: footer, row offsets, a one-row-group cache, bytes read."""

    def __init__(self, fs: Any, path: str) -> None:
        # fs None: a local copy
        self.handle = pa.OSFile(path, "rb") if fs is None else open_parquet(fs, path, read_ahead=READ_BLOCK)
        try:
            self.file = pq.ParquetFile(self.handle)
        except BaseException:
            self.handle.close()
            raise
        meta = self.file.metadata
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self.bytes_read = 0
        self._cached: tuple[int, tuple[str, ...], pa.Table] | None = None

    @property
    def num_rows(self) -> int:
        return int(self.offsets[-1])

    def read(self, group: int, columns: Sequence[str]) -> pa.Table:
        names = tuple(columns)
        if self._cached is not None and self._cached[:2] == (group, names):
            return self._cached[2]
        table = self.file.read_row_group(group, columns=list(names))
        meta = self.file.metadata.row_group(group)
        wanted = set(names)
        self.bytes_read += sum(meta.column(c).total_compressed_size for c in range(meta.num_columns)
                               if meta.column(c).path_in_schema in wanted)
        self._cached = (group, names, table)
        return table

    def close(self) -> None:
        self._cached = None
        with contextlib.suppress(Exception):
            self.handle.close()


class SegmentReader:
    """One committed segment (either layout), opened file by file when first needed:
    the keys for a lookup (:meth:`keys`, :attr:`min_hi`/:attr:`max_hi` from the
    footer's statistics), the results for a collect (:meth:`results`), both for a
    compaction (:meth:`read`). Row groups are visited front to back; each file
    keeps the last one read (a row group on a key-range boundary is read once)."""

    def __init__(self, fs: Any, root: str, segment: Segment) -> None:
        self.fs = fs
        self.segment = segment
        self.keys_path = f"{root}/{segment.keys_file}"
        self.results_path = f"{root}/{segment.name}"
        self._keys: _File | None = None
        self._results: _File | None = None

    def _keys_file(self) -> _File:
        if self._keys is None:
            self._keys = _File(self.fs, self.keys_path)
        return self._keys

    def use_local_keys(self, path: str) -> None:
        """Read the keys from ``path``, a local copy of the keys file (layout 2)."""
        assert self.segment.layout >= 2
        if self._keys is not None:
            self._keys.close()
        self._keys = _File(None, path)

    def _results_file(self) -> _File:
        if self.segment.layout < 2:
            return self._keys_file()
        if self._results is None:
            self._results = _File(self.fs, self.results_path)
        return self._results

    @functools.cached_property
    def _hi_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row group's ``k_hi`` minimum and maximum (the keys file's footer statistics)."""
        keys = self._keys_file()
        meta = keys.file.metadata
        column = keys.file.schema_arrow.get_field_index(HI)
        lows, highs = [], []
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(column).statistics
            lows.append(int(stats.min))
            highs.append(int(stats.max))
        return np.array(lows, dtype=np.uint64), np.array(highs, dtype=np.uint64)

    @property
    def min_hi(self) -> np.ndarray:
        return self._hi_ranges[0]

    @property
    def max_hi(self) -> np.ndarray:
        return self._hi_ranges[1]

    @property
    def num_row_groups(self) -> int:
        return len(self.min_hi)

    @property
    def offsets(self) -> np.ndarray:
        """The first segment row of each row group (and the row count last)."""
        return self._keys_file().offsets

    @property
    def schema(self) -> pa.Schema:
        """Every column (keys first)."""
        keys = self._keys_file().file.schema_arrow
        if self.segment.layout < 2:
            return keys
        return pa.schema([*keys, *self._results_file().file.schema_arrow])

    @property
    def results_schema(self) -> pa.Schema:
        return pa.schema([f for f in self._results_file().file.schema_arrow if f.name not in KEY_COLUMNS])

    @property
    def bytes_read(self) -> int:
        """Bytes of the keys file read (what a lookup costs)."""
        return self._keys.bytes_read if self._keys is not None else 0

    @property
    def results_bytes_read(self) -> int:
        if self.segment.layout < 2:
            return 0
        return self._results.bytes_read if self._results is not None else 0

    def candidates(self, sorted_hi: np.ndarray) -> list[int]:
        """The row groups whose ``k_hi`` range holds at least one of ``sorted_hi``."""
        if not len(sorted_hi) or not len(self.min_hi):
            return []
        first = np.searchsorted(sorted_hi, self.min_hi, side="left")
        last = np.searchsorted(sorted_hi, self.max_hi, side="right")
        return np.flatnonzero(last > first).tolist()

    def overlapping(self, low: int, high: int) -> list[int]:
        """The row groups whose ``k_hi`` range meets ``[low, high]``."""
        return np.flatnonzero((self.max_hi >= np.uint64(low)) & (self.min_hi <= np.uint64(high))).tolist()

    def keys(self, group: int) -> pa.Table:
        """What a lookup needs of row group ``group``: ``k_hi``, ``k_lo`` and the row's cost."""
        keys = self._keys_file()
        names = keys.file.schema_arrow.names
        return keys.read(group, [c for c in LOOKUP_COLUMNS if c in names])

    def results(self, group: int) -> pa.Table:
        """The result columns of row group ``group`` (of the results file)."""
        return self._results_file().read(group, self.results_schema.names)

    def results_group(self, rows: np.ndarray) -> np.ndarray:
        """The results file's row group of each segment row in ``rows``."""
        return np.searchsorted(self._results_file().offsets, rows, side="right") - 1

    def results_offset(self, group: int) -> int:
        return int(self._results_file().offsets[group])

    def check_rows(self) -> None:
        """The segment's files hold the rows the catalog says (else ``ValueError``)."""
        for file in {id(f): f for f in (self._keys_file(), self._results_file())}.values():
            if file.num_rows != self.segment.rows:
                raise ValueError(f"{self.segment.name} holds {file.num_rows} rows, its catalog entry "
                                 f"{self.segment.rows}")

    def read(self, group: int) -> pa.Table:
        """Every column of row group ``group`` (keys first)."""
        keys = self._keys_file()
        table = keys.read(group, keys.file.schema_arrow.names)
        if self.segment.layout < 2:
            return table
        results = self._results_file().read(group, self._results_file().file.schema_arrow.names)
        for name, column in zip(results.column_names, results.columns, strict=True):
            table = table.append_column(results.schema.field(name), column)
        return table

    def close(self) -> None:
        for file in (self._keys, self._results):
            if file is not None:
                file.close()


class SegmentWriter:
    """Uploads one layout-2 segment: each batch's key columns to the keys file and its
    result columns to the results file (one row group per batch of at most
    :data:`ROW_GROUP_ROWS` rows in both, so row groups line up). Nothing is visible
    until the catalog names the segment."""

    def __init__(self, fs: Any, root: str, name: str, schema: pa.Schema) -> None:
        self.keys_schema = pa.schema([schema.field(c) for c in KEY_COLUMNS])
        self.results_schema = pa.schema([f for f in schema if f.name not in KEY_COLUMNS])
        self._sinks: list[ParquetSink] = []
        try:
            self._sinks.append(ParquetSink(open_upload(fs, f"{root}/{name}"), self.results_schema, RESULTS_FORMAT))
            self._sinks.append(ParquetSink(open_upload(fs, f"{root}/{keys_name(name)}"), self.keys_schema,
                                           KEYS_FORMAT))
        except BaseException:
            self.abort()
            raise

    def write(self, batch: pa.RecordBatch) -> None:
        """One batch of at most :data:`ROW_GROUP_ROWS` rows with every column."""
        assert batch.num_rows <= ROW_GROUP_ROWS
        results, keys = self._sinks
        results.write(pa.RecordBatch.from_arrays([batch.column(n) for n in self.results_schema.names],
                                                 schema=self.results_schema))
        keys.write(pa.RecordBatch.from_arrays([batch.column(n) for n in KEY_COLUMNS], schema=self.keys_schema))

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()

    def abort(self) -> None:
        for sink in self._sinks:
            sink.abort()


__all__ = ["CACHED_AT", "KEY_COLUMNS", "LAYOUT", "ROW_COST", "ROW_GROUP_ROWS", "Segment", "SegmentReader",
           "SegmentWriter", "keys_name", "segment_of"]
