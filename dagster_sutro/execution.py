"""One enrichment inside an asset step: the thin layer between Dagster and the core pipeline.

:func:`run_enrichment` names the run after the asset key, the partition (or
partition range) and the run's *root* run id, then calls the core's run,
:meth:`EnrichmentPipeline.run` (submit → wait → collect). Everything that makes
the run safe to retry (the ledger, reattaching, reconciling a lost submission,
verifying every row) lives in the core; this module only maps it to Dagster:

* the job ids and links are logged once the jobs exist; while waiting, the core's
  progress lines (:mod:`sutro_providers.waiting.progress_report`: rows done / total,
  percent, elapsed, ETA, tokens, cost) go to ``context.log.info``, so to the run's
  event log: at every status change and at most (and, as a heartbeat, at least)
  every ``progress_interval`` seconds;
* a terminated run (:class:`dagster.DagsterExecutionInterruptedError`, a
  ``BaseException``) cancels the jobs when ``cancel_on_termination`` and re-raises;
* core errors become :class:`dagster.Failure` with the job ids and links as
  metadata; :data:`ALLOW_RETRIES` says which allow a step retry (input errors
  do not: they would fail again);
* an empty input yields an empty table with the result columns;
* the result is a :class:`dagster.Output` with metadata from
  :mod:`dagster_sutro.metadata`, followed by the asset check results.

Example (normally called through :meth:`SutroResource.enrich`)::

    import dagster as dg
    from sutro_providers.options import EnrichmentOptions
    from dagster_sutro import SutroResource

    @dg.asset
    def tickets_triaged(context: dg.AssetExecutionContext, sutro: SutroResource, tickets):
        yield from sutro.enrich(context, tickets, options=EnrichmentOptions(function="ticket-triage"))
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import dagster as dg

from dagster_sutro.frames import OutputFormat, column_names, combine_partitions, from_arrow
from dagster_sutro.metadata import EnrichedColumns, build_metadata, job_links
from dagster_sutro.streams import ParquetTable
from sutro_providers.client.config import SutroConfig
from sutro_providers.client.sutro import SutroClient
from sutro_providers.errors import (
    SutroConfigurationError,
    SutroCostLimitError,
    SutroError,
    SutroJobCancelledError,
    SutroJobFailedError,
    SutroJobPollError,
    SutroJobTimeoutError,
    SutroLedgerConflictError,
    SutroValidationError,
)
from sutro_providers.identity import RunIdentity
from sutro_providers.landing import staged_output
from sutro_providers.manifest import Manifest
from sutro_providers.options import EnrichmentOptions

if TYPE_CHECKING:
    from dagster_sutro.checks import SutroChecks
    from sutro_providers.pipeline import EnrichmentPipeline

ALLOW_RETRIES: Mapping[type[SutroError], bool] = {
    SutroValidationError: False,  # bad input rows or request (SutroInputError), above quota
    SutroConfigurationError: False,
    SutroLedgerConflictError: False,  # the input changed since the attempt it would continue
    SutroCostLimitError: False,
    SutroJobFailedError: True,  # the outcomes of a wait (see sutro_providers.waiting.outcome)
    SutroJobCancelledError: True,
    SutroJobTimeoutError: True,
    SutroJobPollError: True,
    SutroError: True,  # transient HTTP errors, staging, results...
}
"""The one table from core errors to Dagster: every core error becomes a
:class:`dagster.Failure`; this says whether it allows a step retry (a retry
reattaches to the jobs already paid for). Looked up along the class hierarchy."""


def allows_retries(exc: SutroError) -> bool:
    return next(ALLOW_RETRIES[cls] for cls in type(exc).__mro__ if cls in ALLOW_RETRIES)


class EnrichmentSettings(Protocol):
    """What a run reads of :class:`~dagster_sutro.resources.SutroResource`."""

    @property
    def cancel_on_termination(self) -> bool: ...
    @property
    def job_url_template(self) -> str: ...
    def apply_defaults(self, options: EnrichmentOptions) -> EnrichmentOptions: ...
    def client_config(self) -> SutroConfig: ...
    def get_client(self) -> SutroClient: ...
    def get_pipeline(self, client: SutroClient | None = None) -> EnrichmentPipeline: ...


def identity_of(asset_key: dg.AssetKey | str | Sequence[str], partition: str | None, root_run_id: str) -> RunIdentity:
    """The run identity of one asset materialization: asset key (an ``AssetKey``, its
    user string ``"support/tickets_triaged"`` or its path), partition key (a range is
    ``"start...end"``; ``None`` when unpartitioned) and the root run id."""
    key = asset_key if isinstance(asset_key, dg.AssetKey) else (
        dg.AssetKey.from_user_string(asset_key) if isinstance(asset_key, str) else dg.AssetKey(list(asset_key)))
    return RunIdentity.dagster(key.to_user_string(), partition, root_run_id)


def run_identity(context: dg.AssetExecutionContext, asset_key: dg.AssetKey | None = None) -> RunIdentity:
    """:func:`identity_of` the asset being materialized: the same for every
    re-execution and step retry of the run that first materialized it."""
    partition: str | None = None
    if context.has_partition_key:
        partition = str(context.partition_key)
    elif context.has_partition_key_range:
        keys = context.partition_key_range
        partition = f"{keys.start}...{keys.end}"
    run = context.run
    return identity_of(asset_key or context.asset_key, partition, run.root_run_id or run.run_id)


def _failure(exc: SutroError, manifest: Manifest | None, resource: EnrichmentSettings) -> dg.Failure:
    metadata: dict[str, Any] = {"sutro/error": type(exc).__name__}
    if manifest is not None:
        metadata["sutro/job_ids"] = ", ".join(manifest.job_ids)
        try:
            metadata.update(job_links(manifest, resource.client_config().origin, resource.job_url_template))
        except Exception:  # metadata must never mask the real error
            pass
    return dg.Failure(description=str(exc), metadata=metadata, allow_retries=allows_retries(exc))


def _on_interrupt(resource: EnrichmentSettings, pipeline: EnrichmentPipeline, identity: RunIdentity, log: Any) -> None:
    if not resource.cancel_on_termination:
        log.warning("run terminated: the Sutro jobs keep running (cancel_on_termination is off); "
                    "re-executing this run attaches to them")
        return
    try:
        cancelled = pipeline.cancel(identity)
    except Exception as exc:  # the interrupt must still propagate
        log.error(f"run terminated, but cancelling its Sutro jobs failed: {type(exc).__name__}: {exc}")
        return
    log.warning(f"run terminated: cancelled Sutro job(s) {', '.join(cancelled) or '(none running)'}")


def enriched_columns(context: dg.AssetExecutionContext, pipeline: EnrichmentPipeline, options: EnrichmentOptions,
                     source: Any, asset_key: dg.AssetKey | None = None) -> EnrichedColumns | None:
    """What the column lineage of this run's table derives from: the Function's input
    fields (declared, else its published spec's), the asset's one upstream asset and
    the source's columns. ``None`` when the input fields are not known (or when
    finding them fails: metadata never fails the asset)."""
    try:
        spec = pipeline.function_spec(options.function)  # cached: the run read it already
        fields = options.input_fields if options.input_fields is not None else (spec.inputs if spec else None)
        if not fields:
            return None
        deps = context.assets_def.asset_deps.get(asset_key or context.asset_key, set())
        names = column_names(source)
        return EnrichedColumns(options.function, spec, tuple(f.name for f in fields),
                               next(iter(deps)) if len(deps) == 1 else None,
                               frozenset(names) if names is not None else None, options.output_prefix)
    except Exception as exc:
        context.log.warning(f"no column lineage for this run: {type(exc).__name__}: {exc}")
        return None


def run_enrichment(
    resource: EnrichmentSettings,
    context: dg.AssetExecutionContext,
    source: Any,
    *,
    options: EnrichmentOptions,
    output_format: OutputFormat = "polars",
    checks: SutroChecks | None = None,
    stream: bool = False,
    asset_key: dg.AssetKey | None = None,
    output_name: str | None = None,
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """Enrich ``source`` for the asset being materialized; see the module docstring.
    ``stream``: the output is a :class:`~dagster_sutro.streams.ParquetTable` (the
    enriched Parquet, never loaded whole) instead of a frame. ``asset_key`` and
    ``output_name``: which asset of a multi-asset this run is (default: the step's
    only asset and output)."""
    from sutro_providers.pipeline import is_empty

    options = resource.apply_defaults(options)
    asset_key = asset_key or context.asset_key
    output_name = output_name or "result"
    identity = run_identity(context, asset_key)
    source = combine_partitions(source)
    log = context.log
    origin = resource.client_config().origin
    submitted: list[Manifest] = []

    def on_submitted(manifest: Manifest) -> None:
        submitted.append(manifest)  # a failure later names the jobs it paid for
        if is_empty(manifest):
            log.info("the input is empty: no Sutro job was submitted")
        elif not manifest.job_ids:
            log.info("every row was skipped as invalid: no Sutro job was submitted")
        else:
            links = job_links(manifest, origin, resource.job_url_template)
            log.info(f"Sutro job(s) {', '.join(manifest.job_ids)} ({manifest.state}): "
                     + ", ".join(v.url for v in links.values()))

    with resource.get_client() as client:
        pipeline = resource.get_pipeline(client)
        if stream and not options.output_uri:  # the enriched Parquet stays in staging; the IO manager reads it
            uri, storage = staged_output(pipeline.area, identity)
            options = options.model_copy(update={"output_uri": uri, "output_storage_options": storage})
        log.info(f"Sutro run of {options.function!r} for {identity.describe()} (run key {identity.short})")
        try:
            result = pipeline.run(source, identity, options, on_submitted=on_submitted,
                                  progress_log=log.info, materialize=not stream)
            manifest, table = result.manifest, result.table  # an empty input: an empty table of the enriched columns
        except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
            _on_interrupt(resource, pipeline, identity, log)
            raise
        except SutroError as exc:
            raise _failure(exc, submitted[-1] if submitted else None, resource) from exc
        columns = enriched_columns(context, pipeline, options, source, asset_key)
    log.info(f"Sutro run done: {manifest.rows_out} rows, {manifest.rows_skipped} skipped, "
             f"{manifest.input_tokens}/{manifest.output_tokens} tokens in/out, cost {manifest.cost_usd}")
    described = described_table(manifest, table, options)
    metadata = build_metadata(manifest, described, origin=origin, job_url_template=resource.job_url_template,
                              columns=columns, log=log)
    yield from enrichment_outputs(context, manifest, table, described, metadata, output_format, checks,
                                  asset_key=asset_key, output_name=output_name)


def described_table(manifest: Manifest, table: Any, options: EnrichmentOptions) -> Any:
    """The enriched table, or for a stream (``table=None``) the enriched Parquet as a
    :class:`ParquetTable` (described by its footer, never loaded)."""
    if table is not None:
        return table
    return ParquetTable.open(manifest.output_uri or options.output_uri or "", options.output_storage_options,
                             options.batch_size)


def enrichment_outputs(context: dg.AssetExecutionContext, manifest: Manifest, table: Any, described: Any,
                       metadata: dict[str, Any], output_format: OutputFormat, checks: SutroChecks | None, *,
                       asset_key: dg.AssetKey | None = None,
                       output_name: str = "result") -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """The :class:`dagster.Output` of a finished run (the frame, or the
    :func:`described_table` of a stream) and its selected check results: the end of
    every backend's asset step. ``asset_key``/``output_name``: which asset of a
    multi-asset (default: the step's only one)."""
    asset_key = asset_key or context.asset_key
    yield dg.Output(described if table is None else from_arrow(table, output_format),
                    output_name=output_name, metadata=metadata)
    if checks is not None:
        selected = context.selected_asset_check_keys
        yield from (r for r in checks.evaluate(manifest, table, asset_key)
                    if dg.AssetCheckKey(asset_key, r.check_name or "") in selected)
