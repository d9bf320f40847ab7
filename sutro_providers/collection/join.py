"""Joining the unpacked results to the input rows: by row id, never by position
alone, streaming, in input order.

:class:`ResultJoiner` walks the source snapshot batch by batch and takes each
batch's submitted rows from the results (:class:`_ResultCursor`); skipped rows get
null results and keep their skip reason. Results in another order than the input
(rows are shuffled at most within a job) are looked up by id. A result row left
over, or a submitted row without one, raises
:class:`~sutro_providers.errors.SutroResultsError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.collection.id_check import MAX_NAMED
from sutro_providers.columns import ROW_ID, SKIP_REASON
from sutro_providers.errors import SutroResultsError


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
        columns), e.g. :func:`~sutro_providers.collection.unpack.result_schema` or the unified schemas of all shards.
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


__all__ = ["ResultJoiner"]
