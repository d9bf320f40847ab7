"""Collecting one run's results: the orchestration of the collect step.

:meth:`Collector.prepare` checks that every shard's job SUCCEEDED, downloads each
shard's results (:mod:`~sutro_providers.collection.fetch`) and verifies that every
submitted row came back exactly once (:mod:`~sutro_providers.collection.id_check`),
all before anything is joined or written. :meth:`Collector.land` then streams the
results, unpacked into typed columns (:mod:`~sutro_providers.collection.unpack`)
and joined to the input rows by row id (:mod:`~sutro_providers.collection.join`),
into the output (:func:`~sutro_providers.parquet_io.write_parquet`).

Nothing is written when a check fails: the output is written to a temporary name
and moved into place only after every row was accounted for.
"""

from __future__ import annotations

import itertools
import queue
import tempfile
import threading
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from sutro_providers.client.models import JobRecord
from sutro_providers.client.sutro import SutroClient
from sutro_providers.collection.fetch import download_shard, finished_jobs
from sutro_providers.collection.id_check import check_run_ids
from sutro_providers.collection.join import ResultJoiner
from sutro_providers.collection.summary import SummaryAccumulator
from sutro_providers.collection.unpack import result_schema, unpack_outputs
from sutro_providers.columns import CONFIDENCE_SCORE, OUTPUTS, ROW_ID
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.identity import RunIdentity
from sutro_providers.options import EnrichmentOptions
from sutro_providers.parquet_io import row_group_batches, write_parquet
from sutro_providers.staging.area import StagingArea
from sutro_providers.submission.ledger import LedgerRecord, ShardRecord

T = TypeVar("T")
_ITEM, _ERROR, _END = range(3)


def prefetched(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """``items``, produced up to ``depth`` ahead on a worker thread.

    Arrow releases the GIL while it reads Parquet, parses JSON and encodes Parquet,
    so producing the next batches overlaps with consuming this one (two cores: about
    the time of the slower side instead of the sum). Memory: ``depth`` items more.
    An exception of ``items`` is raised here; closing this generator (or an
    exception in the consumer) stops the worker, which closes ``items``, and waits
    for it, so whatever ``items`` reads from may be closed afterwards."""
    box: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[int, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        outcome: tuple[int, Any] = (_END, None)
        try:
            for item in items:
                if not put((_ITEM, item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            outcome = (_ERROR, exc)
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            except BaseException as exc:  # noqa: BLE001
                outcome = outcome if outcome[0] == _ERROR else (_ERROR, exc)
        put(outcome)

    worker = threading.Thread(target=produce, name="sutro-collect-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()


class Collector:
    """Streams one run's enriched rows: source snapshot ⋈ unpacked results."""

    keep_row_id = False  # the joined batches keep ROW_ID (a subclass that merges more rows in by id)

    def __init__(
        self,
        client: SutroClient,
        area: StagingArea,
        identity: RunIdentity,
        record: LedgerRecord,
        options: EnrichmentOptions,
        spec: FunctionSpec | None,
    ) -> None:
        self.client = client
        self.area = area
        self.identity = identity
        self.record = record
        self.options = options
        self.spec = spec
        self._tmp = tempfile.TemporaryDirectory(prefix="sutro-results-")
        self.jobs: list[JobRecord] = []
        self.summary: SummaryAccumulator | None = None  # filled by land()

    def close(self) -> None:
        self._tmp.cleanup()

    def prepare(self) -> None:
        """Check job states, download every shard and verify its row ids (before
        anything is joined or written)."""
        self.jobs = finished_jobs(self.client, self.record) if self.record.shards else []
        self._paths: list[Path] = []
        if not self.record.shards:
            return

        def downloaded() -> Iterator[tuple[ShardRecord, str, Path]]:
            for shard, job in zip(self.record.shards, self.jobs, strict=True):
                path = download_shard(self.client, job.job_id, Path(self._tmp.name) / f"s{shard.index:04d}.parquet")
                self._paths.append(path)
                yield shard, job.job_id, path

        check_run_ids(self.area, self.identity, downloaded(), self.options.batch_size, self.record.stage_id)

    def _results(self) -> Iterator[pa.Table]:
        for path in self._paths:
            with pa.OSFile(str(path)) as handle:
                footer = pq.ParquetFile(handle)
                names = footer.schema_arrow.names
                # only what unpack_outputs reads (results also carry the prompts): all
                # columns when one it needs is missing, so its error lists them all
                wanted = [n for n in (ROW_ID, OUTPUTS, CONFIDENCE_SCORE) if n in names]
                columns = wanted if ROW_ID in wanted and OUTPUTS in wanted else None
                for batch in row_group_batches(handle, self.options.batch_size, columns, footer.metadata):
                    yield unpack_outputs(pa.Table.from_batches([batch]), self.spec, prefix=self.options.output_prefix)

    def joiner(self) -> tuple[ResultJoiner, Iterator[pa.Table]]:
        """The joiner (its ``schema`` is the output schema) and the unpacked results.
        Without a published spec the result schema is that of the first results."""
        results = self._results()
        if self.spec is not None:
            schema = result_schema(self.spec, prefix=self.options.output_prefix)
        else:
            first = next(results, None)
            schema = first.schema if first is not None else pa.schema([pa.field(ROW_ID, pa.int64())])
            results = itertools.chain([first] if first is not None else [], results)
        source = self.area.source_schema(self.identity, self.record.stage_id)
        return ResultJoiner(source, schema, keep_row_id=self.keep_row_id), results

    def batches(self, joiner: ResultJoiner, results: Iterator[pa.Table]) -> Iterator[pa.RecordBatch]:
        """The enriched batches: the source snapshot, row group by row group, joined
        with ``results``. The results are read and unpacked on one worker thread and
        joined on another, a few batches ahead of the caller (who writes them)."""
        with closing(self.area.read_source(self.identity, self.options.batch_size, stage_id=self.record.stage_id)) as source:
            yield from prefetched(joiner.join(source, prefetched(results)))

    def output(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The output schema and the enriched batches (after :meth:`prepare`)."""
        joiner, results = self.joiner()
        return joiner.schema, self.batches(joiner, results)

    def manifest_fields(self) -> dict[str, Any]:
        """Further manifest fields of this collect (none here)."""
        return {}

    def _summarized(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``batches``, each added to :attr:`summary` on its way out (label counts and
        confidence without holding the table: a streamed collect has no table to summarize)."""
        kind = self.spec.kind if self.spec else "extraction"
        self.summary = SummaryAccumulator(kind=kind, confidence_threshold=self.options.confidence_threshold,
                                          prefix=self.options.output_prefix)
        for batch in batches:
            self.summary.add(batch)
            yield batch

    def land(self, materialize: bool) -> tuple[pa.Table | None, int]:
        """:meth:`prepare`, then stream the enriched rows to ``options.output_uri``
        (when set; written under a temporary name, moved into place at the end) and
        gather them into a table when ``materialize`` or without an output URI
        (otherwise memory stays at a few batches). Returns (the table or ``None``,
        rows out). :attr:`summary` then holds the result summary of every row landed."""
        self.prepare()
        schema, batches = self.output()
        batches = self._summarized(batches)
        table = None
        if materialize or not self.options.output_uri:
            table = pa.Table.from_batches(list(batches), schema=schema)
            batches = iter(table.to_batches())
        if self.options.output_uri:
            written = write_parquet(batches, schema, self.options.output_uri, self.options.output_storage_options)
            return table, written
        assert table is not None
        return table, table.num_rows


def job_usage(jobs: list[JobRecord]) -> tuple[int, int, float | None]:
    """(input tokens, output tokens, cost USD) summed over jobs."""
    costs = [j.job_cost for j in jobs if j.job_cost is not None]
    return (
        sum(j.input_tokens or 0 for j in jobs),
        sum(j.output_tokens or 0 for j in jobs),
        sum(costs) if costs else None,
    )


__all__ = ["Collector", "job_usage", "prefetched"]
