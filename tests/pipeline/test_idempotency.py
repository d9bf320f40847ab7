"""A failure at each step of a run, followed by a retry of the whole run, leaves
exactly one job per shard on the server and a complete, correct output."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq
import pytest

from sutro_providers.errors import SutroLedgerConflictError, SutroSubmissionOutcomeUnknownError
from sutro_providers.identity import RunIdentity
from sutro_providers.submission.ledger import Ledger
from tests.pipeline.conftest import options, tickets

ROWS = tickets(200)


class Crash(Exception):
    """Stands for the worker dying at a chosen point."""


def _crash_when(monkeypatch: pytest.MonkeyPatch, state: str, *, after_write: bool) -> None:
    original = Ledger.mark

    def mark(self: Ledger, record: Any, index: int, new_state: Any, **changes: Any) -> None:
        if new_state == state and not after_write:
            raise Crash(f"died before recording {state}")
        original(self, record, index, new_state, **changes)
        if new_state == state and after_write:
            raise Crash(f"died after recording {state}")

    monkeypatch.setattr(Ledger, "mark", mark)


def _check_output(result: Any) -> None:
    assert result.manifest.rows_out == len(ROWS)
    assert result.table["ticket_id"].to_pylist() == [r["ticket_id"] for r in ROWS]
    assert result.table["label"].null_count == 0


@pytest.mark.parametrize("after_write", [False, True], ids=["before-ledger-write", "after-ledger-write"])
def test_crash_around_submit_then_retry_gives_one_job(
    pipeline: Any, sutro_clean: Any, monkeypatch: pytest.MonkeyPatch, after_write: bool
) -> None:
    identity = RunIdentity.airflow("dag", "enrich", "manual__1", -1)
    with monkeypatch.context() as patch:
        _crash_when(patch, "submitted", after_write=after_write)
        with pytest.raises(Crash):
            pipeline.run(ROWS, identity, options())
    assert sutro_clean.admin.job_count() == 1  # the paid call happened before the crash
    result = pipeline.run(ROWS, identity, options())
    assert sutro_clean.admin.job_count() == 1
    _check_output(result)
    assert result.manifest.job_ids == [j.job_id for j in pipeline.client.list_jobs().jobs]


def test_crash_after_collect_is_a_noop_retry(pipeline: Any, sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    identity = RunIdentity.airflow("dag", "enrich", "manual__2", 3)
    out = f"s3://{sutro_s3_bucket}/out/enriched.parquet"
    opts = options(output_uri=out, output_storage_options=sutro_s3_server.storage_options)
    first = pipeline.run(ROWS, identity, opts)
    again = pipeline.submit(ROWS, identity, opts)
    assert again.state == "succeeded" and again.job_ids == first.manifest.job_ids
    assert sutro_clean.admin.job_count() == 1
    with sutro_s3_server.filesystem().open(out, "rb") as handle:
        assert pq.read_table(handle).num_rows == len(ROWS)
    # the staged snapshot is gone (the output stands in for it); collecting again reads the output
    stage_id = pipeline._ledger(identity).load().stage_id
    assert stage_id  # the files were staged in a folder of their own
    assert not pipeline.area.exists(pipeline.area.source_path(identity, stage_id))
    assert pipeline.area.shard_paths(identity, stage_id) == []
    again_result = pipeline.collect(identity, opts)
    assert again_result.table.num_rows == len(ROWS) and again_result.manifest.job_ids == first.manifest.job_ids
    assert sutro_clean.admin.job_count() == 1


def test_outcome_unknown_submission_is_reconciled_not_resubmitted(pipeline: Any, sutro_clean: Any) -> None:
    # The server creates the job and then answers 524: the client cannot know.
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "batch-inference", "status": 524, "count": 1, "phase": "after"}])
    result = pipeline.run(ROWS, RunIdentity.of("test", case="524-after"), options())
    _check_output(result)
    assert sutro_clean.admin.job_count() == 1


def test_outcome_unknown_without_a_job_raises_then_retry_submits_once(pipeline: Any, sutro_clean: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sutro_providers.submission.submitter.RECONCILE_PAUSE", 0.01)
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "batch-inference", "status": 524, "count": 1, "phase": "before"}])
    identity = RunIdentity.of("test", case="524-before")
    with pytest.raises(SutroSubmissionOutcomeUnknownError):
        pipeline.run(ROWS, identity, options())
    assert sutro_clean.admin.job_count() == 0
    _check_output(pipeline.run(ROWS, identity, options()))
    assert sutro_clean.admin.job_count() == 1


def test_failed_job_is_resubmitted_on_retry(pipeline: Any, sutro_clean: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "GPU node lost"}])
    identity = RunIdentity.of("test", case="failed-then-retry")
    with pytest.raises(Exception, match="GPU node lost"):
        pipeline.run(ROWS, identity, options())
    _check_output(pipeline.run(ROWS, identity, options()))
    assert sutro_clean.admin.job_count() == 2
    assert sutro_clean.admin.stats()["jobs"]["by_status"] == {"FAILED": 1, "SUCCEEDED": 1}


def test_changed_input_fails_by_default_and_resubmits_when_asked(pipeline: Any, sutro_clean: Any) -> None:
    identity = RunIdentity.of("test", case="changed-input")
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    manifest = pipeline.submit(ROWS, identity, options())
    changed = [dict(r, body=r["body"] + " urgent") for r in ROWS]
    with pytest.raises(SutroLedgerConflictError, match="changed"):
        pipeline.submit(changed, identity, options())
    result = pipeline.run(changed, identity, options(on_input_change="resubmit"))
    assert result.manifest.job_ids != manifest.job_ids
    assert sutro_clean.admin.stats()["jobs"]["by_status"].get("CANCELLED") == 1
    assert result.table["body"].to_pylist() == [r["body"] for r in changed]
