"""From unpacked results to the enriched table: exactly-once check, join, write, summary.

* :func:`unpack_outputs` (from :mod:`sutro_providers.collection.unpack`): results JSON -> typed columns.
* :func:`check_ids`: every submitted row id comes back exactly once.
* :class:`ResultJoiner`: streams the source batches and the results, in input
  order, into enriched batches (source columns + result columns + ``sutro_skip_reason``).
* :func:`write_parquet`: streams batches into one Parquet file on any fsspec URL,
  all or nothing (a temporary name, renamed into place only on success).
* :func:`summarize` / :class:`SummaryAccumulator`: label counts and confidence stats.
"""

from __future__ import annotations

import contextlib
import itertools
import posixpath
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from sutro_providers.collection.unpack import result_columns, result_schema, unpack_outputs
from sutro_providers.errors import SutroResultsError
from sutro_providers.manifest import ResultSummary
from sutro_providers.options import CONFIDENCE, ROW_ID, SKIP_REASON

__all__ = [
    "ResultJoiner",
    "SummaryAccumulator",
    "check_ids",
    "dictionary_columns",
    "result_columns",
    "result_schema",
    "summarize",
    "unpack_outputs",
    "write_parquet",
]

MAX_NAMED = 5
UPLOAD_BLOCK = 16 * 2**20
"""Block size the output is opened with: an object store (s3fs: 50 MiB by default)
buffers one block and copies it when uploading it as a multipart part, so this bounds
the write's memory (16 MiB x S3's 10,000 parts allows 160 GiB outputs)."""


def _named(values: pa.Array) -> str:
    shown = ", ".join(str(v) for v in values.slice(0, MAX_NAMED).to_pylist())
    return shown + (f" and {len(values) - MAX_NAMED} more" if len(values) > MAX_NAMED else "")


def check_ids(expected: pa.Array | pa.ChunkedArray, got: pa.Array | pa.ChunkedArray, *, job_id: str) -> None:
    """Raise :class:`SutroResultsError` unless ``got`` holds every id of ``expected``
    exactly once and nothing else (up to five missing, duplicated and unknown ids are named)."""
    expected = pa.chunked_array([expected]) if isinstance(expected, pa.Array) else expected
    got = pa.chunked_array([got]) if isinstance(got, pa.Array) else got
    if got.type != expected.type:
        got = got.cast(expected.type)
    if len(expected) == len(got) and not got.null_count and expected.equals(got):
        return  # the usual case: same ids, same order
    problems = []
    if got.null_count:
        problems.append(f"{got.null_count} result rows have a null id")
        got = got.drop_null()
    counts = pa.table({"id": got}).group_by("id", use_threads=False).aggregate([("id", "count")])
    dupes = counts.filter(pc.greater(counts["id_count"], 1))["id"].combine_chunks()
    missing = expected.filter(pc.invert(pc.is_in(expected, value_set=counts["id"].combine_chunks())))
    extra = counts["id"].filter(pc.invert(pc.is_in(counts["id"], value_set=expected.combine_chunks())))
    if len(missing):
        problems.append(f"{len(missing)} submitted rows have no result (ids {_named(missing)})")
    if len(dupes):
        problems.append(f"{len(dupes)} ids come back more than once (ids {_named(dupes)})")
    if len(extra):
        problems.append(f"{len(extra)} result ids were never submitted (ids {_named(extra)})")
    if problems:
        raise SutroResultsError(
            f"the results of job {job_id} do not account for every submitted row exactly once: "
            + "; ".join(problems) + ". Nothing was written.")


class _ResultCursor:
    """Hands out result rows in submission order.

    In-order mode (the normal case): the results arrive as the rows were submitted, so
    the next rows are sliced off a small queue. On the first id mismatch it switches to
    indexed mode: result rows are pooled (pulling further tables only as needed) and
    looked up by id through a sorted index. Rows are shuffled at most within a job, so
    the pool stays within about one shard.
    """

    def __init__(self, results: Iterable[pa.Table], schema: pa.Schema) -> None:
        self._stream = iter(results)
        self._schema = schema
        self._pool: pa.Table = schema.empty_table()
        self._used: np.ndarray | None = None  # indexed mode: pool rows already handed out
        self._index: tuple[np.ndarray, np.ndarray] | None = None

    def _conform(self, table: pa.Table) -> pa.Table:
        extra = [n for n in table.column_names if n not in self._schema.names]
        if extra:
            raise SutroResultsError(
                f"a results table has columns {extra} that the result schema lacks; "
                "build the joiner with the schemas of all results unified")
        arrays = [table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
                  for f in self._schema]
        return pa.Table.from_arrays(arrays, schema=self._schema)

    def _pull(self) -> bool:
        for table in self._stream:
            if table.num_rows:
                table = self._conform(table)
                if self._used is not None:
                    self._compact()
                    self._used = np.concatenate([self._used, np.zeros(table.num_rows, dtype=bool)])
                    self._index = None
                self._pool = pa.concat_tables([self._pool, table]) if self._pool.num_rows else table
                return True
        return False

    def _compact(self) -> None:
        assert self._used is not None
        if self._used.any():
            self._pool = self._pool.filter(pa.array(~self._used))
            self._used = np.zeros(self._pool.num_rows, dtype=bool)
            self._index = None

    def take(self, ids: pa.Array) -> pa.Table:
        """The result rows for ``ids``: the next ``len(ids)`` submitted rows."""
        k = len(ids)
        if self._used is None:
            while self._pool.num_rows < k and self._pull():
                pass
            if self._pool.num_rows < k:
                raise SutroResultsError(
                    f"the results end before row id {ids[self._pool.num_rows].as_py()}: "
                    f"{k - self._pool.num_rows} or more submitted rows have no result")
            head = self._pool.slice(0, k)
            if head[ROW_ID].equals(pa.chunked_array([ids])):
                self._pool = self._pool.slice(k)
                return head
            self._used = np.zeros(self._pool.num_rows, dtype=bool)
        return self._lookup(ids)

    def _lookup(self, ids: pa.Array) -> pa.Table:
        assert self._used is not None
        wanted = ids.to_numpy(zero_copy_only=False)
        while True:
            if self._index is None:
                pool_ids = self._pool[ROW_ID].to_numpy()
                order = np.argsort(pool_ids, kind="stable")
                self._index = (pool_ids[order], order)
            sorted_ids, order = self._index
            if not len(sorted_ids):
                found, rows = np.zeros(len(wanted), dtype=bool), np.zeros(len(wanted), dtype=np.int64)
            else:
                pos = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
                rows = order[pos]
                found = (sorted_ids[pos] == wanted) & ~self._used[rows]
            if found.all():
                break
            if not self._pull():
                lost = wanted[~found][:MAX_NAMED].tolist()
                raise SutroResultsError(f"row ids {lost} have no result ({int((~found).sum())} rows)")
        self._used[rows] = True
        piece = self._pool.take(pa.array(rows))
        if 2 * int(self._used.sum()) > len(self._used):
            self._compact()
        return piece

    def leftover(self) -> int:
        pending = self._pool.num_rows - (int(self._used.sum()) if self._used is not None else 0)
        return pending + sum(table.num_rows for table in self._stream)


class ResultJoiner:
    """Joins source batches with unpacked results, streaming, in input order.

    :param source_schema: the schema of the source batches: the original columns plus
        ``ROW_ID`` and (optionally) ``SKIP_REASON`` (null for submitted rows).
    :param result_schema: the schema of the unpacked results (``ROW_ID`` + result
        columns), e.g. :func:`result_schema` or the unified schemas of all shards.
    :param keep_row_id: keep ``ROW_ID`` in the output.

    The output (:attr:`schema`): original columns, the result columns, then
    ``SKIP_REASON``. Skipped rows get null results. Memory: one source batch plus
    one result shard (plus an id index of that shard if its rows are not in input order).
    """

    def __init__(self, source_schema: pa.Schema, result_schema: pa.Schema, *, keep_row_id: bool = False) -> None:
        if ROW_ID not in source_schema.names or ROW_ID not in result_schema.names:
            raise ValueError(f"both schemas need the {ROW_ID!r} column")
        self.result_schema = result_schema
        self._source_names = [n for n in source_schema.names
                              if n != SKIP_REASON and (keep_row_id or n != ROW_ID)]
        self._result_names = [n for n in result_schema.names if n != ROW_ID]
        clash = sorted(set(self._source_names) & set(self._result_names))
        if clash:
            raise ValueError(f"result columns {clash} clash with source columns; use output_prefix")
        self.schema = pa.schema(
            [source_schema.field(n) for n in self._source_names]
            + [result_schema.field(n) for n in self._result_names]
            + [pa.field(SKIP_REASON, pa.string())]
        )
        self.rows_out = 0
        self.rows_skipped = 0

    def join(self, source_batches: Iterable[pa.RecordBatch],
             results: pa.Table | Iterable[pa.Table]) -> Iterator[pa.RecordBatch]:
        """Yield enriched batches. Raises :class:`SutroResultsError` if the results do
        not line up with the submitted rows (missing, extra or unknown ids)."""
        cursor = _ResultCursor([results] if isinstance(results, pa.Table) else results, self.result_schema)
        for batch in source_batches:
            yield self._join_batch(batch, cursor)
        left = cursor.leftover()
        if left:
            raise SutroResultsError(f"the results have {left} more rows than were submitted")

    def _join_batch(self, batch: pa.RecordBatch, cursor: _ResultCursor) -> pa.RecordBatch:
        n = batch.num_rows
        ids = batch.column(ROW_ID).cast(pa.int64())
        skip = (batch.column(SKIP_REASON).cast(pa.string()) if SKIP_REASON in batch.schema.names
                else pa.nulls(n, pa.string()))
        if skip.null_count == n:  # every row submitted
            results = cursor.take(ids)
            columns = [results[name].combine_chunks() for name in self._result_names]
        else:
            submitted = skip.is_null()
            results = cursor.take(ids.filter(submitted))
            positions = pc.subtract(pc.cumulative_sum(submitted.cast(pa.int64())), 1)
            take = pc.if_else(submitted, positions, pa.scalar(None, pa.int64()))
            columns = [pa.nulls(n, self.result_schema.field(name).type) if results.num_rows == 0
                       else results[name].take(take).combine_chunks() for name in self._result_names]
            self.rows_skipped += n - results.num_rows
        self.rows_out += n
        arrays = [batch.column(name) for name in self._source_names] + columns + [skip]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


SAMPLE_ROWS = 8192


def dictionary_columns(batch: pa.RecordBatch) -> list[str]:
    """The columns worth dictionary encoding in Parquet, judged on the first
    ``SAMPLE_ROWS`` rows of one batch: those whose values repeat (at most half of
    them distinct), such as labels. Trying a dictionary on unique text (a body, a
    rationale) costs time and saves nothing."""
    names = []
    batch = batch.slice(0, SAMPLE_ROWS)
    for field, column in zip(batch.schema, batch.columns, strict=True):
        try:
            distinct = pc.count_distinct(column, mode="all").as_py()
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            distinct = 0  # a type Arrow cannot count: keep the writer's default
        if 2 * distinct <= max(len(column), 1):
            names.append(field.name)
    return names


def write_parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema, uri: str,
                  storage_options: dict[str, Any] | None = None) -> int:
    """Stream ``batches`` into one Parquet file at ``uri`` (local path or fsspec URL)
    and return the number of rows written.

    All or nothing: the data goes to a hidden temporary name next to ``uri``
    (``.<name>.sutro-tmp-<uuid>``) and is moved into place only after the last batch;
    if anything fails (including the batch iterator itself), the temporary file is
    removed and nothing exists at ``uri``. On object stores the move is a copy+delete.
    Each batch is one row group; columns whose first batch repeats values are
    dictionary-encoded (:func:`dictionary_columns`), the others plain.
    """
    fs, path = url_to_fs(uri, **(storage_options or {}))
    parent, name = posixpath.split(path.rstrip("/"))
    tmp = posixpath.join(parent, f".{name}.sutro-tmp-{uuid.uuid4().hex[:12]}")
    if parent:
        with contextlib.suppress(Exception):
            fs.makedirs(parent, exist_ok=True)
    rows = 0
    f = fs.open(tmp, "wb", block_size=UPLOAD_BLOCK)
    try:
        batches = iter(batches)
        first = next(batches, None)
        head = [] if first is None else [first]
        dictionary = dictionary_columns(first) if first is not None else True
        with pq.ParquetWriter(f, schema, use_dictionary=dictionary) as writer:
            for batch in itertools.chain(head, batches):
                if not batch.schema.equals(schema):
                    batch = batch.cast(schema)
                writer.write_batch(batch)
                rows += batch.num_rows
        f.close()
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            if hasattr(f, "discard") and not f.closed:
                f.discard()  # abort a multipart upload instead of committing it
            f.close()
        with contextlib.suppress(Exception):
            if fs.exists(tmp):
                fs.rm(tmp)
        raise
    return rows


class SummaryAccumulator:
    """Accumulates a :class:`ResultSummary` batch by batch (tee it into the output stream).

    ``kind`` is the Function kind (label counts only for classification); ``prefix``
    the ``output_prefix`` the result columns carry."""

    def __init__(self, *, kind: Literal["classification", "extraction"] | None,
                 confidence_threshold: float, prefix: str = "") -> None:
        self.kind = kind
        self.threshold = confidence_threshold
        self.label = prefix + "label"
        self.confidence = prefix + CONFIDENCE
        self._labels: dict[str, int] = {}
        self._sum = 0.0
        self._count = 0
        self._min: float | None = None
        self._below = 0

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        names = batch.schema.names
        if self.kind == "classification" and self.label in names:
            for item in pc.value_counts(batch[self.label].drop_null()).to_pylist():
                self._labels[item["values"]] = self._labels.get(item["values"], 0) + item["counts"]
        if self.confidence in names:
            conf = pc.drop_null(batch[self.confidence]).cast(pa.float64())
            conf = conf.filter(pc.invert(pc.is_nan(conf)))
            if len(conf):
                self._sum += pc.sum(conf).as_py()
                self._count += len(conf)
                low = pc.min(conf).as_py()
                self._min = low if self._min is None else min(self._min, low)
                self._below += pc.sum(pc.less(conf, self.threshold).cast(pa.int64())).as_py()

    def result(self) -> ResultSummary:
        labels = dict(sorted(self._labels.items(), key=lambda kv: (-kv[1], kv[0])))
        return ResultSummary(
            label_counts=labels if self.kind == "classification" else None,
            mean_confidence=self._sum / self._count if self._count else None,
            min_confidence=self._min,
            rows_below_confidence=self._below if self._count else None,
            confidence_threshold=self.threshold,
        )


def summarize(table_or_batches: pa.Table | Iterable[pa.RecordBatch], *,
              kind: Literal["classification", "extraction"] | None,
              confidence_threshold: float, prefix: str = "") -> ResultSummary:
    """Label counts (classification), mean/min confidence and rows below the threshold."""
    acc = SummaryAccumulator(kind=kind, confidence_threshold=confidence_threshold, prefix=prefix)
    for batch in [table_or_batches] if isinstance(table_or_batches, pa.Table) else table_or_batches:
        acc.add(batch)
    return acc.result()
