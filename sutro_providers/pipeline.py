"""The enrichment run: validate, stage, submit once, wait, collect, land.

One class serves every orchestrator. :meth:`EnrichmentPipeline.run` is the run
(submit → wait → check → collect, with a progress callback): the Airflow operator
(waiting on the worker), the Dagster asset, scripts and the chaos runner call it.
Airflow's deferrable operator calls the same steps apart: :meth:`~EnrichmentPipeline.submit`,
a trigger in place of :meth:`~EnrichmentPipeline.wait`, then :meth:`~EnrichmentPipeline.check`
and :meth:`~EnrichmentPipeline.collect` on the worker. Every step is idempotent for a given
:class:`~sutro_providers.identity.RunIdentity` (see :mod:`sutro_providers.submission.ledger`).

Example::

    from sutro_providers import SutroClient
    from sutro_providers.identity import RunIdentity
    from sutro_providers.options import EnrichmentOptions, StagingLocation
    from sutro_providers.pipeline import EnrichmentPipeline

    pipeline = EnrichmentPipeline(SutroClient(), StagingLocation(url="s3://my-bucket/sutro"))
    result = pipeline.run(
        "s3://warehouse/tickets/2026-11-20.parquet",
        RunIdentity.of("script", table="tickets", day="2026-11-20"),
        EnrichmentOptions(function="ticket-triage", output_uri="s3://warehouse/tickets_triaged/2026-11-20.parquet"),
    )
    print(result.manifest.rows_out, result.manifest.cost_usd)
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from sutro_providers.client.sutro import SutroClient
from sutro_providers.collection.collector import Collector, job_usage
from sutro_providers.collection.unpack import result_columns
from sutro_providers.columns import SKIP_REASON
from sutro_providers.empty_run import empty_manifest, empty_table
from sutro_providers.errors import (
    SutroConcurrentAttemptError,
    SutroError,
    SutroInputError,
    SutroLedgerConflictError,
    SutroNotFoundError,
    SutroStagingError,
)
from sutro_providers.function_spec import FunctionSpec, InputField
from sutro_providers.identity import RunIdentity
from sutro_providers.incremental import incremental_collector, stage_incremental
from sutro_providers.inputs.sources import SourceReader, TableSource, open_source
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.manifest import Manifest, ShardInfo
from sutro_providers.options import EnrichmentOptions, StagingLocation
from sutro_providers.parquet_io import open_parquet
from sutro_providers.staging.area import StagedRun, StagingArea
from sutro_providers.submission.claims import new_holder
from sutro_providers.submission.ledger import Ledger, LedgerRecord, RecordReplaced, ShardRecord, utc_now
from sutro_providers.submission.submitter import EstimatePending, ShardSubmitter
from sutro_providers.waiting.outcome import JobOutcome
from sutro_providers.waiting.polling import ProgressCallback, WaitResult, deadline_from, wait_for_jobs
from sutro_providers.waiting.progress_report import ProgressReporter

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

log = logging.getLogger("sutro_providers.pipeline")


@dataclass
class EnrichmentResult:
    """The enriched table (input columns + result columns, in input order; ``None``
    when not materialised; an empty input gives an empty table of those columns, see
    :meth:`EnrichmentPipeline.empty_table`) and the run's manifest."""

    table: pa.Table | None
    manifest: Manifest

    def to_pandas(self) -> pd.DataFrame:
        return self._table().to_pandas()

    def to_polars(self) -> pl.DataFrame:
        import polars as pl

        return pl.from_arrow(self._table())  # type: ignore[return-value]

    def _table(self) -> pa.Table:
        if self.table is None:
            raise SutroError("the enriched table was not materialised; read it from manifest.output_uri")
        return self.table


def output_columns(spec: FunctionSpec | None, prefix: str) -> list[str]:
    """The result columns a Function adds (known only when it publishes a spec)."""
    return [*result_columns(spec, prefix=prefix), SKIP_REASON] if spec is not None else [SKIP_REASON]


class EnrichmentPipeline:
    """Runs Functions over tables through one Sutro client and one staging location."""

    def __init__(self, client: SutroClient, staging: StagingLocation) -> None:
        self.client = client
        self.area = StagingArea(staging)
        self.holder = new_holder()  # this attempt, in the claims of the shards it submits
        self._specs: dict[str, FunctionSpec | None] = {}

    # ---------------------------------------------------------------- helpers
    def function_spec(self, function: str) -> FunctionSpec | None:
        """The published spec, when the deployment exposes it (the local server does)."""
        if function not in self._specs:
            try:
                self._specs[function] = self.client.get_function(function)
            except SutroNotFoundError:
                self._specs[function] = None
        return self._specs[function]

    def _fields(self, options: EnrichmentOptions) -> tuple[list[InputField], FunctionSpec | None]:
        spec = self.function_spec(options.function)
        if options.input_fields is not None:
            return options.input_fields, spec
        if spec is None:
            raise SutroInputError(
                f"Function {options.function!r} does not publish its input fields on this deployment "
                "(or does not exist); pass input_fields= to validate the table before submitting"
            )
        return spec.inputs, spec

    def _validator(self, options: EnrichmentOptions) -> tuple[InputValidator, FunctionSpec | None]:
        fields, spec = self._fields(options)
        validator = InputValidator(
            options.function,
            fields,
            on_invalid_rows=options.on_invalid_rows,
            id_column=options.id_column,
            max_row_chars=options.max_row_chars,
            output_columns=output_columns(spec, options.output_prefix),
        )
        return validator, spec

    def _shard_size(self, options: EnrichmentOptions) -> int:
        sizes = [options.max_rows_per_job] if options.max_rows_per_job else []
        try:
            quota = self.client.get_quotas().for_priority(options.job_priority).row_quota
        except SutroNotFoundError:
            quota = None
        if quota:
            sizes.append(quota)
        return min(sizes) if sizes else 2**62

    def _ledger(self, identity: RunIdentity) -> Ledger:
        return Ledger(self.area.fs, self.area.ledger_path(identity),
                      unconditional=self.area.location.unconditional_ledger_writes)

    def _new_record(self, identity: RunIdentity, options: EnrichmentOptions, staged: StagedRun, attempt: int = 0) -> LedgerRecord:
        shards, first = [], 0
        for index, rows in enumerate(staged.shard_rows):
            shards.append(ShardRecord(index=index, rows=rows, first_submitted_row=first, attempt=attempt,
                                      job_name=identity.job_name(index, attempt)))
            first += rows
        return LedgerRecord(
            run_key=identity.key, identity=identity.describe(), function=options.function,
            fingerprint=staged.fingerprint, fingerprint_version=staged.fingerprint_version, stage_id=staged.stage_id,
            phase="staged", rows_in=staged.rows_in,
            rows_submitted=staged.rows_submitted, rows_skipped=staged.rows_skipped, shards=shards,
            rows_reused=staged.rows_reused, cost_avoided_usd=staged.cost_avoided_usd,
        )

    def manifest(self, identity: RunIdentity, record: LedgerRecord, state: Any, **extra: Any) -> Manifest:
        spec = self._specs.get(record.function)
        return Manifest(
            run_key=identity.key, identity=identity.describe(), function=record.function,
            model=spec.default_model if spec else None, state=state,
            shards=[ShardInfo(index=s.index, job_id=s.job_id, job_name=s.job_name, rows=s.rows) for s in record.shards],
            rows_in=record.rows_in, rows_submitted=record.rows_submitted, rows_skipped=record.rows_skipped,
            cost_estimate_usd=record.cost_estimate_usd,
            staging_prefix=self.area.display(self.area.run_prefix(identity)),
            **{"rows_reused": record.rows_reused, "cost_avoided_usd": record.cost_avoided_usd, **extra},
        )

    # ---------------------------------------------------------------- steps
    def submit(
        self,
        source: TableSource,
        identity: RunIdentity,
        options: EnrichmentOptions,
        *,
        source_storage_options: dict[str, Any] | None = None,
        estimate_only: bool = False,
        wait_for_estimate: bool = True,
    ) -> Manifest:
        """Validate, stage and submit every shard once (or reattach). Idempotent.

        Returns a manifest in state ``submitted``, ``noop`` (no rows: no job) or
        ``succeeded`` (this identity already completed). Invalid input raises
        :class:`~sutro_providers.errors.SutroInputError` before any job exists.

        ``estimate_only`` runs the cost-estimate jobs (free) and stops there: state
        ``estimated``, ``cost_estimate_usd`` set, no run job. ``wait_for_estimate=False``
        does not block on the estimate jobs (``max_cost_usd`` or ``estimate_only``):
        while they run the state is ``estimating`` with their ids in
        ``estimate_job_ids``; call again once they ended (nothing is created twice).
        """
        started = time.monotonic()
        ledger = self._ledger(identity)
        # Independent round trips, at the same time: the ledger, the Function's spec, the
        # quota (the shard size) and, on a first attempt, the write probe (it fails early
        # and clearly when the bucket is missing or read-only).
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="sutro-submit") as pool:
            loaded = pool.submit(ledger.load)
            spec = pool.submit(self.function_spec, options.function)
            quota = pool.submit(self._shard_size, options)
            record = loaded.result()
            spec.result()
            validator, _ = self._validator(options)
            if record is None:
                probe = pool.submit(self.area.check_writable)
                opened = self._open(source, options, source_storage_options)  # the emptiness check and staging share it
                if opened.num_rows == 0:
                    return empty_manifest(identity, options, validator, opened.schema)
                probe.result()
            shard_size = quota.result()
        reader = lambda: self._open(source, options, source_storage_options)  # noqa: E731 - opened again per pass
        if record is not None and record.phase == "completed" and record.manifest is not None:
            return self._completed_or_changed(identity, options, reader, validator, record, ledger, shard_size)
        if record is None:
            stage_id = new_stage_id()
            staged = self._stage(identity, options, opened, validator, shard_size, stage_id)
            if staged.rows_in == 0:
                self.area.remove([self.area.source_path(identity, stage_id)])
                return empty_manifest(identity, options, validator, opened.schema)
            record = self._new_record(identity, options, staged)  # saved with the first shard's intent
        else:
            record = self._check_unchanged(identity, options, reader, validator, record, ledger, shard_size)
        stage_seconds = time.monotonic() - started
        try:
            record = self._submit_once(identity, options, reader, validator, record, ledger, shard_size,
                                       estimate_only=estimate_only, wait_for_estimate=wait_for_estimate)
        except EstimatePending as pending:
            return self.manifest(identity, record, "estimating", estimate_job_ids=pending.job_ids,
                                 started_at=record.created_at)
        state = "estimated" if estimate_only else "submitted" if record.shards else "noop"
        return self.manifest(identity, record, state, started_at=record.created_at,
                             estimate_job_ids=[s.estimate_job_id for s in record.shards if s.estimate_job_id],
                             timings={"stage_s": round(stage_seconds, 3)})

    def estimate(self, source: TableSource, identity: RunIdentity, options: EnrichmentOptions, *,
                 source_storage_options: dict[str, Any] | None = None) -> Manifest:
        """The cost estimate of a run, without running it (the SDK's ``dry_run``): its
        input is validated and staged, its cost-estimate jobs (free) run, and the
        manifest (state ``estimated``, ``cost_estimate_usd``) comes back; no run job
        is created. The estimate is kept in the run's ledger: a later :meth:`submit`
        of the same identity reuses the staging and, with ``max_cost_usd``, the estimate."""
        return self.submit(source, identity, options, source_storage_options=source_storage_options,
                           estimate_only=True)

    def _submit_once(self, identity: RunIdentity, options: EnrichmentOptions, reader: Callable[[], SourceReader],
                     validator: InputValidator, record: LedgerRecord, ledger: Ledger, shard_size: int, *,
                     estimate_only: bool = False, wait_for_estimate: bool = True) -> LedgerRecord:
        """Cost check and every shard's job under this attempt's claims. When another
        attempt's staging of the run took the ledger first (overlapping first attempts),
        this attempt's staged files go and it continues from the other's record."""
        submitter = ShardSubmitter(self.client, self.area, ledger, identity, options, holder=self.holder)
        for _ in range(3):
            try:
                submitter.check_cost(record, estimate=estimate_only, wait=wait_for_estimate)
                if not estimate_only:
                    submitter.submit_all(record)
                return record
            except RecordReplaced:
                mine = record.stage_id
                fresh = ledger.load()
                if fresh is None:
                    raise
                if fresh.stage_id != mine and not any(s.job_id for s in record.shards):
                    self.area.remove([self.area.source_path(identity, mine), *self.area.shard_paths(identity, mine)])
                log.info("another attempt of run %s staged it first; continuing from its ledger", identity.short)
                if fresh.phase == "completed" and fresh.manifest is not None:
                    return fresh
                record = self._check_unchanged(identity, options, reader, validator, fresh, ledger, shard_size)
        raise SutroConcurrentAttemptError(f"run {identity.describe()}: other attempts kept replacing its ledger")

    def _completed_or_changed(self, identity: RunIdentity, options: EnrichmentOptions,
                              reader: Callable[[], SourceReader], validator: InputValidator, record: LedgerRecord,
                              ledger: Ledger, shard_size: int) -> Manifest:
        """A completed run is reused only for the input it was run on: the input is
        validated and fingerprinted again (one read, no upload), and a changed input
        follows ``on_input_change`` as for an unfinished run."""
        assert record.manifest is not None
        check = self.area.stage(identity, reader(), validator, shard_size=shard_size, write=False,
                                fingerprint_version=record.fingerprint_version)
        if check.fingerprint == record.fingerprint:
            log.info("run %s already completed; nothing to submit", identity.short)
            return record.manifest
        self._input_changed(identity, options, record)
        attempt = max((s.attempt for s in record.shards), default=-1) + 1
        new = self._restage(identity, options, reader(), validator, shard_size, attempt, ledger)
        new = self._submit_once(identity, options, reader, validator, new, ledger, shard_size)
        return self.manifest(identity, new, "submitted", started_at=new.created_at)

    def _restage(self, identity: RunIdentity, options: EnrichmentOptions, opened: SourceReader,
                 validator: InputValidator, shard_size: int, attempt: int, ledger: Ledger) -> LedgerRecord:
        staged = self._stage(identity, options, opened, validator, shard_size, new_stage_id())
        new = self._new_record(identity, options, staged, attempt)
        ledger.save(new)
        return new

    def _input_changed(self, identity: RunIdentity, options: EnrichmentOptions, record: LedgerRecord) -> None:
        if options.on_input_change == "fail":
            raise SutroLedgerConflictError(
                f"the input of run {identity.describe()} changed since its earlier attempt "
                f"(jobs {[s.job_id for s in record.shards if s.job_id]}); set on_input_change='resubmit' to start over"
            )
        log.warning("input changed since the earlier attempt: cancelling its jobs and submitting anew")
        self._cancel_record(record)

    @staticmethod
    def _open(source: TableSource, options: EnrichmentOptions, storage_options: dict[str, Any] | None) -> SourceReader:
        return open_source(source, storage_options=storage_options, batch_size=options.batch_size)

    def empty_table(self, source: TableSource, options: EnrichmentOptions,
                    source_storage_options: dict[str, Any] | None = None) -> pa.Table:
        """The enriched table of an empty input (:func:`~sutro_providers.empty_run.empty_table`).
        Reads only the source's schema."""
        validator, spec = self._validator(options)
        return empty_table(self._open(source, options, source_storage_options).schema, validator, spec, options)

    def _stage(self, identity: RunIdentity, options: EnrichmentOptions, opened: SourceReader,
               validator: InputValidator, shard_size: int, stage_id: str) -> StagedRun:
        if options.incremental:  # the lookup first; only missed rows go to the shards
            return stage_incremental(self.area, identity, opened, validator, self.function_spec(options.function),
                                     options, shard_size=shard_size, stage_id=stage_id)
        return self.area.stage(identity, opened, validator, shard_size=shard_size, stage_id=stage_id)

    def _check_unchanged(self, identity: RunIdentity, options: EnrichmentOptions, reader: Callable[[], SourceReader],
                         validator: InputValidator, record: LedgerRecord, ledger: Ledger, shard_size: int) -> LedgerRecord:
        check = self.area.stage(identity, reader(), validator, shard_size=shard_size, write=False,
                                fingerprint_version=record.fingerprint_version)
        if check.fingerprint == record.fingerprint:
            never_sent = all(s.state == "planned" for s in record.shards)
            if not (never_sent and max((s.rows for s in record.shards), default=0) > shard_size):
                return record
            # the quota shrank before any job existed: re-plan shards
            log.info("re-planning shards of %d rows at most (nothing was submitted yet)", shard_size)
            return self._restage(identity, options, reader(), validator, shard_size, 0, ledger)
        self._input_changed(identity, options, record)
        attempt = max((s.attempt for s in record.shards), default=-1) + 1
        return self._restage(identity, options, reader(), validator, shard_size, attempt, ledger)

    def wait(self, identity: RunIdentity, options: EnrichmentOptions, on_progress: ProgressCallback | None = None,
             progress_log: Callable[[str], None] | None = None) -> WaitResult:
        """Poll the run's jobs on this thread (see :mod:`sutro_providers.waiting.polling`).
        ``progress_log`` gets the progress lines (``options.progress_interval``,
        ``options.progress_stream``; :mod:`sutro_providers.waiting.progress_report`)."""
        record = self._require(identity)
        job_ids = [s.job_id for s in record.shards if s.job_id]
        progress = None if progress_log is None else ProgressReporter(job_ids, progress_log,
                                                                      interval=options.progress_interval)
        return wait_for_jobs(
            self.client, job_ids,
            poll_interval=options.poll_interval, max_poll_interval=options.max_poll_interval,
            deadline=deadline_from(options.timeout), max_consecutive_errors=options.max_consecutive_poll_errors,
            on_progress=on_progress, progress=progress, progress_stream=options.progress_stream,
        )

    def collect(self, identity: RunIdentity, options: EnrichmentOptions, *, materialize: bool = True,
                submitted: Manifest | None = None) -> EnrichmentResult:
        """Download, verify, join and land the results of a run whose jobs succeeded.

        ``submitted`` is the manifest :meth:`submit` returned, when at hand: an empty
        input then returns it as it is (nothing to collect, ``table`` is ``None``), and
        so does a run completed by an earlier attempt when ``materialize`` is off.

        Raises :class:`~sutro_providers.errors.SutroResultsError` when a row is
        missing or duplicated (nothing is written then), and the job errors when a
        job failed or was cancelled. Marks the run completed and removes the signed
        input shards (unless ``keep_staged``); with an ``output_uri`` the source
        snapshot is removed too, since the output then stands in for it. Safe to call
        again: a completed run is collected again from its snapshot, or read back
        from its ``output_uri``.
        """
        if submitted is not None and (is_empty(submitted) or (submitted.state == "succeeded" and not materialize)):
            return EnrichmentResult(None, submitted)
        started = time.monotonic()
        ledger = self._ledger(identity)
        record = self._require(identity, ledger)
        if record.phase == "completed" and record.manifest is not None and not self.area.exists(
            self.area.source_path(identity, record.stage_id)
        ):
            return self._completed(record.manifest, options, materialize)
        validator, spec = self._validator(options)  # incremental runs key their new results by it
        collector = (incremental_collector(self.client, self.area, identity, record, options, spec, validator)
                     if options.incremental else Collector(self.client, self.area, identity, record, options, spec))
        try:
            table, rows_out = collector.land(materialize)
        except (SutroError, OSError) as exc:
            done = ledger.load()  # an overlapping attempt may have completed the run and removed its files
            if done is not None and done.phase == "completed" and done.manifest is not None:
                log.info("another attempt of run %s completed it while this one collected; using its result",
                         identity.short)
                return self._completed(done.manifest, options, materialize)
            if isinstance(exc, OSError):
                raise SutroStagingError(f"cannot read the staged files of run {identity.describe()}: "
                                        f"{type(exc).__name__}: {exc}") from exc
            raise
        finally:
            collector.close()
        input_tokens, output_tokens, cost = job_usage(collector.jobs)
        summary = collector.summary.result() if collector.summary is not None else None  # streamed or not
        manifest = self.manifest(
            identity, record, "succeeded", rows_out=rows_out, input_tokens=input_tokens,
            output_tokens=output_tokens, cost_usd=cost, output_uri=options.output_uri,
            output_columns=table.column_names if table is not None else [],
            started_at=record.created_at, finished_at=utc_now(),
            timings={"collect_s": round(time.monotonic() - started, 3)}, **collector.manifest_fields(),
        )
        if summary is not None:
            manifest.summary = summary
        for info, job in zip(manifest.shards, collector.jobs, strict=False):
            info.status, info.input_tokens, info.output_tokens, info.cost_usd = (
                job.status.value, job.input_tokens, job.output_tokens, job.job_cost)
        if manifest.rows_out != record.rows_in:
            raise SutroError(f"enriched {manifest.rows_out} rows but the input had {record.rows_in}")
        ledger.update(record, lambda fresh: _complete(fresh, manifest))  # an overlapping attempt may complete it too
        if not options.keep_staged:
            snapshot = ([self.area.source_path(identity, record.stage_id),
                         *self.area.reused_paths(identity, record.stage_id)] if options.output_uri else [])
            self.area.remove([*self.area.shard_paths(identity, record.stage_id), *snapshot])
        return EnrichmentResult(table, manifest)

    def _completed(self, manifest: Manifest, options: EnrichmentOptions, materialize: bool) -> EnrichmentResult:
        """A completed run whose staged snapshot is gone: its output is the record."""
        if not materialize:
            return EnrichmentResult(None, manifest)
        if not manifest.output_uri:
            raise SutroError(
                f"run {manifest.identity} completed earlier, but neither its staged snapshot nor an output_uri "
                "remains to read its rows from; run it under a new identity"
            )
        fs, path = url_to_fs(manifest.output_uri, **options.output_storage_options)
        with open_parquet(fs, path) as handle:
            return EnrichmentResult(pq.read_table(handle), manifest)

    def job_ids(self, identity: RunIdentity) -> list[str] | None:
        """The run's job ids as its ledger records them (``None``: no ledger, i.e. never
        staged, or an empty input)."""
        record = self._ledger(identity).load()
        return None if record is None else [s.job_id for s in record.shards if s.job_id]

    def cancel(self, identity: RunIdentity) -> list[str]:
        """Cancel every job of the run that is not finished. Idempotent."""
        record = self._ledger(identity).load()
        return self._cancel_record(record) if record else []

    def _cancel_record(self, record: LedgerRecord) -> list[str]:
        cancelled = []
        for shard in record.shards:
            if shard.job_id and shard.state != "completed":
                result = self.client.cancel_job(shard.job_id)
                if result.cancelled:
                    cancelled.append(shard.job_id)
        if cancelled:
            log.info("cancelled Sutro job(s) %s", ", ".join(cancelled))
        return cancelled

    def cleanup(self, identity: RunIdentity) -> None:
        """Remove the run's staged files (inputs and source snapshot); keeps the ledger."""
        record = self._ledger(identity).load()
        stage_id = record.stage_id if record else None
        self.area.remove([self.area.source_path(identity, stage_id), *self.area.shard_paths(identity, stage_id)])

    def _require(self, identity: RunIdentity, ledger: Ledger | None = None) -> LedgerRecord:
        record = (ledger or self._ledger(identity)).load()  # the ledger that will write remembers the version
        if record is None:
            raise SutroError(f"no submitted run for {identity.describe()}: call submit() first")
        return record

    def check(self, waited: WaitResult, identity: RunIdentity, options: EnrichmentOptions) -> None:
        """Raise the core error of a failed wait (:func:`~sutro_providers.waiting.outcome.outcome_error`),
        on ``timeout`` cancelling the run's jobs first when ``options.cancel_on_timeout``."""
        message = waited.message
        if waited.outcome is JobOutcome.TIMEOUT and options.cancel_on_timeout:
            cancelled = self.cancel(identity)
            message += f"; cancelled job(s) {', '.join(cancelled) or 'none still running'}"
        error = waited.error(message)
        if error is not None:
            raise error

    # ---------------------------------------------------------------- one shot
    def run(self, source: TableSource, identity: RunIdentity, options: EnrichmentOptions, *,
            on_progress: ProgressCallback | None = None, on_submitted: Callable[[Manifest], None] | None = None,
            materialize: bool = True, source_storage_options: dict[str, Any] | None = None,
            progress_log: Callable[[str], None] | None = None) -> EnrichmentResult:
        """submit → wait → :meth:`check` → collect: the run every orchestrator drives.

        ``on_submitted(manifest)`` runs once the jobs exist (or are reattached), before
        the wait (publish job ids and links there); ``on_progress`` gets every poll;
        ``progress_log`` the progress lines of the wait (see :meth:`wait`). An
        empty input returns at once (``table``: :meth:`empty_table`); a completed run skips the
        wait (and the collect, when not ``materialize``). A failed wait raises a
        :class:`~sutro_providers.errors.SutroJobError`; an interrupt cancels nothing."""
        manifest = self.submit(source, identity, options, source_storage_options=source_storage_options)
        if on_submitted is not None:
            on_submitted(manifest)
        if is_empty(manifest):  # nothing to wait for or collect: the enriched columns, no rows
            return EnrichmentResult(self.empty_table(source, options, source_storage_options), manifest)
        if manifest.state == "submitted":
            self.check(self.wait(identity, options, on_progress, progress_log), identity, options)
        return self.collect(identity, options, materialize=materialize, submitted=manifest)


def is_empty(manifest: Manifest) -> bool:
    """The input had no rows: nothing was submitted and there is nothing to collect."""
    return manifest.state == "noop" and manifest.rows_in == 0


def new_stage_id() -> str:
    """The folder of one staging of a run (see :meth:`StagingArea.files_prefix`)."""
    return "stage-" + secrets.token_hex(4)


def _complete(record: LedgerRecord, manifest: Manifest) -> None:
    for shard in record.shards:
        shard.state = "completed"
    record.phase, record.manifest = "completed", manifest
