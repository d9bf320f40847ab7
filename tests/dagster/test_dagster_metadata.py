"""Metadata and check evaluation from a manifest (no server needed)."""

import logging
from typing import Any, get_args

import dagster as dg
import pyarrow as pa
import pytest

from dagster_sutro import SutroChecks
from dagster_sutro.metadata import build_metadata, job_metadata, label_distribution_markdown
from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.manifest import Manifest, ResultSummary, RunState, ShardInfo

KEY = dg.AssetKey(["support", "tickets_triaged"])


def manifest(**kw: Any) -> Manifest:
    data: dict[str, Any] = dict(
        run_key="k" * 64, identity="dagster: asset_key=x", function="ticket-triage", model="qwen-3.5-27b",
        state="succeeded", shards=[ShardInfo(index=0, job_id="job-a", job_name="sp-a-s0000", rows=3),
                                   ShardInfo(index=1, job_id="job-b", job_name="sp-a-s0001", rows=1)],
        rows_in=4, rows_out=4, input_tokens=40, output_tokens=12, cost_usd=0.25,
        summary=ResultSummary(label_counts={"bug": 3, "billing": 1}, mean_confidence=0.6,
                              rows_below_confidence=1, confidence_threshold=0.5),
    )
    data.update(kw)
    return Manifest(**data)


def test_metadata_values() -> None:
    md = build_metadata(manifest(), pa.table({"id": [1, 2, 3, 4]}), origin="https://acme.example")
    assert md["sutro/job_ids"] == "job-a, job-b"
    assert md["sutro/job/1"] == dg.MetadataValue.url("https://acme.example/jobs/job-b")
    assert md["sutro.qwen-3.5-27b.input_tokens"] == 40 and md["sutro.qwen-3.5-27b.output_tokens"] == 12
    assert md["sutro/cost_usd"] == 0.25 and md["dagster/row_count"] == 4
    assert md["sutro/label_distribution"].value.splitlines()[2:] == ["| bug | 3 | 75.0% |", "| billing | 1 | 25.0% |"]


def test_metadata_never_fails(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        num_rows = 1

        @property
        def schema(self) -> Any:
            raise RuntimeError("no schema")

    with caplog.at_level(logging.WARNING):
        md = build_metadata(manifest(), Broken(), origin="https://acme.example", job_url_template="{nope}")  # type: ignore[arg-type]
    assert "dagster/row_count" not in md and "sutro/job/0" not in md  # the broken parts are left out
    assert md["sutro/cost_usd"] == 0.25  # the rest is there
    assert "table metadata" in caplog.text and "links metadata" in caplog.text


def test_check_results() -> None:
    checks = SutroChecks(max_low_confidence_share=0.2, confidence_blocking=True, max_cost_usd=0.1)
    results = {r.check_name: r for r in checks.evaluate(manifest(), pa.table({"id": [1, 2, 3, 4]}), KEY)}
    assert results["sutro_row_parity"].passed
    assert not results["sutro_low_confidence"].passed
    assert results["sutro_low_confidence"].severity == dg.AssetCheckSeverity.ERROR
    assert results["sutro_low_confidence"].metadata["share_below_confidence"].value == 0.25
    assert not results["sutro_cost"].passed and results["sutro_cost"].severity == dg.AssetCheckSeverity.WARN

    skipped = {r.check_name: r for r in checks.evaluate(manifest(rows_skipped=1), pa.table({"id": [1, 2, 3, 4]}), KEY)}
    assert not skipped["sutro_row_parity"].passed
    assert skipped["sutro_row_parity"].severity == dg.AssetCheckSeverity.ERROR  # row parity blocks by default

    empty = manifest(state="noop", shards=[], rows_in=0, rows_out=0, cost_usd=None, summary=ResultSummary())
    assert all(r.passed for r in checks.evaluate(empty, pa.table({"id": pa.array([], pa.int64())}), KEY))


def test_cost_check_prints_small_amounts_readably() -> None:
    checks = SutroChecks(max_cost_usd=1e-7)
    results = {r.check_name: r for r in checks.evaluate(manifest(cost_usd=1.5e-7), pa.table({"id": [1, 2, 3, 4]}), KEY)}
    assert results["sutro_cost"].description == "the run cost $0.00000015, above $0.0000001"


def test_check_specs_and_validation() -> None:
    assert [s.name for s in SutroChecks().specs(KEY)] == ["sutro_row_parity"]
    assert SutroChecks(max_cost_usd=1).specs(KEY)[1].blocking is False
    with pytest.raises(ValueError):
        SutroChecks(max_low_confidence_share=1.5)
    assert label_distribution_markdown({}) == "| label | rows | share |\n|---|---:|---:|"


def test_lineage_without_a_published_spec() -> None:
    """A deployment that publishes no spec: the output fields are only known from the
    table; the source's columns tell them apart from the kept ones."""
    from dagster_sutro.metadata import EnrichedColumns, column_metadata

    upstream = dg.AssetKey(["sales", "leads"])
    columns = EnrichedColumns("lead-extractor", None, ("message",), upstream, frozenset({"lead_id", "message"}))
    table = pa.table({"lead_id": ["L-1"], "message": ["hi"], "company": ["Acme"], "confidence": [0.9],
                      "sutro_skip_reason": pa.array([None], pa.string())})
    md = column_metadata(columns, table)
    lineage = md["dagster/column_lineage"].deps_by_column
    assert [d.column_name for d in lineage["lead_id"]] == ["lead_id"]
    assert [d.column_name for d in lineage["company"]] == ["message"]  # an output field, not a kept column
    assert {d.asset_key for deps in lineage.values() for d in deps} == {upstream}
    described = {c.name: c.description for c in md["dagster/column_schema"].columns}
    assert described["company"] == "Output of the Sutro Function 'lead-extractor'"
    assert described["lead_id"] is None and "confidence" in (described["confidence"] or "")
    # without the upstream asset: descriptions, no lineage
    assert "dagster/column_lineage" not in column_metadata(
        EnrichedColumns("lead-extractor", None, ("message",), None, None), table)


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_sensed_jobs_state_is_written_as_a_materializations(status: JobStatus) -> None:
    """``sutro/state`` has one spelling: the run states of the manifest (lower case),
    for a job seen by the sensor as for a materialization."""
    state = job_metadata(JobRecord(job_id="job-1", status=status, model="ticket-triage"))["sutro/state"]
    assert state == status.value.lower() and state in get_args(RunState)
