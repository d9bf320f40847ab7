"""``SutroFunctionComponent``: Sutro-enriched assets declared in ``defs.yaml``.

One Function (``function``/``upstream``/``asset_key`` at the top) or several
(``functions:``, a list of the same attributes). Every per-Function attribute
(partitions, options, checks, automation condition, ...) may be set at the top,
where it is the default of each entry in ``functions``; an entry's own value wins
(``options``, ``tags`` and ``metadata`` are merged key by key). The assets are
built by :func:`~dagster_sutro.build_sutro_assets_definitions`: one subsettable
multi-asset per upstream table.

Example ``defs.yaml``::

    type: dagster_sutro.SutroFunctionComponent
    attributes:
      group_name: enriched
      partitions: {type: daily, start_date: "2026-11-01"}
      automation_condition: "{{ dg.AutomationCondition.eager() }}"
      functions:
        - {function: ticket-triage, upstream: support/tickets, asset_key: support/tickets_triaged}
        - {function: ticket-sentiment, upstream: support/tickets, asset_key: support/tickets_sentiment}
        - function: lead-extractor
          upstream: sales/leads
          asset_key: sales/leads_enriched
          partitions: {type: hourly, start_date: "2026-11-01-00:00"}
          options: {output_prefix: lead_}
      translation:
        owners: ["team:support-ml"]
        tags: {function: "{{ function }}"}
      resource:
        api_url: "{{ env.SUTRO_API_URL }}"
        staging_url: "s3://my-bucket/sutro"

``translation`` applies Dagster's asset attributes (key, key_prefix, group_name,
description, tags, owners, kinds, metadata, automation_condition, code_version)
to each asset spec, with ``{{ function }}``, ``{{ upstream }}`` and
``{{ enrichment }}`` in scope. ``code_version`` (unless set) is derived from the
Function's published spec (:mod:`dagster_sutro.code_version`) plus
``cache_version``; the spec is read when ``resource`` is set.

The API key is read from the environment variable ``resource.api_key_env_var``
(default ``SUTRO_API_KEY``) at run time through :class:`dagster.EnvVar`, so it
never appears in the resolved configuration; ``api_key: "{{ env.X }}"`` also
works but resolves the value when the definitions load.

Scaffold one with ``dg scaffold defs dagster_sutro.SutroFunctionComponent my_enrichment``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

import dagster as dg
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver
from pydantic import ConfigDict, Field, field_validator, model_validator

from dagster_sutro.assets import DEFAULT_RESOURCE_KEY, build_sutro_assets_definitions
from dagster_sutro.checks import SutroChecks
from dagster_sutro.code_version import function_code_version, published_spec
from dagster_sutro.components.partitions import SutroPartitions
from dagster_sutro.enrichment import SutroEnrichment
from dagster_sutro.resources import SutroResource
from dagster_sutro.translator import DagsterSutroTranslator
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.options import MAX_POLL_INTERVAL, POLL_INTERVAL, PROGRESS_INTERVAL

MERGED = ("options", "tags", "metadata")
"""Attributes merged key by key (top level, then the entry's) instead of replaced."""
_NOT_ENRICHMENT = ("partitions", "cache_version", "incremental")


class SutroResourceSettings(dg.Model, dg.Resolvable):
    """The :class:`SutroResource` the component provides under ``resource_key``."""

    api_url: str = Field(description="Origin of the Sutro deployment, e.g. '{{ env.SUTRO_API_URL }}'.")
    api_key: str | None = Field(default=None, description="API key; prefer api_key_env_var (read at run time, never resolved into config).")
    api_key_env_var: str = Field(default="SUTRO_API_KEY", description="Environment variable holding the API key.")
    staging_url: str = Field(description="fsspec URL (s3://bucket/prefix) where inputs are staged.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint for staging.")
    aws_region_name: str | None = Field(default=None, description="AWS region of the staging bucket.")
    poll_interval: float = Field(default=POLL_INTERVAL, description="First interval between status polls, in seconds.")
    max_poll_interval: float = Field(default=MAX_POLL_INTERVAL, description="Longest interval between polls, in seconds.")
    wait_timeout: float | None = Field(default=None, description="Seconds to wait for the jobs; none waits forever.")
    progress_interval: float = Field(default=PROGRESS_INTERVAL, gt=0, description="Seconds between progress lines while waiting.")
    cancel_on_termination: bool = Field(default=True, description="Cancel the jobs when the run is terminated.")

    def build(self) -> SutroResource:
        return SutroResource(
            api_url=self.api_url,
            api_key=self.api_key if self.api_key else dg.EnvVar(self.api_key_env_var),
            staging_url=self.staging_url,
            s3_endpoint_url=self.s3_endpoint_url,
            aws_region_name=self.aws_region_name,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            wait_timeout=self.wait_timeout,
            progress_interval=self.progress_interval,
            cancel_on_termination=self.cancel_on_termination,
        )

    def key_now(self) -> str | None:
        """The API key as the definitions load (for reading the published spec), if available."""
        return self.api_key or os.environ.get(self.api_key_env_var) or None


class SutroEnrichmentAttributes(dg.Model, dg.Resolvable):
    """The attributes of one Function x table. Fields named like a
    :class:`~dagster_sutro.enrichment.SutroEnrichment` field are passed to it as they are."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    description: str | None = Field(default=None, description="Description of the enriched asset.")
    group_name: str | None = Field(default=None, description="Asset group.")
    tags: dict[str, str] = Field(default_factory=dict, description="Asset tags.")
    owners: list[str] = Field(default_factory=list, description="Asset owners (emails or team:name).")
    kinds: list[str] | None = Field(default=None, description="Asset kinds (default: sutro and the output format).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Extra definition metadata.")
    automation_condition: Annotated[
        dg.AutomationCondition | None,
        dg.Resolver.default(model_field_type=str | None,
                            description="When Dagster materializes the asset, e.g. '{{ dg.AutomationCondition.eager() }}'."),
    ] = None
    code_version: str | None = Field(default=None, description="Code version; none: from the published spec + cache_version.")
    cache_version: str | None = Field(
        default=None, description="Part of the results cache key (with incremental) and appended to the derived code "
        "version: bump it to stop reusing results and mark materializations stale.")
    incremental: bool = Field(default=False, description="Submit only rows without a cached result (a re-run over unchanged rows pays nothing).")
    partitions: SutroPartitions | None = Field(
        default=None, description="Partitions (type: static, daily (default), hourly, weekly, monthly, time_window, dynamic); none: unpartitioned.")
    partition_expr: str | None = Field(default=None, description="Output column IO managers partition by (e.g. created_at).")
    io_manager_key: str | None = Field(default=None, description="IO manager of the enriched table (default io_manager).")
    input_fields: list[dict[str, Any]] | None = Field(
        default=None, description="The Function's input fields ({name, type, required}) when the deployment does not publish them."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="More EnrichmentOptions: job_priority, max_rows_per_job, max_cost_usd, on_invalid_rows, ..."
    )
    checks: SutroChecks = Field(default_factory=SutroChecks, description="Asset checks of the enriched table.")
    output_format: Literal["polars", "pandas", "arrow"] = Field(default="polars", description="Table type given to the IO manager.")
    stream: bool = Field(default=False, description="Stream the upstream and hand the IO manager the enriched Parquet.")

    @field_validator("code_version", "cache_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value  # "1" resolves to 1 in templates


class SutroFunctionEntry(SutroEnrichmentAttributes):
    """One Function over one table, in ``functions``."""

    function: str = Field(description="The published Sutro Function to run, e.g. ticket-triage.")
    upstream: str = Field(description="Key of the table to enrich, slash-separated (support/tickets).")
    asset_key: str | None = Field(default=None, description="Key of the enriched asset (support/tickets_triaged); none: <upstream name>_<function>.")


def _template_vars(enrichment: SutroEnrichment) -> dict[str, Any]:
    return {"enrichment": enrichment, "function": enrichment.function,
            "upstream": enrichment.upstream_key.to_user_string()}


class _TranslationApplied(DagsterSutroTranslator):
    def __init__(self, fn: TranslationFn[SutroEnrichment]) -> None:
        self.fn = fn

    def get_asset_spec(self, enrichment: SutroEnrichment) -> dg.AssetSpec:
        return self.fn(super().get_asset_spec(enrichment), enrichment)


class SutroFunctionComponentScaffolder(dg.Scaffolder):
    """Writes a ``defs.yaml`` with two Functions over one table, every required attribute filled."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        dg.scaffold_component(
            request,
            {
                "group_name": "enriched",
                "partitions": {"type": "daily", "start_date": "2026-11-01"},
                "checks": {"row_parity": True, "max_low_confidence_share": 0.3},
                "functions": [
                    {"function": "ticket-triage", "upstream": "support/tickets",
                     "asset_key": "support/tickets_triaged"},
                    {"function": "ticket-sentiment", "upstream": "support/tickets",
                     "asset_key": "support/tickets_sentiment"},
                ],
                "resource": {
                    "api_url": "{{ env.SUTRO_API_URL }}",
                    "api_key_env_var": "SUTRO_API_KEY",
                    "staging_url": "s3://my-bucket/sutro-staging",
                },
            },
        )


@dg.scaffold_with(SutroFunctionComponentScaffolder)
class SutroFunctionComponent(dg.Component, SutroEnrichmentAttributes):
    """Runs Sutro Functions over upstream tables and materializes the enriched tables.

    Builds the assets (with their asset checks) of every Function with
    :func:`~dagster_sutro.build_sutro_assets_definitions` and, when ``resource`` is
    set, the :class:`~dagster_sutro.SutroResource` under ``resource_key``.

    Example (Python)::

        import dagster as dg
        from dagster_sutro import SutroFunctionComponent

        component = SutroFunctionComponent(function="ticket-triage", upstream="support/tickets",
                                           asset_key="support/tickets_triaged")
        assert [e.function for e in component.enrichments()] == ["ticket-triage"]
    """

    function: str | None = Field(default=None, description="One Function (or use functions): the published Sutro Function.")
    upstream: str | None = Field(default=None, description="With function: key of the table to enrich (support/tickets).")
    asset_key: str | None = Field(default=None, description="With function: key of the enriched asset; none: <upstream name>_<function>.")
    functions: list[SutroFunctionEntry] = Field(
        default_factory=list, description="Several Functions x tables; the attributes above are their defaults.")
    translation: Annotated[
        TranslationFn[SutroEnrichment] | None,
        TranslationFnResolver[SutroEnrichment](template_vars_for_translation_fn=_template_vars),
    ] = Field(default=None, description="Asset attributes applied to each spec; {{ function }}, {{ upstream }}, "
                                        "{{ enrichment }} in scope.")
    pool: str | None = Field(default=None, description="Concurrency pool shared by assets calling the same deployment.")
    max_retries: int = Field(default=0, description="Step retries; a retry reattaches to the jobs already submitted.")
    retry_delay_seconds: float | None = Field(default=None, description="Delay between step retries.")
    resource_key: str = Field(default=DEFAULT_RESOURCE_KEY, description="Resource key of the SutroResource.")
    progress_interval: float | None = Field(
        default=None, gt=0, description="Seconds between progress lines in the run's event log while waiting "
        "(default: the resource's, 60).")
    resource: SutroResourceSettings | None = Field(
        default=None, description="The SutroResource to provide; none when another definition provides it."
    )

    @model_validator(mode="after")
    def _one_form(self) -> SutroFunctionComponent:
        if self.function is not None and self.functions:
            raise ValueError("set either function (one Function) or functions (several), not both")
        if self.function is not None and self.upstream is None:
            raise ValueError("function needs upstream")
        if self.function is None and (self.upstream is not None or self.asset_key is not None):
            raise ValueError("upstream and asset_key at the top need function (or list them in functions)")
        return self

    def entries(self) -> list[SutroFunctionEntry]:
        """Every Function entry, the top-level attributes filled in where an entry sets none."""
        if self.function is not None:
            assert self.upstream is not None
            return [SutroFunctionEntry(function=self.function, upstream=self.upstream, asset_key=self.asset_key,
                                       **{n: getattr(self, n) for n in self._attribute_names() if n in self.model_fields_set})]
        if not self.functions:
            raise dg.DagsterInvalidDefinitionError("SutroFunctionComponent needs function or functions")
        merged = []
        for entry in self.functions:
            values: dict[str, Any] = {}
            for name in self._attribute_names():
                own = name in entry.model_fields_set
                if name in MERGED:
                    values[name] = {**getattr(self, name), **getattr(entry, name)}
                elif own or name in self.model_fields_set:
                    values[name] = getattr(entry if own else self, name)
            merged.append(SutroFunctionEntry(function=entry.function, upstream=entry.upstream,
                                             asset_key=entry.asset_key, **values))
        return merged

    @staticmethod
    def _attribute_names() -> list[str]:
        return list(SutroEnrichmentAttributes.model_fields)

    def enrichments(self) -> list[SutroEnrichment]:
        """The :class:`~dagster_sutro.enrichment.SutroEnrichment` of every Function entry."""
        key = self.resource.key_now() if self.resource else None
        built = []
        for entry in self.entries():
            spec = (published_spec(self.resource.api_url, key, entry.function)
                    if self.resource is not None and key else None)
            passed = {n: getattr(entry, n) for n in SutroEnrichmentAttributes.model_fields if n not in _NOT_ENRICHMENT}
            passed["kinds"] = set(entry.kinds) if entry.kinds else None
            code_version = entry.code_version or self._code_version(entry, spec)
            built.append(SutroEnrichment(
                **{**passed, "code_version": code_version, "options": self._options(entry)},
                function=entry.function, upstream=entry.upstream, key=entry.asset_key,
                partitions_def=entry.partitions.build() if entry.partitions else None,
                function_spec=spec,
            ))
        return built

    @staticmethod
    def _code_version(entry: SutroFunctionEntry, spec: FunctionSpec | None) -> str | None:
        """The derived code version: the published spec's (or the declared inputs') hash
        plus ``cache_version``; ``None`` for an incremental entry, whose code version is
        the one every incremental enrichment gets from the translator
        (:attr:`~dagster_sutro.enrichment.SutroEnrichment.incremental_code_version`)."""
        if entry.incremental:
            return None
        return function_code_version(entry.function, spec, input_fields=entry.input_fields,
                                     cache_version=entry.cache_version)

    def _options(self, entry: SutroFunctionEntry) -> dict[str, Any]:
        """The entry's ``options`` with the attributes that are enrichment options folded in."""
        folded = dict(entry.options)
        if entry.incremental:
            folded["incremental"] = True
        if entry.cache_version is not None:
            folded["cache_version"] = entry.cache_version
        if self.progress_interval is not None:
            folded["progress_interval"] = self.progress_interval
        return folded

    def translator(self) -> DagsterSutroTranslator:
        return _TranslationApplied(self.translation) if self.translation else DagsterSutroTranslator()

    def build_assets(self) -> list[dg.AssetsDefinition]:
        retry = dg.RetryPolicy(max_retries=self.max_retries, delay=self.retry_delay_seconds) if self.max_retries else None
        return build_sutro_assets_definitions(self.enrichments(), translator=self.translator(), retry_policy=retry,
                                              pool=self.pool, resource_key=self.resource_key)

    def build_asset(self) -> dg.AssetsDefinition:
        """The one multi-asset (when every Function enriches the same table)."""
        (asset,) = self.build_assets()
        return asset

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        resources = {self.resource_key: self.resource.build()} if self.resource else {}
        return dg.Definitions(assets=self.build_assets(), resources=resources)
