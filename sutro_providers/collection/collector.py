"""Collecting results: download each shard's results, verify that every submitted
row came back exactly once, unpack outputs into typed columns, join them to the
input rows by row id (never by position alone) and write the enriched table.

Nothing is written when a check fails: the output is written to a temporary name
and moved into place only after every row was accounted for.
"""

from __future__ import annotations

import itertools
import logging
import queue
import tempfile
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.client.sutro import SutroClient
from sutro_providers.collection.results import ResultJoiner, check_ids, write_parquet
from sutro_providers.collection.unpack import CONFIDENCE_SCORE, OUTPUTS, result_schema, unpack_outputs
from sutro_providers.errors import (
    SutroError,
    SutroJobCancelledError,
    SutroJobError,
    SutroJobFailedError,
    SutroNotFoundError,
    SutroServerError,
)
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.identity import RunIdentity
from sutro_providers.options import ROW_ID, SKIP_REASON, EnrichmentOptions
from sutro_providers.parquet_io import row_group_batches
from sutro_providers.staging.area import StagingArea
from sutro_providers.submission.ledger import LedgerRecord, ShardRecord

log = logging.getLogger("sutro_providers.collection.collector")
T = TypeVar("T")


def finished_jobs(client: SutroClient, record: LedgerRecord) -> list[JobRecord]:
    """The job record of every shard; raises unless all SUCCEEDED."""
    jobs = []
    for shard in record.shards:
        if not shard.job_id:
            raise SutroJobError(f"shard {shard.index} of this run was never submitted")
        job = client.get_job(shard.job_id)
        if job.status is JobStatus.FAILED:
            why = job.failure_reason.message if job.failure_reason else "no reason given"
            raise SutroJobFailedError(f"Sutro job {job.job_id} FAILED: {why}", job_id=job.job_id, detail=why)
        if job.status in (JobStatus.CANCELLED, JobStatus.CANCELLING):
            raise SutroJobCancelledError(f"Sutro job {job.job_id} was cancelled", job_id=job.job_id)
        if job.status is not JobStatus.SUCCEEDED:
            raise SutroJobError(f"Sutro job {job.job_id} has not finished ({job.status.value})", job_id=job.job_id)
        jobs.append(job)
    return jobs


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


def submitted_id_batches(
    area: StagingArea, identity: RunIdentity, batch_size: int,
) -> Generator[pa.Array, None, None]:
    """The submitted row ids (those without a skip reason) of the source snapshot,
    in order, one Parquet batch at a time."""
    with closing(area.read_source(identity, batch_size, [ROW_ID, SKIP_REASON])) as batches:
        for batch in batches:
            yield batch.column(ROW_ID).filter(pc.is_null(batch.column(SKIP_REASON)))


class IdStream:
    """Hands out the ids of a stream of arrays in pieces of any length."""

    def __init__(self, arrays: Iterator[pa.Array]) -> None:
        self._arrays = arrays
        self._head = pa.array([], pa.int64())
        self.position = 0  # ids handed out (or skipped) so far

    def take(self, limit: int) -> pa.Array:
        """The next ids, at most ``limit`` of them; empty only at the end."""
        while not len(self._head):
            head = next(self._arrays, None)
            if head is None:
                return self._head
            self._head = head
        piece = self._head.slice(0, limit)
        self._head = self._head.slice(len(piece))
        self.position += len(piece)
        return piece

    def skip_to(self, position: int) -> None:
        """Drop ids until ``position`` ids have gone (or the stream ends)."""
        while self.position < position and len(self.take(position - self.position)):
            pass


def _stream_matches(want: IdStream, end: int, got: Iterator[pa.Array]) -> pa.Array | None:
    """``None`` when ``got`` yields exactly ``want``'s ids up to position ``end``, in
    order and without nulls; otherwise the piece of ``want`` that differed (empty when
    ``got`` has nulls or more ids). Consumes ``want`` up to the first difference, so
    the ids of ``want`` that matched are the ``want.position - len(piece)`` ones
    taken since the call."""
    nothing = pa.array([], pa.int64())
    for batch in got:
        if batch.null_count:
            return nothing
        offset = 0
        while offset < len(batch):
            piece = want.take(min(end - want.position, len(batch) - offset))
            if not len(piece) or not piece.equals(batch.slice(offset, len(piece))):
                return piece  # more results than submitted ids, or a different id
            offset += len(piece)
    return None if want.position == end else nothing


def _ids_until(want: IdStream, end: int) -> list[pa.Array]:
    """The ids of ``want`` from its position up to position ``end``, in memory."""
    pieces = []
    while want.position < end:
        piece = want.take(end - want.position)
        if not len(piece):
            break
        pieces.append(piece)
    return pieces


def check_run_ids(
    area: StagingArea, identity: RunIdentity, results: Iterable[tuple[ShardRecord, str, Path]], batch_size: int,
) -> None:
    """Check every shard's results file (``results``: (shard, job id, local path) in
    ledger order; may be a lazy iterable that downloads each) with
    :func:`check_shard_ids` against one stream of the run's submitted ids: the
    snapshot is read once, one batch at a time."""
    with closing(submitted_id_batches(area, identity, batch_size)) as submitted:
        want = IdStream(submitted)
        for shard, job_id, path in results:
            check_shard_ids(want, shard, path, job_id=job_id, batch_size=batch_size)


def check_shard_ids(want: IdStream, shard: ShardRecord, results: Path, *, job_id: str, batch_size: int) -> None:
    """Check that ``results`` (one shard's results file) holds each id the shard
    submitted exactly once, streaming both sides: memory stays at one batch.
    ``want`` streams every submitted id of the run; shards are taken in ledger
    order. On the first difference the shard's full id arrays go to
    :func:`results.check_ids`, which names the missing, duplicated and unknown
    ids, or accepts the same ids in another order. The expected ids are then the
    results' ids that matched, the piece that differed and the rest of the shard
    from ``want``: the snapshot is still read once for the whole run."""
    want.skip_to(shard.first_submitted_row)
    end = shard.first_submitted_row + shard.rows
    with pa.OSFile(str(results)) as handle:
        got = (b.column(0).cast(pa.int64()) for b in row_group_batches(handle, batch_size, [ROW_ID]))
        differing = _stream_matches(want, end, got)
    if differing is None:
        return
    matched = want.position - len(differing) - shard.first_submitted_row
    result_ids = pq.read_table(results, columns=[ROW_ID])[ROW_ID]
    head = result_ids.slice(0, matched).cast(pa.int64()).chunks
    expected = pa.chunked_array([*head, differing, *_ids_until(want, end)], pa.int64())
    check_ids(expected, result_ids, job_id=job_id)


def download_shard(client: SutroClient, job_id: str, dest: Path) -> Path:
    """The results Parquet of one job; falls back to ``job-results`` JSON columns
    when the deployment has no results artifact."""
    try:
        return client.download_results(job_id, dest)
    except (SutroNotFoundError, SutroServerError) as exc:
        log.warning("results-url of %s unavailable (%s); falling back to job-results", job_id, exc.status_code)
    columns = client.job_results(job_id).results
    pq.write_table(pa.table(columns), dest)
    return dest


class Collector:
    """Streams one run's enriched rows: source snapshot ⋈ unpacked results."""

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

        check_run_ids(self.area, self.identity, downloaded(), self.options.batch_size)

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
        return ResultJoiner(self.area.source_schema(self.identity), schema), results

    def batches(self, joiner: ResultJoiner, results: Iterator[pa.Table]) -> Iterator[pa.RecordBatch]:
        """The enriched batches: the source snapshot, row group by row group, joined
        with ``results``. The results are read and unpacked on one worker thread and
        joined on another, a few batches ahead of the caller (who writes them)."""
        with closing(self.area.read_source(self.identity, self.options.batch_size)) as source:
            yield from prefetched(joiner.join(source, prefetched(results)))

    def land(self, materialize: bool) -> tuple[pa.Table | None, int]:
        """:meth:`prepare`, then stream the enriched rows to ``options.output_uri``
        (when set; written under a temporary name, moved into place at the end) and
        gather them into a table when ``materialize`` or without an output URI
        (otherwise memory stays at a few batches). Returns (the table or ``None``,
        rows out)."""
        self.prepare()
        joiner, results = self.joiner()
        batches = self.batches(joiner, results)
        table = None
        if materialize or not self.options.output_uri:
            table = pa.Table.from_batches(list(batches), schema=joiner.schema)
            batches = iter(table.to_batches())
        if self.options.output_uri:
            written = write_parquet(batches, joiner.schema, self.options.output_uri, self.options.output_storage_options)
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


__all__ = [
    "Collector", "IdStream", "SutroError", "check_run_ids", "check_shard_ids", "download_shard", "finished_jobs",
    "job_usage", "prefetched", "submitted_id_batches",
]
