"""The results journal of an Opper run: every answered (or finally failed) call,
written to the staging store in small Parquet files as calls complete.

Layout: ``<staging>/runs/<run key>/opper-journal/part-<attempt>-<seq>.parquet``,
one file per flush (``journal_chunk_rows`` answers, or fewer after
``journal_flush_seconds``), written whole (one PUT: a file is there completely or
not at all). A retry reads the journal first and calls only the rows that have no
recorded answer; a row recorded as failed is called again on a retry of a failed
run. Memory: the journal's index keeps one byte per input row (the "answered"
mask) and each file's row-id range; answers are read back per source batch.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sutro_providers.columns import ROW_ID
from sutro_providers.errors import SutroStagingError

log = logging.getLogger("sutro_providers.opper_rows.journal")

OUTPUTS = "outputs"
ERROR = "error"
SCHEMA = pa.schema([
    (ROW_ID, pa.int64()), (OUTPUTS, pa.string()), (ERROR, pa.string()), ("model", pa.string()),
    ("input_tokens", pa.int64()), ("output_tokens", pa.int64()), ("cost_usd", pa.float64()),
    ("span_id", pa.string()), ("cached", pa.bool_()),
])  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One call's outcome: ``outputs`` (the answer as a JSON object text) or ``error``."""

    row: int
    outputs: str | None
    error: str | None
    model: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    span_id: str | None = None
    cached: bool | None = None


@dataclass
class ModelUsage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached_calls: int = 0


@dataclass
class JournalSummary:
    """Totals over every recorded answer (each was billed, also when two attempts
    answered the same row), and the rows whose last recorded outcome is a failure
    with no recorded answer."""

    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def input_tokens(self) -> int:
        return sum(u.input_tokens for u in self.by_model.values())

    @property
    def output_tokens(self) -> int:
        return sum(u.output_tokens for u in self.by_model.values())

    @property
    def cost_usd(self) -> float | None:
        return sum(u.cost_usd for u in self.by_model.values()) if self.by_model else None


class ResultsJournal:
    """The journal of one run under ``prefix`` on the fsspec filesystem ``fs``.
    :meth:`add` is safe from one event loop; :meth:`flush` from one thread at a time."""

    def __init__(self, fs: Any, prefix: str, *, chunk_rows: int = 256, flush_seconds: float = 5.0) -> None:
        self.fs = fs
        self.folder = f"{prefix}/opper-journal"
        self.chunk_rows = chunk_rows
        self.flush_seconds = flush_seconds
        self.attempt = uuid.uuid4().hex[:10]
        self._seq = 0
        self._buffer: list[Entry] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self.rows_written = 0

    # -- writing
    def add(self, entry: Entry) -> None:
        self._buffer.append(entry)

    def due(self) -> bool:
        return len(self._buffer) >= self.chunk_rows or (
            bool(self._buffer) and time.monotonic() - self._last_flush >= self.flush_seconds)

    def take(self) -> list[Entry]:
        """The buffered entries, leaving the buffer empty (hand them to :meth:`write`)."""
        taken, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        return taken

    def write(self, entries: list[Entry]) -> None:
        """Write ``entries`` as one journal file (one PUT)."""
        if not entries:
            return
        columns = {name: [getattr(e, name if name != ROW_ID else "row") for e in entries] for name in SCHEMA.names}
        table = pa.table(columns, schema=SCHEMA)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        with self._lock:
            path = f"{self.folder}/part-{self.attempt}-{self._seq:06d}.parquet"
            self._seq += 1
            try:
                self.fs.pipe_file(path, sink.getvalue())
            except Exception as exc:  # s3fs raises many kinds here
                raise SutroStagingError(f"cannot write the Opper results journal {path}: {type(exc).__name__}: {exc}") from None
            self.rows_written += len(entries)

    def flush(self) -> None:
        self.write(self.take())

    # -- reading
    def parts(self) -> list[str]:
        try:
            return sorted(self.fs.glob(f"{self.folder}/part-*.parquet"))
        except FileNotFoundError:
            return []

    def _read(self, path: str, columns: list[str]) -> pa.Table:
        with self.fs.open(path, "rb") as handle:
            return pq.read_table(handle, columns=columns)

    def answered(self, rows: int) -> np.ndarray:
        """A mask over row ids ``0..rows-1``: True where an answer is recorded."""
        mask = np.zeros(rows, dtype=bool)
        for path in self.parts():
            table = self._read(path, [ROW_ID, ERROR])
            ok = table[ROW_ID].filter(table[ERROR].is_null()).to_numpy()
            mask[ok[ok < rows]] = True
        return mask

    def summary(self) -> JournalSummary:
        """Usage and cost per model over every recorded call, and the failed rows
        (by row id, the last recorded reason) that no recorded answer covers."""
        result = JournalSummary()
        answered: set[int] = set()
        for path in self.parts():
            table = self._read(path, [ROW_ID, ERROR, "model", "input_tokens", "output_tokens", "cost_usd", "cached"])
            for model, group in _groups(table.filter(table[ERROR].is_null())):
                usage = result.by_model.setdefault(model, ModelUsage())
                usage.calls += group.num_rows
                usage.input_tokens += pc.sum(group["input_tokens"]).as_py() or 0
                usage.output_tokens += pc.sum(group["output_tokens"]).as_py() or 0
                usage.cost_usd += pc.sum(group["cost_usd"]).as_py() or 0.0
                usage.cached_calls += pc.sum(group["cached"].cast(pa.int64())).as_py() or 0
            failed = table.filter(table[ERROR].is_valid())
            for row, reason in zip(failed[ROW_ID].to_pylist(), failed[ERROR].to_pylist(), strict=True):
                result.failed[row] = reason
            answered.update(table[ROW_ID].filter(table[ERROR].is_null()).to_pylist())
        for row in answered & set(result.failed):
            del result.failed[row]
        return result

    def index(self) -> list[tuple[str, int, int]]:
        """Each file with the lowest and highest row id it holds (Parquet statistics)."""
        found = []
        for path in self.parts():
            with self.fs.open(path, "rb") as handle:
                meta = pq.ParquetFile(handle).metadata
            lows, highs = [], []
            for group in range(meta.num_row_groups):
                stats = meta.row_group(group).column(0).statistics
                if stats is not None and stats.has_min_max:
                    lows.append(stats.min)
                    highs.append(stats.max)
            if lows:
                found.append((path, min(lows), max(highs)))
        return found

    def answers(self, index: list[tuple[str, int, int]], low: int, high: int) -> pa.Table:
        """The recorded answers of rows ``low <= id < high``: ``ROW_ID``, ``outputs``,
        sorted by id, one per row (the first recorded when a row has two)."""
        pieces = []
        for path, first, last in index:
            if last < low or first >= high:
                continue
            table = self._read(path, [ROW_ID, OUTPUTS, ERROR])
            ids = table[ROW_ID]
            keep = pc.and_(pc.and_(pc.greater_equal(ids, low), pc.less(ids, high)), table[ERROR].is_null())
            pieces.append(table.filter(keep).select([ROW_ID, OUTPUTS]))
        if not pieces:
            return pa.table({ROW_ID: pa.array([], pa.int64()), OUTPUTS: pa.array([], pa.string())})
        table = pa.concat_tables(pieces).sort_by(ROW_ID)
        ids = table[ROW_ID].combine_chunks()
        if len(ids) > 1:
            first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
            table = table.filter(pa.concat_arrays([pa.array([True]), first.combine_chunks() if isinstance(first, pa.ChunkedArray) else first]))
        return table


def _groups(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    models = table["model"].fill_null("unknown")
    for model in pc.unique(models).to_pylist():
        yield model, table.filter(pc.equal(models, model))
