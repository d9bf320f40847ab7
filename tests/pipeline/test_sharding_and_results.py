"""Sharding by max_rows_per_job and quota, results integrity, the cost guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.errors import SutroCostLimitError, SutroInputError, SutroResultsError
from sutro_providers.identity import RunIdentity
from tests.pipeline.conftest import options, tickets


def test_100k_rows_in_4_shards_keep_input_order(pipeline: Any, sutro_clean: Any) -> None:
    rows = pa.Table.from_pylist(tickets(100_000, seed=3))
    result = pipeline.run(rows, RunIdentity.of("test", case="shards"), options(max_rows_per_job=30_000))
    assert len(result.manifest.job_ids) == 4
    assert [s.rows for s in result.manifest.shards] == [30_000, 30_000, 30_000, 10_000]
    assert sutro_clean.admin.job_count() == 4
    assert result.table.num_rows == 100_000
    assert result.table["ticket_id"].equals(rows["ticket_id"])
    assert result.table["label"].null_count == 0


def _tamper_results(data_dir: Path, job_id: str, change: Any) -> None:
    path = data_dir / "jobs" / job_id / "results.parquet"
    pq.write_table(change(pq.read_table(path)), path)


@pytest.mark.parametrize("case", ["missing", "duplicated"])
def test_results_with_bad_row_ids_fail_and_write_nothing(
    pipeline: Any, sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str, case: str
) -> None:
    identity = RunIdentity.of("test", case=f"ids-{case}")
    out = f"s3://{sutro_s3_bucket}/out/{case}.parquet"
    opts = options(output_uri=out, output_storage_options=sutro_s3_server.storage_options)
    manifest = pipeline.submit(tickets(50), identity, opts)
    assert pipeline.wait(identity, opts).outcome == "success"
    job_id = manifest.job_ids[0]
    if case == "missing":
        _tamper_results(sutro_clean.data_dir, job_id, lambda t: t.slice(0, 49))
    else:
        _tamper_results(sutro_clean.data_dir, job_id, lambda t: pa.concat_tables([t, t.slice(7, 1)]))
    with pytest.raises(SutroResultsError, match=job_id) as err:
        pipeline.collect(identity, opts)
    assert ("49" in str(err.value)) if case == "missing" else ("7" in str(err.value))
    assert not sutro_s3_server.filesystem().exists(out)


def test_max_cost_below_estimate_refuses_to_submit(pipeline: Any, sutro_clean: Any) -> None:
    with pytest.raises(SutroCostLimitError, match="max_cost_usd"):
        pipeline.run(tickets(500), RunIdentity.of("test", case="cost"), options(max_cost_usd=0.0))
    jobs = sutro_clean.admin.stats()["jobs"]
    assert jobs["total"] == 1  # only the (free) estimate job
    client_jobs = pipeline.client.list_jobs().jobs
    assert [j.run_type for j in client_jobs] == ["COST_ESTIMATE"]


def test_max_cost_above_estimate_runs(pipeline: Any, sutro_clean: Any) -> None:
    result = pipeline.run(tickets(100), RunIdentity.of("test", case="cost-ok"), options(max_cost_usd=100.0))
    assert result.manifest.cost_estimate_usd is not None and result.manifest.cost_estimate_usd > 0
    assert result.manifest.cost_usd is not None and result.manifest.cost_usd > 0
    assert sutro_clean.admin.job_count() == 2


def test_invalid_rows_fail_before_any_job(pipeline: Any, sutro_clean: Any) -> None:
    rows = tickets(30)
    rows[12]["body"] = None
    with pytest.raises(SutroInputError, match="body") as err:
        pipeline.run(rows, RunIdentity.of("test", case="invalid"), options())
    assert "12" in str(err.value)
    assert sutro_clean.admin.job_count() == 0


def test_invalid_rows_skipped_come_back_with_a_reason(pipeline: Any) -> None:
    rows = tickets(30)
    rows[12]["body"] = None
    result = pipeline.run(rows, RunIdentity.of("test", case="skip"), options(on_invalid_rows="skip"))
    table = result.table
    assert table.num_rows == 30 and result.manifest.rows_skipped == 1
    assert table["label"][12].as_py() is None and table["sutro_skip_reason"][12].as_py()
    assert table["label"].null_count == 1


def test_unknown_function_is_an_error_before_any_job(pipeline: Any, sutro_clean: Any) -> None:
    with pytest.raises(SutroInputError, match="no-such-fn"):
        pipeline.run(tickets(3), RunIdentity.of("test", case="unknown"), options(function="no-such-fn"))
    assert sutro_clean.admin.job_count() == 0


def test_results_download_retries_a_5xx_with_a_fresh_url(pipeline: Any, sutro_clean: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "presigned", "status": 503, "count": 2}])
    result = pipeline.run(tickets(40), RunIdentity.of("test", case="presigned-503"), options())
    assert result.manifest.rows_out == 40
    stats = sutro_clean.admin.stats()
    assert stats["faults_injected"].get("status") == 2
    assert stats["requests"].get("results-url", 0) >= 2  # a new signed URL per attempt


def test_results_fall_back_to_job_results_without_a_results_artifact(pipeline: Any, sutro_clean: Any) -> None:
    """A deployment without ``results-url`` (404): each shard's results come from the
    ``job-results`` JSON columns, written to Parquet locally, with the same outcome."""
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "results-url", "status": 404}])
    rows = tickets(60)
    result = pipeline.run(rows, RunIdentity.of("test", case="no-results-url"), options(max_rows_per_job=25))
    stats = sutro_clean.admin.stats()
    assert stats["requests"].get("job-results", 0) == 3 and stats["faults_injected"].get("status", 0) >= 3
    assert result.manifest.rows_out == 60 and result.table["label"].null_count == 0
    assert result.table["ticket_id"].to_pylist() == [r["ticket_id"] for r in rows]
