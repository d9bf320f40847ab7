"""``DagsterSutroTranslator``: how one Function x table becomes a Dagster asset spec.

Modelled on ``DagsterFivetranTranslator`` / ``DagsterDbtTranslator``: one
``get_*`` method per attribute, each taking the
:class:`~dagster_sutro.enrichment.SutroEnrichment` (the "props" of one Function over
one table), and :meth:`DagsterSutroTranslator.get_asset_spec` putting them
together. Subclass it and override what you want; every factory takes a
``translator=`` (the Component applies its ``translation`` block on top of it).

Defaults: the key is ``enrichment.key`` or ``<upstream name>_<function>``; the
description is the enrichment's, else "`<upstream>` enriched by the Sutro Function
`<function>`." followed by the Function's published description; kinds
``{"sutro", <output format>}``; metadata ``sutro/function`` (+ ``partition_expr``);
the rest is what the enrichment sets.

Example::

    import dagster as dg
    from dagster_sutro import DagsterSutroTranslator, SutroEnrichment

    class TeamTranslator(DagsterSutroTranslator):
        def get_asset_key(self, enrichment: SutroEnrichment) -> dg.AssetKey:
            return super().get_asset_key(enrichment).with_prefix("enriched")

        def get_owners(self, enrichment: SutroEnrichment) -> list[str]:
            return ["team:support-ml"]

    spec = TeamTranslator().get_asset_spec(SutroEnrichment(function="ticket-triage", upstream="support/tickets"))
    assert spec.key == dg.AssetKey(["enriched", "tickets_ticket_triage"]) and spec.owners == ["team:support-ml"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from dagster_sutro.enrichment import SutroEnrichment
from dagster_sutro.metadata import definition_metadata

FUNCTION_METADATA_KEY = "sutro/function"
DEFAULT_IO_MANAGER_KEY = "io_manager"


def default_asset_name(upstream: dg.AssetKey, function: str) -> str:
    """``<upstream name>_<function>``, with ``-`` and ``.`` as ``_``."""
    return f"{upstream.path[-1]}_{function.replace('-', '_').replace('.', '_')}"


class DagsterSutroTranslator:
    """Translates a :class:`~dagster_sutro.enrichment.SutroEnrichment` into an :class:`dagster.AssetSpec`."""

    def get_asset_key(self, enrichment: SutroEnrichment) -> dg.AssetKey:
        if enrichment.key is not None:
            assert isinstance(enrichment.key, dg.AssetKey)
            return enrichment.key
        return dg.AssetKey([default_asset_name(enrichment.upstream_key, enrichment.function)])

    def get_description(self, enrichment: SutroEnrichment) -> str:
        if enrichment.description:
            return enrichment.description
        text = f"`{enrichment.upstream_key.to_user_string()}` enriched by the Sutro Function `{enrichment.function}`."
        spec = enrichment.spec
        if spec is not None and spec.description:
            text += f"\n\n{spec.description}"
        return text

    def get_group_name(self, enrichment: SutroEnrichment) -> str | None:
        return enrichment.group_name

    def get_tags(self, enrichment: SutroEnrichment) -> Mapping[str, str]:
        return dict(enrichment.tags)

    def get_owners(self, enrichment: SutroEnrichment) -> Sequence[str]:
        return list(enrichment.owners)

    def get_kinds(self, enrichment: SutroEnrichment) -> set[str]:
        if enrichment.kinds:
            return set(enrichment.kinds)
        return {"sutro", "pyarrow" if enrichment.output_format == "arrow" else enrichment.output_format}

    def get_metadata(self, enrichment: SutroEnrichment) -> Mapping[str, Any]:
        """``sutro/function``, ``partition_expr``, the column lineage / schema known before
        any run (:func:`dagster_sutro.metadata.definition_metadata`), then the enrichment's."""
        options = enrichment.enrichment_options
        metadata: dict[str, Any] = {
            **definition_metadata(enrichment.function, enrichment.upstream_key, spec=enrichment.spec,
                                  input_fields=options.input_fields, upstream_schema=enrichment.upstream_schema,
                                  prefix=options.output_prefix),
            FUNCTION_METADATA_KEY: enrichment.function,
        }
        if enrichment.partition_expr:
            metadata["partition_expr"] = enrichment.partition_expr
        metadata.update(enrichment.metadata)
        return metadata

    def get_automation_condition(self, enrichment: SutroEnrichment) -> dg.AutomationCondition | None:
        return enrichment.automation_condition

    def get_code_version(self, enrichment: SutroEnrichment) -> str | None:
        """The enrichment's ``code_version``; unset, an incremental enrichment's follows its
        cache key (:attr:`~dagster_sutro.enrichment.SutroEnrichment.incremental_code_version`)."""
        return enrichment.code_version if enrichment.code_version is not None else enrichment.incremental_code_version

    def get_partitions_def(self, enrichment: SutroEnrichment) -> dg.PartitionsDefinition | None:
        return enrichment.partitions_def

    def get_deps(self, enrichment: SutroEnrichment) -> list[dg.AssetDep]:
        """The upstream table (the factories load it as the step's input)."""
        return [dg.AssetDep(enrichment.upstream_key, partition_mapping=enrichment.partition_mapping)]

    def get_asset_spec(self, enrichment: SutroEnrichment) -> dg.AssetSpec:
        """The spec of the enriched asset, its IO manager key (default ``io_manager``) included."""
        spec = dg.AssetSpec(
            key=self.get_asset_key(enrichment),
            deps=self.get_deps(enrichment),
            description=self.get_description(enrichment),
            group_name=self.get_group_name(enrichment),
            tags=self.get_tags(enrichment),
            owners=self.get_owners(enrichment) or None,
            kinds=self.get_kinds(enrichment),
            metadata=self.get_metadata(enrichment),
            automation_condition=self.get_automation_condition(enrichment),
            code_version=self.get_code_version(enrichment),
            partitions_def=self.get_partitions_def(enrichment),
        )
        # the step hands the table to an IO manager: a spec without one would be a Nothing output
        return spec.with_io_manager_key(enrichment.io_manager_key or DEFAULT_IO_MANAGER_KEY)
