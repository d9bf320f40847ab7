"""The translator and the multi-asset factory: specs per Function x table, one subsettable
multi-asset per upstream table, only the selected assets' jobs run (local Sutro server,
moto S3, DuckDB)."""

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
from sutro_example.more_sources import HOURLY, TIERS, sales_leads, ticket_backlog

from dagster_sutro import (
    DagsterSutroTranslator,
    SutroDuckDBIOManager,
    SutroEnrichment,
    SutroResource,
    build_sutro_assets_definitions,
    sutro_assets,
    sutro_function_asset,
)
from sutro_providers.function_spec import load_function_spec
from tests.dagster.conftest import EXAMPLE_DIR

pytestmark = pytest.mark.timeout(900)  # several runs each on a shared 2-core machine
TRIAGED = dg.AssetKey(["support", "backlog_triaged"])
SENTIMENT = dg.AssetKey(["support", "backlog_sentiment"])
LEADS = dg.AssetKey(["sales", "leads_enriched"])
FUNCTIONS = EXAMPLE_DIR.parent / "functions"


def enrichments() -> list[SutroEnrichment]:
    return [
        SutroEnrichment(function="ticket-triage", upstream=ticket_backlog, key=TRIAGED, partitions_def=TIERS,
                        partition_expr="customer_tier"),
        SutroEnrichment(function="ticket-sentiment", upstream=ticket_backlog, key=SENTIMENT, partitions_def=TIERS,
                        partition_expr="customer_tier"),
        SutroEnrichment(function="lead-extractor", upstream=sales_leads, key=LEADS, partitions_def=HOURLY,
                        partition_expr="received_at", options={"output_prefix": "lead_"}),
    ]


@pytest.fixture
def sutro_resource(make_resource: Any) -> SutroResource:
    """The test resource with a 60 s read timeout: on a loaded machine the first
    batch-inference of a fresh server can take longer than the default 10 s."""
    return make_resource(read_timeout=60)


def models_of_jobs(resource: SutroResource) -> list[str]:
    """The Function of every batch job on the server (cost estimates excluded)."""
    with resource.get_client() as client:
        return sorted(j.model or "" for j in client.iter_jobs() if not (j.name or "").endswith("est"))


def test_translator_defaults() -> None:
    spec_of_function = load_function_spec(FUNCTIONS / "ticket_sentiment.yaml")
    enrichment = SutroEnrichment(function="ticket-sentiment", upstream="support/tickets", function_spec=spec_of_function,
                                 partition_expr="created_at", owners=["team:ml"], tags={"tier": "gold"},
                                 automation_condition=dg.AutomationCondition.eager(), code_version="v7",
                                 io_manager_key="warehouse", output_format="arrow")
    spec = DagsterSutroTranslator().get_asset_spec(enrichment)
    assert spec.key == dg.AssetKey(["tickets_ticket_sentiment"])
    assert spec.description == ("`support/tickets` enriched by the Sutro Function `ticket-sentiment`.\n\n"
                                "How the customer feels, read from a support ticket's subject and body.")
    assert [d.asset_key for d in spec.deps] == [dg.AssetKey(["support", "tickets"])]
    assert spec.kinds == {"sutro", "pyarrow"} and list(spec.owners) == ["team:ml"] and spec.tags["tier"] == "gold"
    assert spec.metadata["sutro/function"] == "ticket-sentiment" and spec.metadata["partition_expr"] == "created_at"
    assert spec.metadata["dagster/io_manager_key"] == "warehouse"
    assert spec.code_version == "v7" and spec.automation_condition == dg.AutomationCondition.eager()


def test_translator_subclass_reaches_every_factory() -> None:
    class Prefixed(DagsterSutroTranslator):
        def get_asset_key(self, enrichment: SutroEnrichment) -> dg.AssetKey:
            return super().get_asset_key(enrichment).with_prefix("enriched")

        def get_group_name(self, enrichment: SutroEnrichment) -> str:
            return f"by_{enrichment.function.replace('-', '_')}"

    assets = build_sutro_assets_definitions(enrichments(), translator=Prefixed())
    keys = {k for a in assets for k in a.keys}
    assert keys == {TRIAGED.with_prefix("enriched"), SENTIMENT.with_prefix("enriched"), LEADS.with_prefix("enriched")}
    # checks follow the translated key
    assert {c.asset_key for a in assets for c in a.check_keys} == keys
    single = sutro_function_asset(function="ticket-triage", upstream="support/tickets", translator=Prefixed())
    assert single.key == dg.AssetKey(["enriched", "tickets_ticket_triage"])
    assert single.specs_by_key[single.key].group_name == "by_ticket_triage"


def test_one_subsettable_multi_asset_per_table() -> None:
    backlog, leads = build_sutro_assets_definitions(enrichments(), group_name="enriched")
    assert backlog.keys == {TRIAGED, SENTIMENT} and leads.keys == {LEADS}
    assert backlog.can_subset and leads.can_subset
    assert backlog.partitions_def == TIERS and leads.partitions_def == HOURLY
    assert backlog.op.name == "sutro_support__ticket_backlog" and [i for i in backlog.op.ins] == ["upstream"]
    assert {s.group_name for a in (backlog, leads) for s in a.specs} == {"enriched"}
    assert backlog.backfill_policy == dg.BackfillPolicy.single_run()
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="one upstream table"):
        sutro_assets(enrichments=enrichments())
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="same asset"):
        build_sutro_assets_definitions([enrichments()[0], enrichments()[0]])


def test_materializing_one_selected_asset_runs_only_its_job(sutro_resource: SutroResource, sutro_clean: Any,
                                                             instance: Any, tmp_path: Path) -> None:
    database = str(tmp_path / "w.duckdb")
    defs = dg.Definitions(assets=[ticket_backlog, sales_leads, *build_sutro_assets_definitions(enrichments())],
                          resources={"sutro": sutro_resource, "io_manager": SutroDuckDBIOManager(database=database)})
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, partition_key="pro",
                                    asset_selection=[ticket_backlog.key, TRIAGED])
    assert result.success
    assert {m.asset_key for m in result.get_asset_materialization_events()} == {ticket_backlog.key, TRIAGED}
    assert {e.asset_check_key for e in result.get_asset_check_evaluations()} == {dg.AssetCheckKey(TRIAGED, "sutro_row_parity")}
    assert models_of_jobs(sutro_resource) == ["ticket-triage"]

    # the other asset of the same step, alone: its own job, its own run key
    result = job.execute_in_process(instance=instance, partition_key="pro", asset_selection=[SENTIMENT])
    assert result.success
    assert models_of_jobs(sutro_resource) == ["ticket-sentiment", "ticket-triage"]
    with duckdb.connect(database) as con:
        assert con.execute("select count(*), count(label) from support.backlog_triaged").fetchone() == (8, 8)
        labels = {r[0] for r in con.execute("select distinct label from support.backlog_sentiment").fetchall()}
    assert labels <= {"negative", "neutral", "positive"}


def test_decorator_runs_code_around_the_selected_runs(sutro_resource: SutroResource, sutro_clean: Any,
                                                      instance: Any, tmp_path: Path) -> None:
    seen: list[set[dg.AssetKey]] = []

    @sutro_assets(enrichments=enrichments()[:2], name="backlog_enrichments")
    def backlog_enrichments(context: dg.AssetExecutionContext, upstream: Any, sutro: SutroResource):  # noqa: ANN202
        seen.append(set(context.selected_asset_keys))
        yield from sutro.enrich_assets(context, upstream)

    assert backlog_enrichments.keys == {TRIAGED, SENTIMENT} and backlog_enrichments.can_subset
    result = dg.materialize([ticket_backlog, backlog_enrichments], instance=instance, partition_key="free",
                            resources={"sutro": sutro_resource,
                                       "io_manager": SutroDuckDBIOManager(database=str(tmp_path / "w.duckdb"))})
    assert result.success and seen == [{TRIAGED, SENTIMENT}]
    assert models_of_jobs(sutro_resource) == ["ticket-sentiment", "ticket-triage"]
    # outside a @sutro_assets function there is nothing to run
    with pytest.raises(dg.DagsterInvariantViolationError, match="sutro_assets"):
        next(iter(sutro_resource.enrich_assets(dg.build_asset_context(), [])))


def test_one_failed_asset_does_not_stop_the_others(sutro_resource: SutroResource, sutro_clean: Any,
                                                   instance: Any, tmp_path: Path) -> None:
    broken = SutroEnrichment(function="ticket-triage", upstream=ticket_backlog, key=TRIAGED, partitions_def=TIERS,
                             partition_expr="customer_tier", input_fields=[{"name": "no_such_column"}])
    defs = dg.Definitions(assets=[ticket_backlog, *build_sutro_assets_definitions([broken, enrichments()[1]])],
                          resources={"sutro": sutro_resource,
                                     "io_manager": SutroDuckDBIOManager(database=str(tmp_path / "w.duckdb"))})
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, partition_key="enterprise", raise_on_error=False)
    assert not result.success
    assert {m.asset_key for m in result.get_asset_materialization_events()} == {ticket_backlog.key, SENTIMENT}
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "no_such_column" in failure.step_failure_data.error.message  # names the failed asset's input error
    assert models_of_jobs(sutro_resource) == ["ticket-sentiment"]
