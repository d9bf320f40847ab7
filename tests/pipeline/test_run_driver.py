"""EnrichmentPipeline.run: the one driver the adapters call (its hooks, its shortcuts,
its errors)."""

from __future__ import annotations

from typing import Any

import pytest

from sutro_providers.errors import SutroJobFailedError
from sutro_providers.identity import RunIdentity
from sutro_providers.manifest import Manifest
from tests.pipeline.conftest import options, tickets


def test_on_submitted_sees_the_jobs_before_the_wait(pipeline: Any, sutro_clean: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    seen: list[Manifest] = []

    def submitted(manifest: Manifest) -> None:
        seen.append(manifest)
        assert pipeline.client.get_job(manifest.job_ids[0]).status.value != "SUCCEEDED"  # held: not waited for yet
        sutro_clean.admin.release(manifest.job_ids[0])

    progress: list[str] = []
    result = pipeline.run(tickets(20), RunIdentity.of("test", case="hooks"), options(), on_submitted=submitted,
                          on_progress=lambda p: progress.append(p.status.value))
    assert [m.state for m in seen] == ["submitted"] and seen[0].job_ids == result.manifest.job_ids
    assert progress[-1] == "SUCCEEDED"
    assert result.manifest.rows_out == 20 and result.table is not None and result.table.num_rows == 20


def test_empty_input_returns_without_a_job(pipeline: Any, sutro_clean: Any) -> None:
    seen: list[Manifest] = []
    result = pipeline.run([], RunIdentity.of("test", case="empty-run"), options(), on_submitted=seen.append)
    assert result.manifest.state == "noop"
    assert result.table is not None and result.table.num_rows == 0 and "label" in result.table.column_names
    assert [m.state for m in seen] == ["noop"] and sutro_clean.admin.job_count() == 0


def test_every_row_skipped_still_lands_the_rows(pipeline: Any, sutro_clean: Any) -> None:
    rows = tickets(5)
    for row in rows:
        row["body"] = None
    result = pipeline.run(rows, RunIdentity.of("test", case="all-skipped"), options(on_invalid_rows="skip"))
    assert sutro_clean.admin.job_count() == 0
    assert result.manifest.rows_skipped == 5 and result.table is not None and result.table.num_rows == 5
    assert result.table["sutro_skip_reason"].null_count == 0


def test_a_completed_run_skips_the_wait_and_the_collect(pipeline: Any, sutro_clean: Any) -> None:
    identity = RunIdentity.of("test", case="again")
    first = pipeline.run(tickets(10), identity, options())
    requests = dict(sutro_clean.admin.stats()["requests"])
    assert requests.get("jobs", 0) > 0 and requests.get("results-url", 0) > 0  # the first run polled and downloaded
    again = pipeline.run(tickets(10), identity, options(), materialize=False)
    assert again.table is None and again.manifest.state == "succeeded"
    assert again.manifest.job_ids == first.manifest.job_ids
    after = sutro_clean.admin.stats()["requests"]
    for route in ("jobs", "results-url"):  # neither polled nor downloaded again
        assert after.get(route, 0) == requests.get(route, 0), route


def test_a_failed_job_raises_the_core_error_with_its_statuses(pipeline: Any, sutro_clean: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "GPU on fire"}])
    with pytest.raises(SutroJobFailedError, match="GPU on fire") as info:
        pipeline.run(tickets(5), RunIdentity.of("test", case="fails"), options())
    (job_id,) = info.value.job_ids
    assert info.value.statuses == {job_id: "FAILED"} and info.value.job_id == job_id
