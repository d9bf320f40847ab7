"""The enriched asset end to end: local Sutro server, moto S3 staging, DuckDB or
Parquet-on-S3 output; metadata, check results and secrets hygiene."""

import re
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
from dagster._serdes import serialize_value
from sutro_example.tickets import DAILY, support_tickets, tickets_for_day

from dagster_sutro import (
    ConfigurableSutroParquetIOManager,
    SutroChecks,
    SutroDuckDBIOManager,
    cost_bounds_checks,
    sutro_function_asset,
)
from tests.dagster.conftest import DAY

LABELS = {"billing", "bug", "feature_request", "account", "other"}
TRIAGED = dg.AssetKey(["support", "tickets_triaged"])


def triaged_asset(**kw: Any) -> dg.AssetsDefinition:
    return sutro_function_asset(function="ticket-triage", upstream=support_tickets, key=TRIAGED,
                                partitions_def=DAILY, partition_expr="created_at", **kw)


def event_log_text(instance: Any, run_id: str) -> str:
    return "\n".join(serialize_value(e) for e in instance.all_logs(run_id))


def assert_no_secrets(text: str, api_key: str) -> None:
    assert api_key not in text
    assert "X-Amz-Signature" not in text and "X-Amz-Credential" not in text


def test_materialize_one_day(sutro_resource: Any, sutro_clean: Any, instance: Any, tmp_path: Path) -> None:
    database = str(tmp_path / "w.duckdb")
    checks = SutroChecks(max_low_confidence_share=0.95, max_cost_usd=0.5)
    result = dg.materialize(
        [support_tickets, triaged_asset(checks=checks), *cost_bounds_checks([TRIAGED], max_cost_usd=0.5)],
        instance=instance, partition_key=DAY,
        resources={"sutro": sutro_resource, "io_manager": SutroDuckDBIOManager(database=database)},
    )
    assert result.success

    # the table: every ticket once, in order, with a valid label and confidence
    with duckdb.connect(database) as con:
        table = con.sql("select * from support.tickets_triaged order by ticket_id").to_arrow_table()
    tickets = tickets_for_day(DAY)
    assert table.column("ticket_id").to_pylist() == [t["ticket_id"] for t in tickets]
    assert table.column("body").to_pylist() == [t["body"] for t in tickets]
    labels = table.column("label").to_pylist()
    assert set(labels) <= LABELS and None not in labels
    confidences = table.column("confidence").to_pylist()
    assert all(0 <= c <= 1 for c in confidences)
    assert table.column("sutro_skip_reason").null_count == table.num_rows

    # exactly one job, and the metadata tells its id, link, usage and cost
    stats = sutro_clean.admin.stats()
    assert stats["jobs"]["total"] == 1
    metadata = result.asset_materializations_for_node("support__tickets_triaged")[0].metadata
    with sutro_resource.get_client() as client:
        (job,) = list(client.iter_jobs())
    assert metadata["sutro/job_ids"].value == job.job_id
    assert metadata["sutro/job/0"].value == f"{sutro_clean.url}/jobs/{job.job_id}"
    assert isinstance(metadata["sutro/job/0"], dg.UrlMetadataValue)
    assert metadata["dagster/row_count"].value == len(tickets)
    schema = metadata["dagster/column_schema"].value
    assert {"ticket_id", "label", "confidence", "rationale"} <= {c.name for c in schema.columns}
    assert metadata["sutro.qwen-3.5-27b.input_tokens"].value == job.input_tokens > 0
    assert metadata["sutro.qwen-3.5-27b.output_tokens"].value == job.output_tokens > 0
    assert metadata["sutro/cost_usd"].value == job.job_cost > 0
    assert metadata["sutro/rows_in"].value == metadata["sutro/rows_out"].value == len(tickets)
    assert metadata["sutro/rows_skipped"].value == 0
    below = sum(c < 0.5 for c in confidences)
    assert metadata["sutro/rows_below_confidence"].value == below
    assert abs(metadata["sutro/mean_confidence"].value - sum(confidences) / len(confidences)) < 1e-9
    markdown = metadata["sutro/label_distribution"].value
    for label, count in Counter(labels).items():
        assert re.search(rf"\| {label} \| {count} \|", markdown)

    # the checks ran in the step and hold the same numbers
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    bounds = [name for name in evaluations if "cost_usd" in name]  # the metadata-bounds check on sutro/cost_usd
    assert set(evaluations) == {"sutro_row_parity", "sutro_low_confidence", "sutro_cost", *bounds} and len(bounds) == 1
    assert all(e.passed for e in evaluations.values())
    assert evaluations["sutro_row_parity"].metadata["rows_out"].value == len(tickets)
    assert evaluations["sutro_low_confidence"].metadata["rows_below_confidence"].value == below
    assert evaluations["sutro_cost"].metadata["cost_usd"].value == job.job_cost

    # no API key and no pre-signed URL anywhere in the event log
    assert_no_secrets(event_log_text(instance, result.run_id), sutro_clean.api_key)


def test_blocking_check_stops_downstream_parquet_on_s3(sutro_resource: Any, sutro_clean: Any, instance: Any,
                                                       sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    """Unpartitioned, pandas output on S3 Parquet; a failing blocking check keeps the
    downstream asset from running but the enriched table is stored."""

    @dg.asset
    def notes() -> pa.Table:
        return pa.table({"subject": ["Refund", "Crash", "Dark mode"],
                         "body": ["Charged twice", "Crash on login", "Please add a dark theme"]})

    triaged = sutro_function_asset(
        function="ticket-triage", upstream=notes, name="notes_triaged", output_format="pandas",
        checks=SutroChecks(max_low_confidence_share=0.0, confidence_blocking=True, max_cost_usd=0.0),
    )

    @dg.asset(deps=[triaged])
    def report() -> None: ...

    io = ConfigurableSutroParquetIOManager(base_path=f"s3://{sutro_s3_bucket}/lake", storage_options=sutro_s3_server.storage_options)
    result = dg.materialize([notes, triaged, report], instance=instance, raise_on_error=False,
                            resources={"sutro": sutro_resource, "io_manager": io})
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["sutro_row_parity"].passed
    low = evaluations["sutro_low_confidence"]
    assert not low.passed and low.severity == dg.AssetCheckSeverity.ERROR
    cost = evaluations["sutro_cost"]
    assert not cost.passed and cost.severity == dg.AssetCheckSeverity.WARN
    assert not result.asset_materializations_for_node("report")
    stored = pd.read_parquet(f"s3://{sutro_s3_bucket}/lake/notes_triaged.parquet", storage_options=sutro_s3_server.storage_options)
    assert list(stored["subject"]) == ["Refund", "Crash", "Dark mode"] and stored["label"].notna().all()


def test_single_run_backfill_is_one_run_and_one_job(sutro_resource: Any, sutro_clean: Any, instance: Any,
                                                    tmp_path: Path) -> None:
    database = str(tmp_path / "w.duckdb")
    assets = [support_tickets, triaged_asset()]
    assert assets[1].backfill_policy == dg.BackfillPolicy.single_run()
    result = dg.materialize(assets, instance=instance,
                            resources={"sutro": sutro_resource, "io_manager": SutroDuckDBIOManager(database=database)},
                            tags={"dagster/asset_partition_range_start": "2026-11-18",
                                  "dagster/asset_partition_range_end": "2026-11-19"})
    assert result.success
    assert sutro_clean.admin.job_count() == 1
    with duckdb.connect(database) as con:
        days = con.execute("select cast(created_at as date) d, count(*), count(label) from support.tickets_triaged "
                           "group by d order by d").fetchall()
    assert [(str(d), n, k) for d, n, k in days] == [("2026-11-18", 24, 24), ("2026-11-19", 24, 24)]
    metadata = result.asset_materializations_for_node("support__tickets_triaged")[0].metadata
    assert metadata["sutro/rows_out"].value == 48


def test_invalid_input_fails_before_any_job(sutro_resource: Any, sutro_clean: Any, instance: Any) -> None:
    @dg.asset
    def broken() -> pa.Table:
        return pa.table({"subject": ["no body column"]})

    triaged = sutro_function_asset(function="ticket-triage", upstream=broken, name="broken_triaged",
                                   retry_policy=dg.RetryPolicy(max_retries=2))
    result = dg.materialize([broken, triaged], instance=instance, raise_on_error=False,
                            resources={"sutro": sutro_resource, "io_manager": dg.InMemoryIOManager()})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "body" in failure.step_failure_data.error.message
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert sutro_clean.admin.job_count() == 0


def test_empty_input_submits_nothing(sutro_resource: Any, sutro_clean: Any, instance: Any, tmp_path: Path) -> None:
    @dg.asset(key=["support", "quiet_day"])
    def quiet_day() -> pa.Table:
        return pa.table({"subject": pa.array([], pa.string()), "body": pa.array([], pa.string())})

    triaged = sutro_function_asset(function="ticket-triage", upstream=quiet_day, key=["support", "quiet_day_triaged"],
                                   output_format="arrow", checks=SutroChecks(max_low_confidence_share=0.1, max_cost_usd=0))
    database = str(tmp_path / "w.duckdb")
    result = dg.materialize([quiet_day, triaged], instance=instance,
                            resources={"sutro": sutro_resource, "io_manager": SutroDuckDBIOManager(database=database)})
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    metadata = result.asset_materializations_for_node("support__quiet_day_triaged")[0].metadata
    assert metadata["sutro/state"].value == "noop" and metadata["dagster/row_count"].value == 0
    with duckdb.connect(database) as con:  # the empty table exists, with the result columns
        columns = [r[0] for r in con.execute("describe support.quiet_day_triaged").fetchall()]
    assert {"subject", "body", "label", "confidence", "rationale"} <= set(columns)
    assert sutro_clean.admin.job_count() == 0
