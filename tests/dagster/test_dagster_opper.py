"""Opper on Dagster end to end: ``opper_function_asset`` and ``OpperFunctionComponent``
materialized against the local server's Opper routes (real sockets), staging on moto
S3 (conditional writes of the run record) and DuckDB output: every row once, tags and
the parent span on each call, per-model usage and cost in the metadata, the checks,
a step retry that calls no answered row again, no secret in the event log."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pyarrow as pa
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox
from sutro_example.tickets import DAILY, support_tickets, tickets_for_day

from dagster_sutro import (
    OpperFunctionComponent,
    OpperResource,
    SutroChecks,
    SutroDuckDBIOManager,
    cost_bounds_checks,
    opper_function_asset,
)
from tests.dagster.conftest import DAY
from tests.dagster.test_dagster_assets import assert_no_secrets, event_log_text
from tests.dagster.test_dagster_component import add_source_table

TRIAGED = dg.AssetKey(["support", "tickets_triaged"])
MODEL = "openai/gpt-4o-mini"
INPUT_SCHEMA = {"type": "object", "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
                "required": ["subject", "body"]}
OUTPUT_SCHEMA = {"type": "object", "properties": {
    "label": {"type": "string", "enum": ["billing", "bug", "feature_request", "account", "other"]},
    "urgent": {"type": "boolean"}}, "required": ["label", "urgent"]}


@pytest.fixture
def opper_server(sutro_clean: Any) -> Any:
    """The local server with its Opper state reset (calls, spans, faults)."""
    httpx.post(f"{sutro_clean.url}/_opper/reset", timeout=10).raise_for_status()
    return sutro_clean


@pytest.fixture
def opper_resource(opper_server: Any, sutro_s3_server: Any, sutro_s3_bucket: str) -> OpperResource:
    return OpperResource(api_key=opper_server.api_key, base_url=opper_server.url,
                         staging_url=f"s3://{sutro_s3_bucket}/opper-staging", s3_endpoint_url=sutro_s3_server.endpoint_url,
                         aws_access_key_id="testing", aws_secret_access_key="testing", aws_region_name="us-east-1")


def server_calls(server: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = httpx.get(f"{server.url}/_opper/calls", timeout=60).json()["calls"]
    return calls


def triaged(**kw: Any) -> dg.AssetsDefinition:
    base: dict[str, Any] = dict(function="ticket-triage", upstream=support_tickets, key=TRIAGED, partitions_def=DAILY,
                                partition_expr="created_at", instructions="Classify the support ticket",
                                input_schema=INPUT_SCHEMA, output_schema=OUTPUT_SCHEMA, model=MODEL,
                                examples=[{"input": {"subject": "Refund", "body": "charged twice"},
                                           "output": {"label": "billing", "urgent": False}}],
                                call_tags={"team": "support"}, concurrency=4, options={"id_column": "ticket_id"})
    return opper_function_asset(**{**base, **kw})


def test_materialize_one_day_through_opper(opper_resource: OpperResource, opper_server: Any, instance: Any,
                                           tmp_path: Path) -> None:
    database = str(tmp_path / "w.duckdb")
    asset = triaged(checks=SutroChecks(max_cost_usd=0.5))
    assert asset.specs_by_key[TRIAGED].kinds == {"opper", "polars"}
    result = dg.materialize(
        [support_tickets, asset, *cost_bounds_checks([TRIAGED], max_cost_usd=0.5)],
        instance=instance, partition_key=DAY,
        resources={"opper": opper_resource, "io_manager": SutroDuckDBIOManager(database=database)},
    )
    assert result.success
    tickets = tickets_for_day(DAY)
    with duckdb.connect(database) as con:
        table = con.sql("select * from support.tickets_triaged order by ticket_id").to_arrow_table()
    assert table.column("ticket_id").to_pylist() == [t["ticket_id"] for t in tickets]
    assert table.column("label").null_count == 0 and table.schema.field("urgent").type == pa.bool_()
    assert table.column("sutro_skip_reason").null_count == len(tickets)

    # every row called once, with the run's tags and under the run's parent span
    calls = server_calls(opper_server)
    assert sorted(Counter(c["tags"]["sutro.row"] for c in calls).values()) == [1] * len(tickets)
    metadata = result.asset_materializations_for_node("support__tickets_triaged")[0].metadata
    span = metadata["opper/trace_span_id"].value
    assert span
    for call in calls:
        tags = call["tags"]
        assert call["parent_span_id"] == span and call["examples"] == 1
        assert tags["sutro.asset_key"] == "support/tickets_triaged" and tags["sutro.partition_key"] == DAY
        assert tags["sutro.root_run_id"] == result.run_id and tags["team"] == "support"

    # per-model usage and cost, the totals, the row counts
    usage_calls = metadata[f"opper.{MODEL}.calls"].value
    assert usage_calls == len(tickets)
    assert metadata[f"opper.{MODEL}.input_tokens"].value == metadata["sutro/input_tokens"].value > 0
    assert metadata[f"opper.{MODEL}.output_tokens"].value == metadata["sutro/output_tokens"].value > 0
    assert metadata[f"opper.{MODEL}.cost_usd"].value == metadata["sutro/cost_usd"].value > 0
    assert metadata["sutro/rows_in"].value == metadata["sutro/rows_out"].value == len(tickets)
    assert metadata["opper/rows_failed"].value == 0 and metadata["dagster/row_count"].value == len(tickets)
    assert not any(key.startswith("sutro.") for key in metadata)  # no Sutro usage keys for an Opper run

    # the checks ran in the step
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    bounds = [name for name in evaluations if "cost_usd" in name]
    assert set(evaluations) == {"sutro_row_parity", "sutro_cost", *bounds} and all(e.passed for e in evaluations.values())
    assert evaluations["sutro_cost"].metadata["cost_usd"].value == metadata["sutro/cost_usd"].value
    log_text = event_log_text(instance, result.run_id)
    assert_no_secrets(log_text, opper_server.api_key)
    # the core's row progress lines, in the run's event log: the last count always gets one
    assert f"Opper ticket-triage: {len(tickets):,} / {len(tickets):,} rows answered (100.0%)" in log_text


def test_a_step_retry_calls_only_unanswered_rows(opper_resource: OpperResource, opper_server: Any, instance: Any,
                                                 tmp_path: Path) -> None:
    """A row refused mid-run fails the step (on_row_error="fail"); the step retry calls
    only the rows without a recorded answer: every row is answered exactly once. (250 ms
    per call, two at a time: the 24 rows take 3 s, time enough to set the fault.)"""
    httpx.post(f"{opper_server.url}/_opper/faults", timeout=10, json=[
        {"kind": "latency", "endpoint": "opper-call-revision", "latency_ms": 250}]).raise_for_status()
    asset = triaged(concurrency=2, retry_policy=dg.RetryPolicy(max_retries=1),
                    options={"id_column": "ticket_id", "max_row_attempts": 1, "journal_chunk_rows": 2})
    out: dict[str, Any] = {}

    def run() -> None:
        out["result"] = dg.materialize(
            [support_tickets, asset], instance=instance, partition_key=DAY, raise_on_error=False,
            resources={"opper": opper_resource, "io_manager": SutroDuckDBIOManager(database=str(tmp_path / "w.duckdb"))})

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while len(server_calls(opper_server)) < 6:
        assert thread.is_alive() and time.monotonic() < deadline, out
        time.sleep(0.02)
    assert len(server_calls(opper_server)) < len(tickets_for_day(DAY)), "the run ended before the fault was set"
    httpx.post(f"{opper_server.url}/_opper/faults", timeout=10, json=[
        {"kind": "latency", "endpoint": "opper-call-revision", "latency_ms": 250},
        {"kind": "status", "endpoint": "opper-call-revision", "status": 400, "count": 1,
         "message": "input refused"}]).raise_for_status()
    thread.join(timeout=120)
    result = out["result"]
    assert result.success
    events = result.all_events
    assert any(e.event_type_value == "STEP_RESTARTED" for e in events)
    failure = next(e for e in events if e.event_type_value == "STEP_UP_FOR_RETRY")
    assert "input refused" in str(failure.event_specific_data)
    called = Counter(c["tags"]["sutro.row"] for c in server_calls(opper_server))
    assert len(called) == len(tickets_for_day(DAY)) and set(called.values()) == {1}, called.most_common(3)


def test_definition_errors_fail_the_load() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="no confidence"):
        triaged(checks=SutroChecks(max_low_confidence_share=0.2))
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="input_schema"):
        triaged(input_schema=None)
    with pytest.raises(ValueError, match="concurrency"):
        triaged(concurrency=0)


def test_component_from_yaml_materializes(opper_server: Any, sutro_s3_server: Any, sutro_s3_bucket: str, instance: Any,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPPER_API_KEY", opper_server.api_key)
    monkeypatch.setenv("SUTRO_EXAMPLE_DUCKDB", str(tmp_path / "w.duckdb"))
    attributes = {
        "function": "ticket-triage", "upstream": "support/tickets", "asset_key": "support/tickets_triaged",
        "instructions": "Classify the support ticket", "input_schema": INPUT_SCHEMA, "output_schema": OUTPUT_SCHEMA,
        "opper_model": MODEL, "concurrency": 4, "partitions": {"start_date": "2026-11-01"},
        "partition_expr": "created_at", "checks": {"max_cost_usd": 1.0},
        "resource": {"base_url": opper_server.url, "staging_url": f"s3://{sutro_s3_bucket}/opper-component",
                     "s3_endpoint_url": sutro_s3_server.endpoint_url, "aws_region_name": "us-east-1"},
    }
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=OpperFunctionComponent,
                                          defs_yaml_contents={"type": "dagster_sutro.OpperFunctionComponent",
                                                              "attributes": attributes})
        add_source_table(sandbox.defs_folder_path)
        with sandbox.build_component_tree() as tree:
            assert isinstance(tree.load_component(path), OpperFunctionComponent)
            defs = tree.build_defs()
            asset = defs.resolve_assets_def(TRIAGED)
            assert [s.name for s in asset.check_specs] == ["sutro_row_parity", "sutro_cost"]
            resource = defs.resources["opper"]
            assert isinstance(resource, OpperResource)
            assert opper_server.api_key not in repr(resource._get_non_default_public_field_values())  # noqa: SLF001
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, partition_key=DAY)
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "sutro_row_parity": True, "sutro_cost": True}
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert con.execute("select count(*), count(label) from support.tickets_triaged").fetchone() == (24, 24)
    assert len(server_calls(opper_server)) == 24


def test_scaffolded_component_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=OpperFunctionComponent)
        attributes = yaml.safe_load((path / "defs.yaml").read_text())["attributes"]
        assert attributes["function"] == "ticket-triage" and attributes["resource"]["api_key_env_var"] == "OPPER_API_KEY"
        add_source_table(sandbox.defs_folder_path)
        with sandbox.build_component_tree() as tree:
            defs = tree.build_defs()
            assert [s.name for s in defs.resolve_assets_def(TRIAGED).check_specs] == ["sutro_row_parity", "sutro_cost"]
            assert isinstance(defs.resources["opper"], OpperResource)
