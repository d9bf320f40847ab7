"""The estimate-only step and the non-blocking estimate wait of the run driver."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sutro_providers.identity import RunIdentity
from sutro_providers.pipeline import EnrichmentPipeline
from tests.pipeline.conftest import options

ROWS = [{"subject": f"Ticket {i}", "body": f"Body number {i}", "customer_tier": "pro"} for i in range(6)]
pytestmark = pytest.mark.timeout(120)


def run_types(pipeline: EnrichmentPipeline) -> list[str | None]:
    return [j.run_type for j in pipeline.client.iter_jobs()]


def test_estimate_runs_no_job_and_a_later_submit_reuses_it(pipeline: EnrichmentPipeline, sutro_clean: Any) -> None:
    identity = RunIdentity.of("test", case="estimate")
    estimated = pipeline.estimate(ROWS, identity, options(max_rows_per_job=4))
    assert estimated.state == "estimated" and estimated.job_ids == []
    assert estimated.cost_estimate_usd is not None and estimated.cost_estimate_usd > 0
    assert len(estimated.estimate_job_ids) == 2  # one per shard
    assert run_types(pipeline) == ["COST_ESTIMATE", "COST_ESTIMATE"]
    again = pipeline.estimate(ROWS, identity, options(max_rows_per_job=4))  # idempotent: no new estimate job
    assert again.cost_estimate_usd == estimated.cost_estimate_usd and sutro_clean.admin.job_count() == 2
    submitted = pipeline.submit(ROWS, identity, options(max_rows_per_job=4, max_cost_usd=100.0))
    assert submitted.state == "submitted" and len(submitted.job_ids) == 2
    assert sutro_clean.admin.job_count() == 4  # the estimate was reused, not run again


def test_submit_without_blocking_on_the_estimate(pipeline: EnrichmentPipeline, sutro_clean: Any) -> None:
    identity = RunIdentity.of("test", case="pending")
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    pending = pipeline.submit(ROWS, identity, options(max_cost_usd=100.0), wait_for_estimate=False)
    assert pending.state == "estimating" and pending.job_ids == [] and len(pending.estimate_job_ids) == 1
    assert run_types(pipeline) == ["COST_ESTIMATE"]
    still = pipeline.submit(ROWS, identity, options(max_cost_usd=100.0), wait_for_estimate=False)
    assert still.state == "estimating" and still.estimate_job_ids == pending.estimate_job_ids  # not created twice
    sutro_clean.admin.release(pending.estimate_job_ids[0])
    deadline = time.time() + 30
    while pipeline.client.job_status(pending.estimate_job_ids[0]) != "SUCCEEDED" and time.time() < deadline:
        time.sleep(0.2)
    done = pipeline.submit(ROWS, identity, options(max_cost_usd=100.0), wait_for_estimate=False)
    assert done.state == "submitted" and len(done.job_ids) == 1 and done.cost_estimate_usd is not None
    assert sutro_clean.admin.job_count() == 2
