"""Asset events and OpenLineage facets of the batch and real-time operators, against
the local server, moto S3 and SQLite (no Airflow DB; the real listener's events are
checked in test_taskflow_assets_e2e.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider.assets import table_location
from airflow_provider.operators.batch import SutroBatchFunctionOperator
from airflow_provider.operators.run_function import SutroRunFunctionOperator
from tests.airflow.conftest import TICKETS, conn_json, make_context

pytestmark = pytest.mark.timeout(120)

FAST = {"function_name": "ticket-triage", "poll_interval": 0.1, "max_poll_interval": 0.3, "deferrable": False}
RESULTS = ["label", "confidence", "rationale", "sutro_skip_reason"]
INPUTS = ["subject", "body", "customer_tier"]


def with_events(**ti: Any) -> dict[str, Any]:
    context = make_context(**ti)
    context["outlet_events"] = OutletEventAccessors()
    return context


def alias_events(context: dict[str, Any], alias: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.dest_asset_key.uri, e.extra) for e in context["outlet_events"][AssetAlias(alias)].asset_alias_events]


def stage_tickets(staged: Any) -> str:
    uri = f"s3://{staged.bucket}/in/tickets.parquet"
    rows = [{"id": i, **t} for i, t in enumerate(TICKETS)]
    pq.write_table(pa.Table.from_pylist(rows), uri.removeprefix("s3://"), filesystem=staged.s3.filesystem())
    return uri


def create_triaged(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE triaged (id INTEGER, subject TEXT, label TEXT, confidence REAL, day TEXT)")


def facets(dataset: Any) -> tuple[list[tuple[str, str | None]], dict[str, list[tuple[str, str, str]]]]:
    """(schema fields as (name, description), column lineage as {field: [(dataset name, field, subtype)]})."""
    schema = [(f.name, f.description) for f in dataset.facets["schema"].fields]
    lineage = {name: [(i.name, i.field, i.transformations[0].subtype) for i in f.inputFields]
               for name, f in dataset.facets.get("columnLineage", type("_", (), {"fields": {}})).fields.items()}
    return schema, lineage


# ---------------------------------------------------------------------- assets
def test_a_templated_output_and_a_table_emit_events_through_the_alias(sutro_staged: Any, sqlite_db: Path) -> None:
    create_triaged(sqlite_db)
    op = SutroBatchFunctionOperator(
        task_id="triage", input_data=TICKETS, output_uri="{{ out }}", destination_table="triaged",
        destination_conn_id="warehouse", destination_columns=["subject", "label", "confidence"],
        partition_column="day", **FAST)
    assert op.asset_alias == f"sutro/{op.dag_id}/triage"
    assert [o for o in op.outlets if isinstance(o, AssetAlias)] == [AssetAlias(op.asset_alias)]
    assert not [o for o in op.outlets if isinstance(o, Asset)]  # no static asset of a template
    output = f"s3://{sutro_staged.bucket}/out/2026-11-20.parquet"
    op.output_uri = output  # what rendering "{{ out }}" gives
    context = with_events()
    manifest = op.execute(context)
    events = alias_events(context, op.asset_alias)
    table_uri = f"sqlite://localhost/{str(sqlite_db).lstrip('/')}/triaged"
    assert [uri for uri, _ in events] == [output, table_uri]
    assert events[0][1] == {"sutro_function": "ticket-triage", "rows": 4, "job_ids": manifest["job_ids"],
                            "run_key": manifest["run_key"]}


def test_a_literal_output_is_a_static_asset_and_an_alias_only_when_asked(sutro_staged: Any) -> None:
    output = f"s3://{sutro_staged.bucket}/out/fixed.parquet"
    op = SutroBatchFunctionOperator(task_id="t", input_data=TICKETS, output_uri=output, **FAST)
    assert op.outlets == [Asset(output)] and op.asset_alias is None
    context = with_events()
    op.execute(context)
    assert not list(context["outlet_events"])  # Airflow itself records the static outlet's event
    named = SutroBatchFunctionOperator(task_id="t2", input_data=TICKETS, output_uri=output, asset_alias="tickets",
                                       **FAST)
    assert named.outlets == [Asset(output), AssetAlias("tickets")]
    context = with_events()
    named.execute(context)
    assert alias_events(context, "tickets") == []  # the static asset already has its event


def test_table_asset_uris_follow_airflow_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PG", conn_json(conn_type="postgres", host="db.example", port=5433,
                                                    schema="warehouse", login="etl", password="secret"))
    plain, qualified = table_location("pg", "tickets"), table_location("pg", "analytics.tickets")
    assert plain.asset_uri == "postgres://db.example:5433/warehouse/public/tickets"
    assert qualified.asset_uri == "postgres://db.example:5433/warehouse/analytics/tickets"
    assert (plain.namespace, plain.name) == ("postgres://db.example:5433", "warehouse.public.tickets")
    assert Asset(plain.asset_uri).uri == plain.asset_uri  # Airflow's postgres URI rules accept it
    assert "secret" not in repr(plain)


# ---------------------------------------------------------------------- OpenLineage
def test_batch_lineage_from_an_input_uri_on_start_and_on_complete(sutro_staged: Any, sqlite_db: Path) -> None:
    create_triaged(sqlite_db)
    source = stage_tickets(sutro_staged)
    output = f"s3://{sutro_staged.bucket}/out/lineage.parquet"
    op = SutroBatchFunctionOperator(
        task_id="t", input_uri=source, output_uri=output, id_column="id", destination_table="triaged",
        destination_conn_id="warehouse", destination_columns=["id", "subject", "label", "confidence"],
        partition_column="day", **FAST)
    start = op.get_openlineage_facets_on_start()
    assert sutro_staged.server.admin.job_count() == 0
    op.execute(make_context())
    complete = op.get_openlineage_facets_on_complete(None)
    for lineage in (start, complete):
        (source_ds,) = lineage.inputs
        assert (source_ds.namespace, source_ds.name) == (f"s3://{sutro_staged.bucket}", "in/tickets.parquet")
        assert [f.name for f in source_ds.facets["schema"].fields] == ["id", *INPUTS]
        out, table = lineage.outputs
        schema, columns = facets(out)
        assert [n for n, _ in schema] == ["id", *INPUTS, *RESULTS]
        texts = dict(schema)
        assert "one of: billing, bug, feature_request, account, other" in (texts["label"] or "")
        assert columns["subject"] == [("in/tickets.parquet", "subject", "IDENTITY")]
        assert columns["label"] == [("in/tickets.parquet", f, "TRANSFORMATION") for f in INPUTS]
        assert columns["confidence"] == columns["label"]
        schema, columns = facets(table)
        assert table.name == "triaged" and [n for n, _ in schema] == ["id", "subject", "label", "confidence", "day"]
        assert set(columns) == {"id", "subject", "label", "confidence"}  # the partition comes from no input
    assert "externalQuery" not in start.run_facets and complete.run_facets["externalQuery"].externalQueryId


def test_batch_lineage_traces_a_query_to_its_table_columns(sutro_staged: Any, sqlite_db: Path) -> None:
    with sqlite3.connect(sqlite_db) as db:
        db.execute("CREATE TABLE support (id INTEGER, title TEXT, message TEXT, tier TEXT)")
        db.executemany("INSERT INTO support VALUES (?, ?, ?, ?)",
                       [(i, t["subject"], t["body"], t["customer_tier"]) for i, t in enumerate(TICKETS)])
    output = f"s3://{sutro_staged.bucket}/out/sql.parquet"
    op = SutroBatchFunctionOperator(
        task_id="t", sql="SELECT id, title AS subject, message AS body, tier AS customer_tier FROM support",
        conn_id="warehouse", id_column="id", output_uri=output, **FAST)
    start = op.get_openlineage_facets_on_start()
    assert [d.name for d in start.inputs] == ["support"] and not start.inputs[0].facets  # the query did not run
    op.execute(make_context())
    lineage = op.get_openlineage_facets_on_complete(None)
    (table,) = lineage.inputs
    assert [f.name for f in table.facets["schema"].fields] == ["id", "title", "message", "tier"]
    _, columns = facets(lineage.outputs[0])
    assert columns["subject"] == [("support", "title", "IDENTITY")]
    assert columns["label"] == [("support", f, "TRANSFORMATION") for f in ("title", "message", "tier")]


def test_realtime_lineage_from_an_input_uri(sutro_staged: Any) -> None:
    source = stage_tickets(sutro_staged)
    output = f"s3://{sutro_staged.bucket}/out/realtime.parquet"
    op = SutroRunFunctionOperator(task_id="rt", function_name="ticket-triage", input_uri=source, output_uri=output,
                                  return_rows=False)
    start = op.get_openlineage_facets_on_start()
    assert [d.name for d in start.inputs] == ["in/tickets.parquet"] and [d.name for d in start.outputs] == [
        "out/realtime.parquet"]
    assert op.execute(make_context())["rows_out"] == len(TICKETS)
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [f.name for f in lineage.inputs[0].facets["schema"].fields] == ["id", *INPUTS]
    schema, columns = facets(lineage.outputs[0])
    assert [n for n, _ in schema] == ["id", *INPUTS, *RESULTS]
    assert columns["label"] == [("in/tickets.parquet", f, "TRANSFORMATION") for f in INPUTS]
    assert columns["id"] == [("in/tickets.parquet", "id", "IDENTITY")]
