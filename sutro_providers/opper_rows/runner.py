"""The Opper run: validate, stage, call each row once, join, land.

The same run as :class:`~sutro_providers.pipeline.EnrichmentPipeline` (same
:class:`~sutro_providers.identity.RunIdentity`, staging layout, validation before
any call, output table, :class:`~sutro_providers.manifest.Manifest`), with Opper
per-row calls in place of batch jobs:

1. the input is validated and staged as for Sutro (``source.parquet`` and
   ``input-s0000.parquet`` in a folder of this staging, ``<run prefix>/<stage_id>``,
   :meth:`~sutro_providers.staging.area.StagingArea.files_prefix`); the run record
   (``opper-run.json`` under the run's prefix) keeps the input fingerprint, the
   ``stage_id`` and the run's parent span id;
2. rows without a recorded answer in the journal
   (:mod:`~sutro_providers.opper_rows.journal`) are called
   (:mod:`~sutro_providers.opper_rows.calls`); answers are journaled in chunks as
   they complete;
3. the snapshot is joined with the journaled answers (typed by the output schema),
   written to ``output_uri`` (all or nothing), the manifest saved in the record.

Idempotent for an identity: a retry skips recorded rows, a completed run returns
its manifest (and its output) without calling, for the input it ran on only (the
input is fingerprinted again, one read and no upload); an input that changed
since an earlier attempt or the completed run raises (``on_input_change="fail"``)
or starts over (``"resubmit"``, staged in a new folder). Two attempts that overlap
never both call the same rows: the record is written only conditionally and one
attempt at a time holds the claim on calling
(:mod:`~sutro_providers.opper_rows.run_record`). An empty input calls nothing and returns the empty enriched table
(the input's columns, or the declared inputs, then the result columns).

Example::

    from sutro_providers.opper import OpperConfig
    from sutro_providers.opper_rows import OpperOptions, OpperRowPipeline

    pipeline = OpperRowPipeline(OpperConfig.resolve(), StagingLocation(url="s3://my-bucket/sutro"))
    result = pipeline.run("s3://warehouse/tickets.parquet", RunIdentity.of("script", day="2026-11-20"),
                          OpperOptions(function="triage", input_schema=..., output_schema=...))
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from sutro_providers.collection.join import ResultJoiner
from sutro_providers.collection.summary import SummaryAccumulator
from sutro_providers.collection.unpack import result_schema, unpack_outputs
from sutro_providers.columns import CONFIDENCE, ROW_ID, SKIP_REASON
from sutro_providers.errors import (
    SutroConcurrentAttemptError,
    SutroError,
    SutroLedgerConflictError,
    SutroRowsFailedError,
)
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.identity import RunIdentity
from sutro_providers.inputs.sources import SourceReader, TableSource, open_source
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.manifest import Manifest, ModelUsage, RowError
from sutro_providers.opper.client import AsyncOpperClient
from sutro_providers.opper.config import OpperConfig
from sutro_providers.opper_rows.calls import CallPlan, Progress, RowCaller
from sutro_providers.opper_rows.journal import JournalSummary, ResultsJournal
from sutro_providers.opper_rows.options import OpperOptions
from sutro_providers.opper_rows.run_record import OpperRunFile, OpperRunRecord, RunClaim
from sutro_providers.options import StagingLocation
from sutro_providers.parquet_io import open_parquet, parquet_batches, write_parquet
from sutro_providers.pipeline import EnrichmentResult, new_stage_id, output_columns
from sutro_providers.staging.area import StagedRun, StagingArea
from sutro_providers.staging.store import store_errors
from sutro_providers.submission.claims import new_holder
from sutro_providers.submission.ledger_store import LedgerWriteConflict
from sutro_providers.submission.record_file import CONFLICT_RETRIES, RecordReplaced, utc_now

log = logging.getLogger("sutro_providers.opper_rows.runner")
ONE_SHARD = 2**62


def run_tags(identity: RunIdentity, extra: dict[str, str]) -> dict[str, str]:
    """The tags every call of a run carries: ``sutro.run`` (the short run key),
    ``sutro.orchestrator`` and one ``sutro.<part>`` per identity part (dag_id,
    task_id, run_id... or asset_key, partition_key, root_run_id), then ``extra``."""
    tags = {"sutro.run": identity.short, "sutro.orchestrator": identity.orchestrator}
    tags.update({f"sutro.{k}": v for k, v in identity.parts})
    return {**tags, **extra}


def _model_label(model: Any) -> str | None:
    if isinstance(model, list) and model:
        model = model[0]
    if isinstance(model, dict):
        model = model.get("name")
    return model if isinstance(model, str) and model else None


class OpperRowPipeline:
    """Runs Opper functions over tables, one call per row (see the module docstring)."""

    def __init__(self, config: OpperConfig, staging: StagingLocation) -> None:
        self.config = config
        self.area = StagingArea(staging)
        self.holder = new_holder()  # this attempt, in the claim of the run it calls

    # ------------------------------------------------------------------ record
    def record_path(self, identity: RunIdentity) -> str:
        return self.run_file(identity).path

    def run_file(self, identity: RunIdentity) -> OpperRunFile:
        """The run's record, written only conditionally (see :mod:`~sutro_providers.opper_rows.run_record`)."""
        return OpperRunFile(self.area, identity)

    def load(self, identity: RunIdentity) -> OpperRunRecord | None:
        return self.run_file(identity).load()

    def journal(self, identity: RunIdentity, options: OpperOptions) -> ResultsJournal:
        return ResultsJournal(self.area.fs, self.area.run_prefix(identity), chunk_rows=options.journal_chunk_rows,
                              flush_seconds=options.journal_flush_seconds)

    # ------------------------------------------------------------------ run
    def run(self, source: TableSource, identity: RunIdentity, options: OpperOptions, *,
            on_progress: Progress | None = None, materialize: bool = True,
            source_storage_options: dict[str, Any] | None = None) -> EnrichmentResult:
        """Run on an event loop of its own; inside a running loop await :meth:`arun`."""
        with asyncio.Runner() as runner:
            return runner.run(self.arun(source, identity, options, on_progress=on_progress, materialize=materialize,
                                        source_storage_options=source_storage_options))

    async def arun(self, source: TableSource, identity: RunIdentity, options: OpperOptions, *,
                   on_progress: Progress | None = None, materialize: bool = True,
                   source_storage_options: dict[str, Any] | None = None) -> EnrichmentResult:
        """Validate and stage (or check the input of a retry), call the rows without a
        recorded answer, join and land. Raises :class:`SutroInputError` before any
        call on invalid input, :class:`SutroRowsFailedError` when rows failed and
        ``on_row_error="fail"``."""
        started = time.monotonic()
        spec = options.output_spec()
        validator = InputValidator(
            options.function, options.input_field_list(), on_invalid_rows=options.on_invalid_rows,
            id_column=options.id_column, max_row_chars=options.max_row_chars,
            output_columns=output_columns(spec, options.output_prefix),
        )
        examples = options.all_examples()  # a bad examples_file fails before any call

        def reader() -> SourceReader:
            return open_source(source, storage_options=source_storage_options, batch_size=options.batch_size)

        file = self.run_file(identity)
        claim = RunClaim(file, self.holder, options.claim_lease_seconds, options.on_concurrent_attempt)
        fingerprints: dict[int, str] = {}

        def unchanged(record: OpperRunRecord) -> bool:
            """The input is the one ``record`` ran on (one read, no upload; once per version)."""
            version = record.fingerprint_version
            if version not in fingerprints:
                fingerprints[version] = self.area.stage(identity, reader(), validator, shard_size=ONE_SHARD,
                                                        write=False, fingerprint_version=version).fingerprint
            return fingerprints[version] == record.fingerprint

        for _ in range(CONFLICT_RETRIES):
            record = file.load()
            if record is None:
                first = self._first_attempt(identity, options, reader, validator, file, claim)
                if isinstance(first, EnrichmentResult):
                    return first
                if first is None:  # another attempt created the record first: continue from it
                    continue
                record = first
            elif record.phase == "completed" and record.manifest is not None and unchanged(record):
                if not materialize or not self.area.exists(self.area.source_path(identity, record.stage_id)):
                    log.info("Opper run %s already completed; nothing to call", identity.short)
                    return self._completed(record.manifest, options, materialize)
                summary = self.journal(identity, options).summary()
                return self._land(identity, options, record, claim, summary, spec, materialize, timings={})
            else:
                if claim.held_by_other(record):
                    await claim.wait_for_other(record)
                    continue
                changed = not unchanged(record)
                if changed and options.on_input_change == "fail":
                    raise SutroLedgerConflictError(
                        f"the input of Opper run {identity.describe()} changed since its "
                        f"{'completed run' if record.phase == 'completed' else 'earlier attempt'}; set "
                        "on_input_change='resubmit' to start over (its recorded answers are then discarded)"
                    )
                try:
                    if not claim.take(record):
                        continue
                except RecordReplaced:
                    continue
                if changed:
                    try:
                        record = self._restart(identity, options, reader, validator, file, claim, record)
                    except BaseException:
                        claim.release(record)
                        raise
            break
        else:
            raise SutroConcurrentAttemptError(f"Opper run {identity.describe()}: other attempts kept replacing its record")
        stage_s = time.monotonic() - started
        return await self._call_and_land(identity, options, record, claim, examples, spec, materialize,
                                         on_progress, stage_s)

    async def _call_and_land(self, identity: RunIdentity, options: OpperOptions, record: OpperRunRecord,
                             claim: RunClaim, examples: list[dict[str, Any]], spec: FunctionSpec, materialize: bool,
                             on_progress: Progress | None, stage_s: float) -> EnrichmentResult:
        """Under this attempt's claim: call the rows without a recorded answer, then
        land (which releases the claim with the completed record) or release and raise."""
        journal = self.journal(identity, options)
        called = time.monotonic()
        try:
            await self._call_rows(identity, options, record, claim, journal, examples, on_progress)
            summary = journal.summary()
            if summary.failed and options.on_row_error == "fail":
                raise self._failure(identity, options, record, summary)
            call_s = time.monotonic() - called
            return self._land(identity, options, record, claim, summary, spec, materialize,
                              timings={"stage_s": round(stage_s, 3), "call_s": round(call_s, 3)})
        except BaseException:
            claim.release(record)
            raise

    # ------------------------------------------------------------------ steps
    def _local_folders(self, *folders: str) -> None:
        """Opper needs no pre-signing, so a local staging folder works too: its folders
        are made here (object stores have none to make)."""
        if self.area.protocol not in ("file", "local"):
            return
        for folder in folders:
            with store_errors(f"cannot create the staging folder {self.area.display(folder)}"):
                self.area.fs.makedirs(folder, exist_ok=True)

    def _new_stage(self, identity: RunIdentity) -> str:
        """A new staging folder of the run (:func:`~sutro_providers.pipeline.new_stage_id`)."""
        stage_id = new_stage_id()
        self._local_folders(self.area.files_prefix(identity, stage_id))
        return stage_id

    def _new_record(self, identity: RunIdentity, options: OpperOptions, staged: StagedRun) -> OpperRunRecord:
        return OpperRunRecord(run_key=identity.key, identity=identity.describe(), function=options.function,
                              fingerprint=staged.fingerprint, fingerprint_version=staged.fingerprint_version,
                              stage_id=staged.stage_id, rows_in=staged.rows_in, rows_submitted=staged.rows_submitted,
                              rows_skipped=staged.rows_skipped)

    def _first_attempt(self, identity: RunIdentity, options: OpperOptions, reader: Callable[[], SourceReader],
                       validator: InputValidator, file: OpperRunFile,
                       claim: RunClaim) -> OpperRunRecord | EnrichmentResult | None:
        """Stage the input in a folder of its own and create the record holding the
        claim. ``None`` when another attempt created the record first (this staging's
        folder is removed); an :class:`EnrichmentResult` for an empty input."""
        self._local_folders(f"{self.area.run_prefix(identity)}/opper-journal")  # the probe's folder too
        self.area.check_writable()
        opened = reader()
        if opened.num_rows == 0:
            return self._empty(identity, options, validator, opened.schema)
        stage_id = self._new_stage(identity)
        staged = self.area.stage(identity, opened, validator, shard_size=ONE_SHARD, stage_id=stage_id)
        if staged.rows_in == 0:
            self.area.remove([self.area.source_path(identity, stage_id)])
            return self._empty(identity, options, validator, opened.schema)
        record = claim.stamp(self._new_record(identity, options, staged))
        try:
            file.save(record)  # created only if absent
        except LedgerWriteConflict:
            log.info("another attempt of Opper run %s staged it first; continuing from its record", identity.short)
            self.area.remove([self.area.source_path(identity, stage_id), *self.area.shard_paths(identity, stage_id)])
            return None
        return record

    def _restart(self, identity: RunIdentity, options: OpperOptions, reader: Callable[[], SourceReader],
                 validator: InputValidator, file: OpperRunFile, claim: RunClaim,
                 record: OpperRunRecord) -> OpperRunRecord:
        """Under the claim: discard the answers of an input that changed and stage the new one."""
        log.warning("input changed since the earlier attempt: discarding its recorded answers and starting over")
        self.area.remove(self.journal(identity, options).parts())
        self.area.remove([self.area.source_path(identity, record.stage_id), *self.area.shard_paths(identity, record.stage_id)])
        staged = self.area.stage(identity, reader(), validator, shard_size=ONE_SHARD,
                                 stage_id=self._new_stage(identity))
        new = claim.stamp(self._new_record(identity, options, staged))
        new.parent_span_id, new.attempts = record.parent_span_id, record.attempts
        file.save(new)  # replaces the version this attempt claimed, only if unchanged since
        return new

    def _rows(self, identity: RunIdentity, options: OpperOptions, record: OpperRunRecord,
              answered: np.ndarray) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row id, input object) of each staged row without a recorded answer, read
        batch by batch from the staged shard."""
        path = self.area.shard_path(identity, 0, record.stage_id)
        if not self.area.exists(path):
            return
        for batch in parquet_batches(self.area.fs, path, options.batch_size):
            ids = batch.column(ROW_ID).to_numpy()
            todo = ~answered[ids]
            if not todo.any():
                continue
            inputs = batch.drop_columns([ROW_ID]).filter(pa.array(todo)).to_pylist()
            yield from zip(ids[todo].tolist(), inputs, strict=True)

    async def _call_rows(self, identity: RunIdentity, options: OpperOptions, record: OpperRunRecord,
                         claim: RunClaim, journal: ResultsJournal, examples: list[dict[str, Any]],
                         on_progress: Progress | None) -> None:
        """Call every staged row without a recorded answer (read now, under the claim),
        renewing the claim meanwhile; stop starting calls if another attempt took it."""
        answered = journal.answered(record.rows_in)
        todo = record.rows_submitted - int(answered.sum())
        async with AsyncOpperClient(config=self.config) as client:
            model = _model_label(options.model)
            if options.function_id and options.revision_id and model is None:
                model = (await client.get_revision(options.function_id, options.revision_id)).model_name
            tags = run_tags(identity, options.tags)
            if record.parent_span_id is None:
                span = await client.create_span(name=options.function, type="sutro-run", input=identity.describe(),
                                                tags=tags, meta={"rows": record.rows_submitted})
                span_id: str | None = span.id
            else:
                span_id = record.parent_span_id

            def started(fresh: OpperRunRecord) -> None:
                fresh.attempts += 1
                fresh.parent_span_id = fresh.parent_span_id or span_id
            claim.update(record, started)
            log.info("calling Opper %s on %d row(s) (%d already answered), %d at a time", options.function,
                     todo, int(answered.sum()), options.concurrency)
            plan = CallPlan(options, model or "default", tags, record.parent_span_id, examples)
            caller = RowCaller(self.config, plan, journal, total=todo, on_progress=on_progress)
            lost: list[SutroConcurrentAttemptError] = []

            def on_lost(error: SutroConcurrentAttemptError) -> None:
                lost.append(error)
                caller.stats.stopped = True  # no new call; those in flight finish and are journaled

            keeper = asyncio.create_task(claim.keep(record, on_lost))
            try:
                stats = await caller.run(self._rows(identity, options, record, answered))
            except BaseException as exc:
                await self._end_span(client, record.parent_span_id, error=f"{type(exc).__name__}: {exc}")
                raise
            finally:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
            if lost:
                raise lost[0]
            outcome = f"{stats.calls} call(s), {stats.failed} failed"
            await self._end_span(client, record.parent_span_id, output=outcome,
                                 error=outcome if stats.failed else None)

    @staticmethod
    async def _end_span(client: AsyncOpperClient, span_id: str | None, **fields: Any) -> None:
        if span_id is None:
            return
        try:
            await client.update_span(span_id, end_time=utc_now(), **{k: v for k, v in fields.items() if v is not None})
        except SutroError as exc:  # tracing must not fail a run whose answers are recorded
            log.warning("could not close the run's Opper span: %s", exc)

    def _failed_ids(self, identity: RunIdentity, options: OpperOptions, record: OpperRunRecord,
                    rows: list[int]) -> dict[int, str]:
        """``id_column`` values of ``rows`` (the snapshot's two columns, batch by batch)."""
        if not options.id_column or not rows:
            return {}
        wanted = pa.array(rows, pa.int64())
        found: dict[int, str] = {}
        for batch in self.area.read_source(identity, options.batch_size, [ROW_ID, options.id_column],
                                           stage_id=record.stage_id):
            hits = batch.filter(pc.is_in(batch.column(ROW_ID), value_set=wanted))
            for row, value in zip(hits.column(ROW_ID).to_pylist(), hits.column(options.id_column).to_pylist(),
                                  strict=True):
                found[row] = str(value)
        return found

    def _row_errors(self, identity: RunIdentity, options: OpperOptions, record: OpperRunRecord,
                    summary: JournalSummary) -> list[RowError]:
        rows = sorted(summary.failed)[: options.max_reported_errors]
        ids = self._failed_ids(identity, options, record, rows)
        return [RowError(row=r, id=ids.get(r), reason=summary.failed[r]) for r in rows]

    def _failure(self, identity: RunIdentity, options: OpperOptions, record: OpperRunRecord,
                 summary: JournalSummary) -> SutroRowsFailedError:
        errors = self._row_errors(identity, options, record, summary)
        named = "; ".join(f"row {e.row}" + (f" (id {e.id})" if e.id else "") + f": {e.reason}" for e in errors[:5])
        return SutroRowsFailedError(
            f"{len(summary.failed)} row(s) of Opper run {identity.describe()} failed after retries "
            f"(on_row_error='fail'; a retry calls only the rows without an answer): {named}",
            rows=[e.model_dump() for e in errors],
        )

    def _land(self, identity: RunIdentity, options: OpperOptions, record: OpperRunRecord, claim: RunClaim,
              summary: JournalSummary, spec: FunctionSpec, materialize: bool, timings: dict[str, float]) -> EnrichmentResult:
        """Join the snapshot with the journaled answers and write the output; a run
        landed for the first time records its manifest (releasing the claim)."""
        prefix = options.output_prefix
        journal = self.journal(identity, options)
        confidence = prefix + CONFIDENCE
        full = result_schema(spec, prefix=prefix)
        results_schema = pa.schema([f for f in full if f.name != confidence])
        source_path = self.area.source_path(identity, record.stage_id)
        joiner = ResultJoiner(self.area.source_schema(identity, record.stage_id), results_schema)
        index = journal.index()
        pending: deque[pa.Table] = deque()
        failed = summary.failed

        def sources() -> Iterator[pa.RecordBatch]:
            for batch in self.area.read_source(identity, options.batch_size, stage_id=record.stage_id):
                ids = batch.column(ROW_ID)
                low, high = pc.min(ids).as_py(), pc.max(ids).as_py()
                if low is None:
                    continue
                mine = {r: why for r, why in failed.items() if low <= r <= high} if failed else {}
                if mine:
                    reasons = batch.column(SKIP_REASON).to_pylist()
                    for i, row in enumerate(ids.to_pylist()):
                        if row in mine:
                            reasons[i] = f"opper call failed: {mine[row]}"
                    at = batch.schema.get_field_index(SKIP_REASON)
                    batch = batch.set_column(at, SKIP_REASON, pa.array(reasons, pa.string()))
                answers = journal.answers(index, low, high + 1)
                if answers.num_rows:  # an empty table would end results() early (see below)
                    unpacked = unpack_outputs(answers, spec, prefix=prefix).drop_columns([confidence])
                    pending.append(unpacked.cast(results_schema))
                yield batch

        def results() -> Iterator[pa.Table]:
            # The joiner pulls a batch's answers only after sources() queued them, and
            # only as many as the batch needs, so the queue is empty only at the end.
            while pending:
                yield pending.popleft()

        summarizer = SummaryAccumulator(kind="extraction", confidence_threshold=options.confidence_threshold,
                                        prefix=prefix)
        kept: list[pa.RecordBatch] = []

        def enriched() -> Iterator[pa.RecordBatch]:
            for batch in joiner.join(sources(), results()):
                summarizer.add(batch)
                if materialize:
                    kept.append(batch)
                yield batch

        if options.output_uri:
            write_parquet(enriched(), joiner.schema, options.output_uri, options.output_storage_options)
        else:
            for _ in enriched():
                pass
        table = pa.Table.from_batches(kept, schema=joiner.schema) if materialize else None
        if joiner.rows_out != record.rows_in:
            raise SutroError(f"enriched {joiner.rows_out} rows but the input had {record.rows_in}")
        if record.phase == "completed" and record.manifest is not None:  # read again: the run is unchanged
            return EnrichmentResult(table, record.manifest)
        manifest = Manifest(
            run_key=identity.key, identity=identity.describe(), function=options.function, backend="opper",
            model=next(iter(summary.by_model), None) if len(summary.by_model) == 1 else None, state="succeeded",
            rows_in=record.rows_in, rows_submitted=record.rows_submitted, rows_out=joiner.rows_out,
            rows_skipped=joiner.rows_skipped, rows_failed=len(failed), row_errors=self._row_errors(identity, options, record, summary),
            input_tokens=summary.input_tokens, output_tokens=summary.output_tokens, cost_usd=summary.cost_usd,
            usage_by_model={m: ModelUsage(**vars(u)) for m, u in summary.by_model.items()},
            trace_span_id=record.parent_span_id, staging_prefix=self.area.display(self.area.run_prefix(identity)),
            output_uri=options.output_uri, output_columns=joiner.schema.names, summary=summarizer.result(),
            timings=timings, started_at=record.created_at, finished_at=utc_now(),
        )
        def completed(fresh: OpperRunRecord) -> None:
            fresh.phase, fresh.manifest = "completed", manifest
            fresh.holder, fresh.claimed_until = None, None
        claim.file.update(record, completed)
        if not options.keep_staged:
            done = [source_path, *journal.parts()] if options.output_uri else []
            self.area.remove([*self.area.shard_paths(identity, record.stage_id), *done])
        log.info("Opper %s: %d rows enriched (%d skipped, %d failed), %d calls recorded, cost %s USD",
                 options.function, manifest.rows_out, manifest.rows_skipped, manifest.rows_failed,
                 sum(u.calls for u in summary.by_model.values()), manifest.cost_usd)
        return EnrichmentResult(table, manifest)

    @staticmethod
    def _empty(identity: RunIdentity, options: OpperOptions, validator: InputValidator,
               schema: pa.Schema) -> EnrichmentResult:
        """An empty input, once its columns are checked as any day's are: no call, the
        ``noop`` manifest and the empty enriched table (the input's columns, or the
        declared inputs when it has none, then the result columns and the skip reason)."""
        if schema.names:
            validator.check_schema(schema)
        log.info("input of %s is empty: no Opper call made", options.function)
        manifest = Manifest(run_key=identity.key, identity=identity.describe(), function=options.function,
                            backend="opper", state="noop", started_at=utc_now(), message="empty input: nothing called")
        prefix = options.output_prefix
        results = pa.schema([f for f in result_schema(options.output_spec(), prefix=prefix)
                             if f.name != prefix + CONFIDENCE])
        source = (schema if schema.names else validator.declared_schema()).append(pa.field(ROW_ID, pa.int64()))
        return EnrichmentResult(ResultJoiner(source, results).schema.empty_table(), manifest)

    @staticmethod
    def _completed(manifest: Manifest, options: OpperOptions, materialize: bool) -> EnrichmentResult:
        if not materialize:
            return EnrichmentResult(None, manifest)
        if not manifest.output_uri:
            raise SutroError(
                f"Opper run {manifest.identity} completed earlier, but neither its staged snapshot nor an "
                "output_uri remains to read its rows from; run it under a new identity"
            )
        fs, path = url_to_fs(manifest.output_uri, **options.output_storage_options)
        with open_parquet(fs, path) as handle:
            return EnrichmentResult(pq.read_table(handle), manifest)

