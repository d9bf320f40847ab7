"""Column lineage and descriptions of enriched assets, read back from the instance's
event log after real materializations against the local server (DuckDB and
Parquet IO managers, frames and streams), and on the asset definition."""

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
from sutro_example.tickets import DAILY, TICKETS_KEY, support_tickets

from dagster_sutro import ConfigurableSutroParquetIOManager, SutroDuckDBIOManager, sutro_function_asset
from sutro_providers.function_spec import load_function_spec
from tests.dagster.conftest import DAY

FUNCTIONS = Path(__file__).resolve().parents[2] / "example_dags" / "functions"
TRIAGED = dg.AssetKey(["support", "tickets_triaged"])
TRIAGE_INPUTS = {"subject", "body", "customer_tier"}
LEADS_KEY = dg.AssetKey(["sales", "leads"])


def deps(lineage: dg.TableColumnLineage, column: str) -> set[tuple[str, str]]:
    return {(d.asset_key.to_user_string(), d.column_name) for d in lineage.deps_by_column[column]}


def loaded_resource(make_resource: Any) -> Any:
    """The test resource with a long read timeout: on a loaded machine the first
    ``batch-inference`` of a fresh server (it reads the staged file) can exceed 10 s."""
    return make_resource(read_timeout=60)


def stored_metadata(instance: Any, key: dg.AssetKey) -> dict[str, Any]:
    """The metadata of the latest materialization of ``key`` as the instance stored it."""
    event = instance.get_latest_materialization_event(key)
    assert event is not None
    return dict(event.asset_materialization.metadata)


def test_lineage_and_descriptions_in_the_event_log(make_resource: Any, instance: Any, tmp_path: Path) -> None:
    triaged = sutro_function_asset(function="ticket-triage", upstream=support_tickets, key=TRIAGED,
                                   partitions_def=DAILY, partition_expr="created_at")
    result = dg.materialize([support_tickets, triaged], instance=instance, partition_key=DAY,
                            resources={"sutro": loaded_resource(make_resource),
                                       "io_manager": SutroDuckDBIOManager(database=str(tmp_path / "w.duckdb"))})
    assert result.success
    metadata = stored_metadata(instance, TRIAGED)

    lineage = metadata["dagster/column_lineage"].value
    assert isinstance(lineage, dg.TableColumnLineage)
    upstream = TICKETS_KEY.to_user_string()
    columns = ["ticket_id", "subject", "body", "customer_tier", "created_at",
               "label", "confidence", "rationale", "sutro_skip_reason"]
    assert set(lineage.deps_by_column) == set(columns)  # (Dagster sorts the columns)
    for kept in columns[:5]:  # the source's columns: each from itself
        assert deps(lineage, kept) == {(upstream, kept)}
    for added in columns[5:]:  # the result columns: from the Function's input fields
        assert deps(lineage, added) == {(upstream, f) for f in TRIAGE_INPUTS}

    # the schema the DuckDB IO manager writes keeps the Function spec's descriptions
    schema = metadata["dagster/column_schema"].value
    by_name = {c.name: c for c in schema.columns}
    assert [c.name for c in schema.columns] == columns
    assert by_name["label"].description == ("Label chosen by the Sutro Function 'ticket-triage', one of: "
                                            "billing, bug, feature_request, account, other")
    assert "confidence" in (by_name["confidence"].description or "")
    assert by_name["sutro_skip_reason"].description == "Why the row was not submitted (null when it was)"
    assert by_name["ticket_id"].description is None
    # TableMetadataSet: row count, and where the table lands in the database
    assert metadata["dagster/row_count"].value == 24
    assert metadata["dagster/table_name"].value.endswith("support.tickets_triaged")
    # the usage and cost keys are still there
    assert metadata["sutro/cost_usd"].value > 0
    assert metadata["sutro.qwen-3.5-27b.input_tokens"].value > 0
    assert metadata["sutro/rows_out"].value == 24


@dg.asset(key=LEADS_KEY)
def leads() -> pa.Table:
    return pa.table({"lead_id": ["L-1", "L-2", "L-3"],
                     "message": ["Hi, I run data at Acme (40 people), can we get a demo?",
                                 "Just browsing, student project.", "VP Eng at Globex, need pricing."],
                     "employees": pa.array([40, None, 2000], pa.int64())})


def test_extraction_stream_into_parquet(make_resource: Any, instance: Any, tmp_path: Path) -> None:
    """An extraction Function (output fields described by its JSON schema), prefixed
    result columns, a streaming asset (the Parquet IO manager describes the file)."""
    extracted = sutro_function_asset(function="lead-extractor", upstream=leads, key=["sales", "leads_extracted"],
                                     stream=True, options={"output_prefix": "lead_"}, io_manager_key="lake")
    result = dg.materialize([leads, extracted], instance=instance,
                            resources={"sutro": loaded_resource(make_resource),
                                       "io_manager": ConfigurableSutroParquetIOManager(base_path=str(tmp_path / "a")),
                                       "lake": ConfigurableSutroParquetIOManager(base_path=str(tmp_path / "b"))})
    assert result.success
    metadata = stored_metadata(instance, dg.AssetKey(["sales", "leads_extracted"]))
    lineage = metadata["dagster/column_lineage"].value
    assert deps(lineage, "lead_id") == {("sales/leads", "lead_id")}
    for added in ("lead_company", "lead_seniority", "lead_intent_score", "lead_wants_demo", "lead_confidence",
                  "sutro_skip_reason"):
        assert deps(lineage, added) == {("sales/leads", "message"), ("sales/leads", "employees")}
    described = {c.name: c.description for c in metadata["dagster/column_schema"].value.columns}
    assert described["lead_company"] == "The company the lead works for."  # from the spec's output schema
    assert described["lead_wants_demo"] == "Field 'wants_demo' extracted by the Sutro Function 'lead-extractor'"
    assert described["lead_id"] is None


def test_definition_carries_lineage_when_the_spec_is_known() -> None:
    """With the spec given and an upstream that declares its columns, the definition
    holds the whole enriched schema (typed, described) and its lineage before any run."""
    declared = dg.AssetSpec(TICKETS_KEY, metadata={"dagster/column_schema": dg.TableSchema(columns=[
        dg.TableColumn("ticket_id", "string", description="Ticket number"),
        dg.TableColumn("subject", "string"), dg.TableColumn("body", "string"),
        dg.TableColumn("customer_tier", "string")])})
    spec = load_function_spec(FUNCTIONS / "ticket_triage.yaml")
    asset = sutro_function_asset(function="ticket-triage", upstream=declared, key=TRIAGED, function_spec=spec)
    metadata = asset.specs_by_key[TRIAGED].metadata
    schema = metadata["dagster/column_schema"]
    assert [(c.name, c.type) for c in schema.columns] == [
        ("ticket_id", "string"), ("subject", "string"), ("body", "string"), ("customer_tier", "string"),
        ("label", "string"), ("confidence", "double"), ("rationale", "string"), ("sutro_skip_reason", "string")]
    assert schema.columns[0].description == "Ticket number"
    assert schema.columns[4].description.startswith("Label chosen by the Sutro Function 'ticket-triage'")
    lineage = metadata["dagster/column_lineage"]
    assert deps(lineage, "ticket_id") == {("support/tickets", "ticket_id")}
    assert deps(lineage, "rationale") == {("support/tickets", f) for f in TRIAGE_INPUTS}

    # input fields only: the lineage of the columns known in advance, no schema
    bare = sutro_function_asset(function="ticket-triage", upstream=TICKETS_KEY, key=TRIAGED,
                                input_fields=[{"name": "subject"}, {"name": "body"}])
    bare_metadata = bare.specs_by_key[TRIAGED].metadata
    assert "dagster/column_schema" not in bare_metadata
    assert set(bare_metadata["dagster/column_lineage"].deps_by_column) == {"confidence", "sutro_skip_reason"}
    # nothing known: nothing claimed
    unknown = sutro_function_asset(function="ticket-triage", upstream=TICKETS_KEY, key=TRIAGED)
    assert "dagster/column_lineage" not in unknown.specs_by_key[TRIAGED].metadata
