"""``sutro_function_asset``: an asset that runs a Sutro Function over an upstream table.

The asset loads its upstream table through the upstream's IO manager, runs the
Function over it with :meth:`SutroResource.enrich` (one line) and hands the
enriched table (upstream columns + result columns, same row order) to its own IO
manager. Partitioned assets default to ``BackfillPolicy.single_run()``: a backfill
of many days is one run, one staged input and one set of Sutro jobs.

Example::

    import dagster as dg
    import polars as pl
    from dagster_sutro import SutroChecks, SutroDuckDBIOManager, SutroResource, sutro_function_asset

    daily = dg.DailyPartitionsDefinition(start_date="2026-11-01")

    @dg.asset(key=["support", "tickets"], partitions_def=daily, metadata={"partition_expr": "created_at"})
    def tickets(context: dg.AssetExecutionContext) -> pl.DataFrame: ...

    tickets_triaged = sutro_function_asset(
        function="ticket-triage",
        upstream=tickets,
        key=["support", "tickets_triaged"],
        partitions_def=daily,
        partition_expr="created_at",
        checks=SutroChecks(max_low_confidence_share=0.3, max_cost_usd=1.0),
        pool="sutro",
    )

    defs = dg.Definitions(
        assets=[tickets, tickets_triaged],
        resources={
            "sutro": SutroResource(api_url=dg.EnvVar("SUTRO_API_URL"), api_key=dg.EnvVar("SUTRO_API_KEY"),
                                   staging_url="s3://my-bucket/sutro"),
            "io_manager": SutroDuckDBIOManager(database="warehouse.duckdb"),
        },
    )
"""


from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from dagster_sutro.assets import DEFAULT_RESOURCE_KEY, UPSTREAM_INPUT, build_sutro_assets_definitions
from dagster_sutro.checks import SutroChecks
from dagster_sutro.enrichment import SutroEnrichment, build_options, key_of
from dagster_sutro.frames import OutputFormat
from dagster_sutro.translator import DagsterSutroTranslator, default_asset_name
from sutro_providers.function_spec import FunctionSpec, InputField
from sutro_providers.options import EnrichmentOptions

__all__ = ["DEFAULT_RESOURCE_KEY", "UPSTREAM_INPUT", "build_options", "sutro_function_asset"]


def sutro_function_asset(
    *,
    function: str,
    upstream: dg.AssetKey | str | Sequence[str] | dg.AssetsDefinition | dg.AssetSpec,
    key: dg.AssetKey | str | Sequence[str] | None = None,
    name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    description: str | None = None,
    group_name: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    partition_mapping: dg.PartitionMapping | None = None,
    partition_expr: str | None = None,
    backfill_policy: dg.BackfillPolicy | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    pool: str | None = None,
    op_tags: Mapping[str, Any] | None = None,
    input_fields: Sequence[InputField | Mapping[str, Any]] | None = None,
    options: EnrichmentOptions | Mapping[str, Any] | None = None,
    checks: SutroChecks | None = None,
    io_manager_key: str | None = None,
    output_format: OutputFormat = "polars",
    stream: bool = False,
    resource_key: str = DEFAULT_RESOURCE_KEY,
    metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] | None = None,
    kinds: set[str] | None = None,
    automation_condition: dg.AutomationCondition | None = None,
    code_version: str | None = None,
    translator: DagsterSutroTranslator | None = None,
    function_spec: FunctionSpec | Mapping[str, Any] | None = None,
    incremental: bool | None = None,
    cache_version: str | None = None,
    progress_interval: float | None = None,
) -> dg.AssetsDefinition:
    """An asset whose value is ``upstream`` enriched by the Sutro Function ``function``.

    Args:
        function: the published Sutro Function to run (e.g. ``"ticket-triage"``).
        upstream: the table to enrich: an asset, asset spec or key.
        key: the asset key (or give ``name`` and optionally ``key_prefix``); default
            ``<upstream name>_<function>``.
        partitions_def: partitions of the asset (usually the upstream's).
        partition_mapping: how this asset's partitions map to the upstream's.
        partition_expr: the column IO managers partition the output by (set as the
            asset's ``partition_expr`` metadata, e.g. ``"created_at"``).
        backfill_policy: default ``BackfillPolicy.single_run()`` when partitioned.
        retry_policy: step retries; a retry reattaches to the jobs already submitted.
        pool: a Dagster concurrency pool shared by assets calling the same deployment.
        input_fields: the Function's input fields, when the deployment does not publish specs.
        options: further :class:`~sutro_providers.options.EnrichmentOptions` (model,
            sharding, ``max_cost_usd``, ``on_invalid_rows``, ``confidence_threshold``...).
        checks: the asset checks to declare; default :class:`SutroChecks` (row parity).
        io_manager_key: the IO manager that stores the enriched table.
        output_format: ``polars``, ``pandas`` or ``arrow``: the type handed to the IO manager.
        stream: read the upstream as a stream and hand the IO manager the enriched
            Parquet file, so no table is ever whole in memory (10M rows in a few
            hundred MiB). The upstream's IO manager must load a
            :class:`~sutro_providers.inputs.sources.SourceReader` (``SutroParquetIOManager``
            and ``SutroDuckDBIOManager`` do) and this asset's must store a
            :class:`~dagster_sutro.streams.ParquetTable` (both do: a Parquet copy, or a
            DuckDB insert from the Arrow stream). Default ``False``: frames.
        resource_key: the key of the :class:`SutroResource`.
        incremental: submit only rows without a cached result (a partition materialized
            twice over the same rows pays once; see :mod:`sutro_providers.incremental`);
            also ``options={"incremental": True}``. Without an explicit ``code_version``
            the asset's then follows the Function, ``cache_version``, the sampling parameters
            and ``function_spec`` when given (:attr:`SutroEnrichment.incremental_code_version`).
        cache_version: part of the cache key (change it to stop reusing results).
        progress_interval: seconds between progress lines in the run's event log while
            the jobs run (rows done / total, percent, ETA, tokens, cost; a line also at
            every status change); default: the resource's ``progress_interval`` (60).
        function_spec: the Function's spec, when known before any run (a
            :class:`~sutro_providers.function_spec.FunctionSpec` or its dict): the asset
            definition then carries the result columns' lineage and descriptions (and
            the whole column schema when the upstream declares its own). Default
            ``None``: lineage from ``input_fields`` alone; every materialization carries
            the full lineage and descriptions either way.
        automation_condition: when Dagster materializes the asset on its own.
        code_version: the asset's code version (e.g. :func:`~dagster_sutro.function_code_version`).
        translator: makes the asset spec (default :class:`~dagster_sutro.DagsterSutroTranslator`).

    This is the one-enrichment case of :func:`~dagster_sutro.build_sutro_assets_definitions`
    (same translator, same step).

    Returns:
        The :class:`dagster.AssetsDefinition`.
    """
    upstream_key = key_of(upstream)
    if key is None:
        prefix = [key_prefix] if isinstance(key_prefix, str) else list(key_prefix or [])
        key = dg.AssetKey([*prefix, name or default_asset_name(upstream_key, function)])
    extra = {k: v for k, v in (("incremental", incremental), ("cache_version", cache_version),
                               ("progress_interval", progress_interval)) if v is not None}
    if extra and isinstance(options, EnrichmentOptions):  # another backend's options keep their type
        options = options.model_copy(update=extra)  # validated once, by SutroEnrichment
    elif extra:
        options = {**dict(options or {}), **extra}
    enrichment = SutroEnrichment(
        function=function, upstream=upstream, key=key, description=description, group_name=group_name,
        tags=dict(tags or {}), owners=list(owners or ()), kinds=set(kinds) if kinds else None,
        metadata=dict(metadata or {}), automation_condition=automation_condition, code_version=code_version,
        partitions_def=partitions_def, partition_mapping=partition_mapping, partition_expr=partition_expr,
        io_manager_key=io_manager_key, input_fields=input_fields, options=options,
        checks=checks if checks is not None else SutroChecks(), output_format=output_format, stream=stream,
        function_spec=function_spec,
    )
    (asset,) = build_sutro_assets_definitions(
        [enrichment], translator=translator, name=key_of(key).to_python_identifier(), backfill_policy=backfill_policy,
        retry_policy=retry_policy, pool=pool, op_tags=op_tags, resource_key=resource_key,
    )
    return asset
