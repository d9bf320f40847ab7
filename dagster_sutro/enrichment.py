"""``SutroEnrichment``: one Sutro Function over one upstream table, everything an asset of it needs.

It is the one place where the parameters of an enriched asset live. The asset
factories (:func:`~dagster_sutro.sutro_function_asset`,
:func:`~dagster_sutro.build_sutro_assets_definitions`, :func:`~dagster_sutro.sutro_assets`)
and the Component (:class:`~dagster_sutro.SutroFunctionComponent`) all build
``SutroEnrichment`` objects; the translator (:class:`~dagster_sutro.DagsterSutroTranslator`)
turns one into an :class:`dagster.AssetSpec`; the asset step
(:mod:`dagster_sutro.execution`) reads the fields named in :data:`RUN_FIELDS`.

Adding a parameter: a field here (with its default). If the step needs it, add
its name to :data:`RUN_FIELDS` and a keyword of the same name to
:func:`dagster_sutro.execution.run_enrichment`; if the Component should offer it,
a field of the same name in
:class:`~dagster_sutro.components.function_component.SutroEnrichmentAttributes`
(passed through by name).

Example::

    from dagster_sutro import SutroChecks, SutroEnrichment

    triage = SutroEnrichment(function="ticket-triage", upstream="support/tickets",
                             options={"confidence_threshold": 0.6},
                             checks=SutroChecks(max_low_confidence_share=0.3))
    assert triage.upstream.path == ["support", "tickets"]
    assert triage.options.function == "ticket-triage"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dagster_sutro.checks import SutroChecks
from dagster_sutro.code_version import function_code_version
from dagster_sutro.frames import OUTPUT_FORMATS, OutputFormat
from dagster_sutro.metadata import declared_column_schema
from sutro_providers.function_spec import FunctionSpec, InputField
from sutro_providers.incremental.keys import code_version as incremental_code_version
from sutro_providers.options import EnrichmentOptions

CoercibleToKey = dg.AssetKey | str | Sequence[str] | dg.AssetsDefinition | dg.AssetSpec

RUN_FIELDS: tuple[str, ...] = ("options", "output_format", "checks", "stream")
"""The fields of :class:`SutroEnrichment` the asset step passes to
:func:`dagster_sutro.execution.run_enrichment` (as keywords of the same name)."""


def key_of(value: CoercibleToKey) -> dg.AssetKey:
    """An asset key from an asset, an asset spec, ``"a/b"``, ``["a", "b"]`` or a key."""
    if isinstance(value, dg.AssetsDefinition | dg.AssetSpec):
        return value.key
    if isinstance(value, str):
        return dg.AssetKey.from_user_string(value)
    return dg.AssetKey.from_coercible(value)


def build_options(function: str, input_fields: Sequence[InputField | Mapping[str, Any]] | None,
                  options: EnrichmentOptions | Mapping[str, Any] | None) -> EnrichmentOptions:
    """Validate the asset's enrichment options at definition time (a typo fails the code location load).
    Options of another backend (an :class:`EnrichmentOptions` subclass such as ``OpperOptions``) keep their type."""
    kind = type(options) if isinstance(options, EnrichmentOptions) else EnrichmentOptions
    if isinstance(options, EnrichmentOptions):
        data = options.model_dump(exclude_unset=True)
    else:
        data = dict(options or {})
    data["function"] = function
    if input_fields is not None:
        data["input_fields"] = [InputField.model_validate(f) if isinstance(f, Mapping) else f for f in input_fields]
    return kind(**data)


@dataclass(frozen=True, kw_only=True)
class SutroEnrichment:
    """One Function x table: the source of one enriched asset.

    Attributes:
        function: the published Sutro Function (``"ticket-triage"``).
        upstream: the table to enrich (asset, spec, key, ``"a/b"``); loaded through its IO manager.
        key: the enriched asset's key; ``None``: the translator's default
            (``<upstream name>_<function>``, ``-`` and ``.`` as ``_``).
        description, group_name, tags, owners, kinds, metadata, automation_condition,
            code_version: the asset's attributes (the translator's defaults when unset; an
            incremental enrichment's code version: :attr:`incremental_code_version`).
        partitions_def: partitions of the enriched asset (usually the upstream's).
        partition_mapping: how its partitions map to the upstream's.
        partition_expr: the output column IO managers partition by (``partition_expr`` metadata).
        io_manager_key: the IO manager of the enriched table (default ``io_manager``).
        input_fields: the Function's inputs, when the deployment does not publish specs.
        options: further :class:`~sutro_providers.options.EnrichmentOptions`; validated here,
            so a typo fails the code location load. Becomes an ``EnrichmentOptions``.
        checks: the asset checks (default: row parity).
        output_format: ``polars``, ``pandas`` or ``arrow``: the type handed to the IO manager.
        stream: stream the upstream and hand the IO manager the enriched Parquet
            (see :func:`~dagster_sutro.sutro_function_asset`).
        function_spec: the Function's spec (or its dict), when known before any run (the
            Component reads the published one): the translator adds its description, and the
            definition metadata the result columns' lineage and descriptions.
        upstream_schema: the upstream's declared ``dagster/column_schema`` (default: read
            from ``upstream`` when it is an asset or spec).
    """

    function: str
    upstream: CoercibleToKey
    key: CoercibleToKey | None = None
    description: str | None = None
    group_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    owners: Sequence[str] = ()
    kinds: frozenset[str] | set[str] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    automation_condition: dg.AutomationCondition | None = None
    code_version: str | None = None
    partitions_def: dg.PartitionsDefinition | None = None
    partition_mapping: dg.PartitionMapping | None = None
    partition_expr: str | None = None
    io_manager_key: str | None = None
    input_fields: Sequence[InputField | Mapping[str, Any]] | None = None
    options: EnrichmentOptions | Mapping[str, Any] | None = None
    checks: SutroChecks = field(default_factory=SutroChecks)
    output_format: OutputFormat = "polars"
    stream: bool = False
    function_spec: FunctionSpec | Mapping[str, Any] | None = None
    upstream_schema: dg.TableSchema | None = None

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise dg.DagsterInvalidDefinitionError(
                f"output_format must be one of {OUTPUT_FORMATS}, not {self.output_format!r}")
        set_ = object.__setattr__  # frozen: normalise once, here
        if self.upstream_schema is None:
            set_(self, "upstream_schema", declared_column_schema(self.upstream))
        set_(self, "upstream", key_of(self.upstream))
        if isinstance(self.function_spec, Mapping):
            set_(self, "function_spec", FunctionSpec.model_validate(self.function_spec))
        if self.key is not None:
            set_(self, "key", key_of(self.key))
        set_(self, "options", build_options(self.function, self.input_fields, self.options))
        if self.checks is None:
            set_(self, "checks", SutroChecks())

    @property
    def upstream_key(self) -> dg.AssetKey:
        assert isinstance(self.upstream, dg.AssetKey)
        return self.upstream

    @property
    def spec(self) -> FunctionSpec | None:
        assert self.function_spec is None or isinstance(self.function_spec, FunctionSpec)
        return self.function_spec

    @property
    def enrichment_options(self) -> EnrichmentOptions:
        assert isinstance(self.options, EnrichmentOptions)
        return self.options

    @property
    def incremental_code_version(self) -> str | None:
        """The code version of an incremental enrichment that sets none (the translator's
        default, whichever factory or Component built the enrichment): the cache key's
        definition-time parts (:func:`sutro_providers.incremental.keys.code_version`: the
        Function, ``cache_version``, the sampling parameters), then ``-<spec hash>``
        (:func:`~dagster_sutro.function_code_version`) when the Function's spec is known.
        ``None`` when the enrichment is not incremental."""
        options = self.enrichment_options
        if not options.incremental:
            return None
        version = incremental_code_version(self.function, options.cache_version, options.sampling_params)
        published = function_code_version(self.function, self.spec) if self.spec is not None else None
        return f"{version}-{published}" if published else version

    def run_kwargs(self) -> dict[str, Any]:
        """The keywords of :func:`~dagster_sutro.execution.run_enrichment` (:data:`RUN_FIELDS`)."""
        return {name: getattr(self, name) for name in RUN_FIELDS}

    def replace(self, **changes: Any) -> SutroEnrichment:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)
