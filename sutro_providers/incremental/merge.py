"""The collect step of an incremental run: reused and new results in input order,
and the new results into the cache once the output is whole.

:class:`IncrementalCollector` is the :class:`~sutro_providers.collection.collector.Collector`
with two more things per enriched batch (the joined batches keep ``ROW_ID``):

* rows staging marked as reused (``SKIP_REASON == REUSED_MARK``) get their results
  from the committed cache segments the lookup matched, through the run's map of
  reused rows (:func:`~sutro_providers.incremental.reuse.gather`, before the first
  batch; then by row id, in input order) and ``sutro_reused = true``; every other
  row ``false``;
* rows submitted in this run go, with their content keys and their share of the
  jobs' cost, to a local spill by key range.

After the output is written (every submitted row came back exactly once: the
collector's id check ran before the first batch), :meth:`IncrementalCollector.land`
uploads the spill as one segment and commits it to the catalog
(:meth:`~sutro_providers.incremental.store.ResultsCache.commit`). A process that dies
before that commit leaves nothing visible; collecting again (the retry) writes and
commits the segment anew. Once the run is completed and its staged snapshot removed,
:meth:`IncrementalCollector.finished` releases the pin on the segments it read.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.client.sutro import SutroClient
from sutro_providers.collection.collector import Collector, job_usage
from sutro_providers.collection.join import ResultJoiner
from sutro_providers.columns import REUSED, ROW_ID, SKIP_REASON
from sutro_providers.errors import SutroResultsError
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.identity import RunIdentity
from sutro_providers.incremental.keys import HI, LO, bucket_of, content_keys
from sutro_providers.incremental.reuse import ReusedRows, gather
from sutro_providers.incremental.spill import BucketSpill
from sutro_providers.incremental.store import CACHED_AT, ROW_COST, SLICES, ResultsCache, sort_entries
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.options import EnrichmentOptions
from sutro_providers.staging.area import REUSED_MARK, StagingArea
from sutro_providers.staging.store import store_errors
from sutro_providers.submission.ledger import LedgerRecord

log = logging.getLogger("sutro_providers.incremental.merge")
SLICE_BITS = SLICES.bit_length() - 1
ENTRY_GATHER_ROWS = 2**17
"""New cache entries gathered before they are spread over the slices (with 1% of each batch
new, spreading batch by batch made ~70 writes of ~10 rows per batch)."""


class IncrementalCollector(Collector):
    """The collector of an incremental run (see the module docstring)."""

    keep_row_id = True

    def __init__(self, client: SutroClient, area: StagingArea, identity: RunIdentity, record: LedgerRecord,
                 options: EnrichmentOptions, spec: FunctionSpec | None, *, validator: InputValidator,
                 cache: ResultsCache) -> None:
        super().__init__(client, area, identity, record, options, spec)
        self.validator = validator
        self.cache = cache
        self.rows_reused = 0
        self.reused: ReusedRows | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="sutro-cache-entries-")
        self._entries: BucketSpill | None = None
        self._entry_schema: pa.Schema | None = None

    def close(self) -> None:
        super().close()
        if self.reused is not None:
            self.reused.close()
        self._scratch.cleanup()

    def prepare(self) -> None:
        """The collector's checks and downloads, then the reused rows' results from
        the segments the lookup matched (:func:`~sutro_providers.incremental.reuse.gather`)."""
        super().prepare()
        if self.record.rows_reused:
            path = self.area.reused_path(self.identity, self.record.stage_id)
            if not self.area.exists(path):
                raise SutroResultsError(
                    f"run {self.identity.describe()} was staged with {self.record.rows_reused} rows from the results "
                    f"cache, but its map of reused rows {self.area.display(path)} is gone (staged by an earlier "
                    "version, or removed); run it again under a new identity")
            with store_errors(f"cannot read the reused rows' results of run {self.identity.describe()}"):
                self.reused = gather(self.area.fs, path, self.record.rows_in, self.area.display)

    def finished(self, snapshot_removed: bool) -> None:
        """Release the pin on the segments this run read, once it will not read them
        again (its snapshot is gone: collecting it again reads its output)."""
        if snapshot_removed and self.reused is not None:
            self.cache.pins.release(self.reused.header.pin)

    def _stored(self, name: str) -> str:
        prefix = self.options.output_prefix
        return name[len(prefix):] if prefix and name.startswith(prefix) else name

    def joiner(self) -> tuple[ResultJoiner, Iterator[pa.Table]]:
        joiner, results = super().joiner()
        if self.spec is None and not self.record.shards and self.reused is not None:
            # nothing was submitted and no spec says the result columns: the cache's do
            fields = [pa.field(ROW_ID, pa.int64())] + [
                f.with_name(self.options.output_prefix + f.name) for f in self.reused.schema]
            joiner = ResultJoiner(self.area.source_schema(self.identity, self.record.stage_id), pa.schema(fields),
                                  keep_row_id=True)
        return joiner, results

    def output(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        joiner, results = self.joiner()
        names = [n for n in joiner.schema.names if n != ROW_ID]
        fields = [joiner.schema.field(n) for n in names if n != SKIP_REASON]
        schema = pa.schema([*fields, pa.field(REUSED, pa.bool_()), joiner.schema.field(SKIP_REASON)])
        results_names = [n for n in joiner.result_schema.names if n != ROW_ID]
        self._entry_schema = pa.schema(
            [pa.field(HI, pa.uint64()), pa.field(LO, pa.uint64()), pa.field(CACHED_AT, pa.float64()),
             pa.field(ROW_COST, pa.float64())]
            + [joiner.result_schema.field(n).with_name(self._stored(n)) for n in results_names])
        self._entries = BucketSpill(self._scratch.name, "entries", self._entry_schema, SLICES, gather_rows=ENTRY_GATHER_ROWS)
        return schema, self._merged(joiner, results, schema, results_names)

    def _row_cost(self) -> float | None:
        _, _, cost = job_usage(self.jobs)
        submitted = sum(s.rows for s in self.record.shards)
        return cost / submitted if cost is not None and submitted else None

    def _merged(self, joiner: ResultJoiner, results: Iterator[pa.Table], schema: pa.Schema,
                result_names: list[str]) -> Iterator[pa.RecordBatch]:
        cursor = self.reused
        row_cost = self._row_cost()
        now = time.time()
        for batch in self.batches(joiner, results):
            skip = batch.column(SKIP_REASON)
            marked = pc.fill_null(pc.equal(skip, pa.scalar(REUSED_MARK)), False)
            marked_np = marked.to_numpy(zero_copy_only=False)
            columns = {name: batch.column(name) for name in result_names}
            if marked_np.any():
                if cursor is None:
                    raise SutroResultsError("rows staged as reused, but the run recorded none")
                got = cursor.take(batch.column(ROW_ID).to_numpy()[marked_np])
                self.rows_reused += got.num_rows
                take = pc.if_else(marked, pc.subtract(pc.cumulative_sum(marked.cast(pa.int64())), 1),
                                  pa.scalar(None, pa.int64()))
                for name in result_names:
                    target = columns[name].type
                    stored = self._stored(name)
                    values = (got[stored].combine_chunks().cast(target) if stored in got.column_names
                              else pa.nulls(got.num_rows, target)).take(take)
                    columns[name] = pc.if_else(marked, values, columns[name])
                skip = pc.if_else(marked, pa.scalar(None, pa.string()), skip)
            new = pc.and_(skip.is_null(), pc.invert(marked))
            self._add_entries(batch, new, columns, result_names, row_cost, now)
            arrays = [columns[n] if n in columns else batch.column(n) for n in schema.names[:-2]]
            yield pa.RecordBatch.from_arrays([*arrays, marked, skip], schema=schema)
        assert self._entries is not None
        self._entries.finish()

    def _add_entries(self, batch: pa.RecordBatch, new: pa.Array, columns: dict[str, pa.Array],
                     result_names: list[str], row_cost: float | None, now: float) -> None:
        count = pc.sum(new.cast(pa.int64())).as_py() or 0
        if not count:
            return
        assert self._entries is not None and self._entry_schema is not None
        rows = batch.filter(new)
        hi, lo = content_keys(self.validator.cast_for_submit(rows))
        arrays: list[pa.Array] = [pa.array(hi), pa.array(lo), pa.array(np.full(count, now)),
                                  pa.array(np.full(count, row_cost if row_cost is not None else np.nan))]
        if row_cost is None:
            arrays[3] = pa.nulls(count, pa.float64())
        arrays += [columns[name].filter(new) for name in result_names]
        self._entries.append(pa.Table.from_arrays(arrays, schema=self._entry_schema), bucket_of(hi, SLICE_BITS))

    def land(self, materialize: bool) -> tuple[pa.Table | None, int]:
        """The collector's land, then the new results into the cache (see the module docstring)."""
        table, rows = super().land(materialize)
        self.commit()
        return table, rows

    def commit(self) -> None:
        """Upload this run's new entries as one segment and name it in the catalog."""
        entries, schema = self._entries, self._entry_schema
        if entries is None or schema is None or not entries.rows.any():
            return
        segment = self.cache.write_segment((sort_entries(entries.read(b)) for b in entries.buckets()), schema)
        if segment is not None:
            self.cache.commit(segment, run_key=self.identity.key)

    def manifest_fields(self) -> dict[str, Any]:
        return {"rows_reused": self.rows_reused, "cost_avoided_usd": self.record.cost_avoided_usd}


__all__ = ["IncrementalCollector"]
