"""Many enriched assets at once: :func:`build_sutro_assets_definitions` and :func:`sutro_assets`.

Each :class:`~dagster_sutro.enrichment.SutroEnrichment` (one Function over one
table) becomes one asset, its spec made by the translator
(:class:`~dagster_sutro.translator.DagsterSutroTranslator`). Enrichments of the same
upstream table (with the same partitions, partition mapping and ``stream``) share
one subsettable multi-asset (``can_subset=True``): the table is loaded once per
step, and materializing a selection runs only the selected assets' Sutro jobs.
Each selected asset is one run of the core pipeline
(:func:`dagster_sutro.execution.run_enrichment`, named by its own asset key, so a
retry or re-execution reattaches to its own jobs), one after the other; an asset
whose run fails does not stop the others, and the step fails at the end naming
every failed asset (the ones that succeeded are materialized).

:func:`sutro_function_asset` (one asset) is the one-enrichment case of
:func:`build_sutro_assets_definitions`.

Example::

    import dagster as dg
    from dagster_sutro import SutroEnrichment, build_sutro_assets_definitions

    daily = dg.DailyPartitionsDefinition(start_date="2026-11-01")
    hourly = dg.HourlyPartitionsDefinition(start_date="2026-11-01-00:00")
    assets = build_sutro_assets_definitions([
        SutroEnrichment(function="ticket-triage", upstream="support/tickets", partitions_def=daily),
        SutroEnrichment(function="ticket-sentiment", upstream="support/tickets", partitions_def=daily),
        SutroEnrichment(function="lead-extractor", upstream="sales/leads", partitions_def=hourly),
    ], group_name="enriched")
    assert len(assets) == 2  # one multi-asset per upstream table
    assert assets[0].can_subset and len(assets[0].keys) == 2

The decorator form runs code of your own around the runs (``upstream`` is the
loaded table, shared by the enrichments, which must have one upstream)::

    from dagster_sutro import SutroResource, sutro_assets

    @sutro_assets(enrichments=[SutroEnrichment(function="ticket-triage", upstream="support/tickets"),
                               SutroEnrichment(function="ticket-sentiment", upstream="support/tickets")])
    def ticket_enrichments(context: dg.AssetExecutionContext, upstream, sutro: SutroResource):
        yield from sutro.enrich_assets(context, upstream)
"""

import contextvars
import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from dagster_sutro.enrichment import SutroEnrichment
from dagster_sutro.translator import DagsterSutroTranslator
from sutro_providers.inputs.sources import SourceReader

UPSTREAM_INPUT = "upstream"
DEFAULT_RESOURCE_KEY = "sutro"


@dataclass(frozen=True)
class PlannedAsset:
    """One asset of a Sutro multi-asset: its enrichment, translated spec and output name."""

    enrichment: SutroEnrichment
    spec: dg.AssetSpec

    @property
    def output_name(self) -> str:
        return self.spec.key.to_python_identifier()


_PLAN: contextvars.ContextVar[Sequence[PlannedAsset] | None] = contextvars.ContextVar("sutro_assets_plan", default=None)


def plan_assets(enrichments: Sequence[SutroEnrichment], translator: DagsterSutroTranslator | None = None,
                group_name: str | None = None) -> list[PlannedAsset]:
    """Translate each enrichment into its asset spec (``group_name``: for those that set none)."""
    translator = translator or DagsterSutroTranslator()
    planned = []
    for enrichment in enrichments:
        if group_name is not None and enrichment.group_name is None:
            enrichment = dataclasses.replace(enrichment, group_name=group_name)
        planned.append(PlannedAsset(enrichment, translator.get_asset_spec(enrichment)))
    keys = [p.spec.key for p in planned]
    duplicates = sorted({k.to_user_string() for k in keys if keys.count(k) > 1})
    if duplicates:
        raise dg.DagsterInvalidDefinitionError(f"two Sutro enrichments make the same asset: {', '.join(duplicates)}")
    return planned


def _share_a_step(a: PlannedAsset, b: PlannedAsset) -> bool:
    ea, eb = a.enrichment, b.enrichment
    return (ea.upstream_key == eb.upstream_key and a.spec.partitions_def == b.spec.partitions_def
            and ea.partition_mapping == eb.partition_mapping and ea.stream == eb.stream)


def group_by_step(planned: Sequence[PlannedAsset]) -> list[list[PlannedAsset]]:
    """Groups of assets that can share one step (same upstream, partitions, mapping, ``stream``), in order."""
    groups: list[list[PlannedAsset]] = []
    for p in planned:
        group = next((g for g in groups if _share_a_step(g[0], p)), None)
        if group is None:
            groups.append([p])
        else:
            group.append(p)
    return groups


def run_selected(resource: Any, context: dg.AssetExecutionContext, source: Any,
                 plan: Sequence[PlannedAsset] | None = None) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """Run the enrichment of every selected asset of the step (see the module docstring)
    through ``resource.enrich`` (a :class:`~dagster_sutro.SutroResource` or
    :class:`~dagster_sutro.OpperResource`: the backend's run of one asset)."""
    plan = plan if plan is not None else _PLAN.get()
    if plan is None:
        raise dg.DagsterInvariantViolationError(
            "enrich_assets() runs inside a @sutro_assets function (it reads that multi-asset's enrichments)")
    selected = context.selected_asset_keys
    failures: list[tuple[dg.AssetKey, dg.Failure]] = []
    for asset in plan:
        if asset.spec.key not in selected:
            continue
        try:
            yield from resource.enrich(context, source, asset_key=asset.spec.key,  # the backend's run (Sutro, Opper)
                                       output_name=asset.output_name, **asset.enrichment.run_kwargs())
        except dg.Failure as failure:
            if len(selected) == 1:
                raise
            context.log.error(f"{asset.spec.key.to_user_string()} failed: {failure.description}")
            failures.append((asset.spec.key, failure))
    if len(failures) == 1:
        raise failures[0][1]
    if failures:
        metadata: dict[str, Any] = {}
        for key, failed in failures:
            metadata.update({f"{key.to_user_string()}: {k}": v for k, v in failed.metadata.items()})
        raise dg.Failure(
            description="; ".join(f"{k.to_user_string()}: {f.description}" for k, f in failures),
            metadata=metadata,
            allow_retries=all(f.allow_retries for _, f in failures),
        )


def sutro_assets(
    *,
    enrichments: Sequence[SutroEnrichment],
    translator: DagsterSutroTranslator | None = None,
    name: str | None = None,
    group_name: str | None = None,
    backfill_policy: dg.BackfillPolicy | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    pool: str | None = None,
    op_tags: Mapping[str, Any] | None = None,
    required_resource_keys: set[str] | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """A subsettable multi-asset of enrichments of one upstream table; the decorated
    function computes it, normally with ``yield from sutro.enrich_assets(context, upstream)``.

    Args:
        enrichments: the Functions to run over the table (one upstream, one partitions definition).
        translator: makes each asset's spec (default :class:`DagsterSutroTranslator`).
        name: the op name (default: the function's name).
        group_name: asset group of the enrichments that set none.
        backfill_policy: default ``BackfillPolicy.single_run()`` when partitioned.
        retry_policy: step retries; a retry reattaches to the jobs already submitted.
        pool: a Dagster concurrency pool shared by assets calling the same deployment.
        op_tags: tags of the op.
        required_resource_keys: resources the function reads from ``context.resources``
            (resources it takes as parameters are found by Dagster).
    """
    return _decorator(plan_assets(enrichments, translator, group_name), name=name, backfill_policy=backfill_policy,
                      retry_policy=retry_policy, pool=pool, op_tags=op_tags,
                      required_resource_keys=required_resource_keys)


def _decorator(
    planned: Sequence[PlannedAsset], *, name: str | None, backfill_policy: dg.BackfillPolicy | None,
    retry_policy: dg.RetryPolicy | None, pool: str | None, op_tags: Mapping[str, Any] | None,
    required_resource_keys: set[str] | None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    if not planned:
        raise dg.DagsterInvalidDefinitionError("sutro_assets needs at least one enrichment")
    groups = group_by_step(planned)
    if len(groups) > 1:
        raise dg.DagsterInvalidDefinitionError(
            "the enrichments of one @sutro_assets need one upstream table, partitions definition, partition "
            "mapping and stream setting; build_sutro_assets_definitions() makes one multi-asset per table")
    first = planned[0]
    partitions_def = first.spec.partitions_def
    if partitions_def is not None and backfill_policy is None:
        backfill_policy = dg.BackfillPolicy.single_run()
    check_specs = [spec for p in planned for spec in p.enrichment.checks.specs(p.spec.key)]
    ins = {UPSTREAM_INPUT: dg.AssetIn(key=first.enrichment.upstream_key,
                                      partition_mapping=first.enrichment.partition_mapping)}

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        @functools.wraps(fn)
        def compute(*args: Any, **kwargs: Any) -> Any:
            token = _PLAN.set(planned)
            try:
                result = fn(*args, **kwargs)
                if isinstance(result, Iterator):
                    yield from result
                elif result is not None:
                    yield result
            finally:
                try:
                    _PLAN.reset(token)
                except ValueError:  # iterated in another context: nothing to restore
                    pass

        return dg.multi_asset(
            name=name or fn.__name__,
            specs=[p.spec for p in planned],
            check_specs=check_specs,
            ins=ins,
            can_subset=True,
            backfill_policy=backfill_policy,
            retry_policy=retry_policy,
            pool=pool,
            op_tags=op_tags,
            required_resource_keys=required_resource_keys,
        )(compute)

    return decorate


def _step_body(resource_key: str, stream: bool) -> Callable[..., Any]:
    def run(context: AssetExecutionContext, upstream: Any) -> Iterator[Any]:
        yield from run_selected(getattr(context.resources, resource_key), context, upstream)

    if stream:
        def sutro_enrich(context: AssetExecutionContext, upstream: SourceReader):  # noqa: ANN202
            yield from run(context, upstream)
    else:
        def sutro_enrich(context: AssetExecutionContext, upstream: Any):  # type: ignore[misc]  # noqa: ANN202
            yield from run(context, upstream)
    return sutro_enrich


def build_sutro_assets_definitions(
    enrichments: Sequence[SutroEnrichment],
    *,
    translator: DagsterSutroTranslator | None = None,
    name: str | None = None,
    group_name: str | None = None,
    backfill_policy: dg.BackfillPolicy | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    pool: str | None = None,
    op_tags: Mapping[str, Any] | None = None,
    resource_key: str = DEFAULT_RESOURCE_KEY,
) -> list[dg.AssetsDefinition]:
    """The assets of ``enrichments``: one subsettable multi-asset per upstream table
    (and partitions definition, partition mapping, ``stream``), in the order first seen.

    Args:
        enrichments: the Functions x tables (:class:`~dagster_sutro.enrichment.SutroEnrichment`).
        translator: makes each asset's spec (default :class:`DagsterSutroTranslator`).
        name: the op name; with several multi-assets, the prefix of ``<name>_<upstream>``.
            Default ``sutro_<upstream>``.
        group_name: asset group of the enrichments that set none.
        backfill_policy: default ``BackfillPolicy.single_run()`` when partitioned.
        retry_policy: step retries; a retry reattaches to the jobs already submitted.
        pool: a Dagster concurrency pool shared by assets calling the same deployment.
        op_tags: tags of each op.
        resource_key: the key of the :class:`~dagster_sutro.SutroResource`.
    """
    groups = group_by_step(plan_assets(enrichments, translator, group_name))
    built: list[dg.AssetsDefinition] = []
    names: set[str] = set()
    for group in groups:
        upstream = group[0].enrichment.upstream_key.to_python_identifier()
        op_name = name if name and len(groups) == 1 else f"{name or 'sutro'}_{upstream}"
        while op_name in names:
            op_name += "_"
        names.add(op_name)
        decorate = _decorator(
            group, name=op_name, backfill_policy=backfill_policy, retry_policy=retry_policy, pool=pool,
            op_tags=op_tags, required_resource_keys={resource_key},
        )
        built.append(decorate(_step_body(resource_key, group[0].enrichment.stream)))
    return built

