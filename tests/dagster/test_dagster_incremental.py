"""Incremental Dagster assets: one partition materialized twice over identical input
pays for one job; the second materialization reuses every row and says so in its
metadata; ``code_version`` follows ``cache_version`` (factory and Component)."""

from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import duckdb
from pydantic import model_validator
from sutro_example.tickets import DAILY, support_tickets, tickets_for_day

from dagster_sutro import (
    SutroChecks,
    SutroDuckDBIOManager,
    SutroEnrichment,
    SutroFunctionComponent,
    build_sutro_assets_definitions,
    function_code_version,
    sutro_function_asset,
)
from sutro_providers.function_spec import load_function_spec
from sutro_providers.options import EnrichmentOptions
from tests.dagster.conftest import DAY, EXAMPLE_DIR

TRIAGE_SPEC = load_function_spec(EXAMPLE_DIR.parent / "functions" / "ticket_triage.yaml")

TRIAGED = dg.AssetKey(["support", "tickets_triaged"])


def test_a_partition_materialized_twice_pays_once(make_resource: Any, sutro_clean: Any, instance: Any,
                                                  tmp_path: Path) -> None:
    sutro_resource = make_resource(read_timeout=60)  # a loaded machine: no outcome-unknown retry path here
    database = str(tmp_path / "w.duckdb")
    triaged = sutro_function_asset(function="ticket-triage", upstream=support_tickets, key=TRIAGED,
                                   partitions_def=DAILY, partition_expr="created_at", incremental=True,
                                   checks=SutroChecks(max_cost_usd=0.5))
    resources = {"sutro": sutro_resource, "io_manager": SutroDuckDBIOManager(database=database)}
    runs = [dg.materialize([support_tickets, triaged], instance=instance, partition_key=DAY, resources=resources)
            for _ in range(2)]
    assert all(r.success for r in runs) and runs[0].run_id != runs[1].run_id
    assert sutro_clean.admin.stats()["jobs"]["total"] == 1  # one paid job for two materializations

    rows = len(tickets_for_day(DAY))
    first, second = (r.asset_materializations_for_node("support__tickets_triaged")[0].metadata for r in runs)
    assert first["sutro/rows_submitted"].value == rows and first["sutro/rows_reused"].value == 0
    assert second["sutro/rows_submitted"].value == 0 and second["sutro/rows_reused"].value == rows
    assert second["sutro/cost_avoided_usd"].value == first["sutro/cost_usd"].value > 0
    assert "sutro/job_ids" not in second or second["sutro/job_ids"].value is None
    with duckdb.connect(database) as con:
        table = con.sql("select * from support.tickets_triaged order by ticket_id").to_arrow_table()
    assert table.num_rows == rows and all(table.column("sutro_reused").to_pylist())
    assert table.column("label").null_count == 0


def test_code_version_follows_the_cache_version() -> None:
    def version(**kw: Any) -> str | None:
        asset = sutro_function_asset(function="ticket-triage", upstream=support_tickets, key=TRIAGED, **kw)
        return asset.code_versions_by_key[TRIAGED]

    assert version() is None  # not incremental: no code version of ours
    v1, v2 = version(incremental=True, cache_version="1"), version(incremental=True, cache_version="2")
    assert v1 and v2 and v1 != v2 and version(incremental=True, cache_version="1") == v1
    assert version(options={"incremental": True, "sampling_params": {"temperature": 0.2}}) != version(incremental=True)
    component = SutroFunctionComponent(function="ticket-triage", upstream="support/tickets",
                                       asset_key="support/tickets_triaged", incremental=True, cache_version="2")
    assert component.build_asset().code_versions_by_key[TRIAGED] == v2


def test_every_factory_gives_an_incremental_enrichment_the_same_code_version() -> None:
    """One derivation (``SutroEnrichment.incremental_code_version``, the translator's default):
    the one-asset factory, the multi-asset factory and the Component agree, with and without
    the Function's spec."""
    kw: dict[str, Any] = dict(function="ticket-triage", upstream=support_tickets, key=TRIAGED)
    options = {"incremental": True, "cache_version": "3", "sampling_params": {"temperature": 0.1}}
    one = sutro_function_asset(**kw, options=options).code_versions_by_key[TRIAGED]
    (multi,) = build_sutro_assets_definitions([SutroEnrichment(**kw, options=options)])
    assert one and multi.code_versions_by_key[TRIAGED] == one
    component = SutroFunctionComponent(function="ticket-triage", upstream="support/tickets",
                                       asset_key="support/tickets_triaged", incremental=True, cache_version="3",
                                       options={"sampling_params": {"temperature": 0.1}})
    assert component.build_asset().code_versions_by_key[TRIAGED] == one

    with_spec = sutro_function_asset(**kw, options=options, function_spec=TRIAGE_SPEC).code_versions_by_key[TRIAGED]
    assert with_spec == f"{one}-{function_code_version('ticket-triage', TRIAGE_SPEC)}"
    (multi,) = build_sutro_assets_definitions([SutroEnrichment(**kw, options=options, function_spec=TRIAGE_SPEC)])
    assert multi.code_versions_by_key[TRIAGED] == with_spec
    explicit = sutro_function_asset(**kw, options=options, code_version="mine").code_versions_by_key[TRIAGED]
    assert explicit == "mine"


class CountedOptions(EnrichmentOptions):
    validations: ClassVar[int] = 0

    @model_validator(mode="after")
    def _count(self) -> "CountedOptions":
        type(self).validations += 1
        return self


def test_sutro_function_asset_validates_its_options_once() -> None:
    options = CountedOptions(function="ticket-triage", output_prefix="t_")
    CountedOptions.validations = 0
    asset = sutro_function_asset(function="ticket-triage", upstream=support_tickets, key=TRIAGED, options=options,
                                 incremental=True, cache_version="1", progress_interval=5)
    assert CountedOptions.validations == 1
    assert asset.code_versions_by_key[TRIAGED] == sutro_function_asset(
        function="ticket-triage", upstream=support_tickets, key=TRIAGED, incremental=True, cache_version="1",
        options={"output_prefix": "t_"}).code_versions_by_key[TRIAGED]
