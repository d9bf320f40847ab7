"""N attempts of one run identity started at once, each in its own process, against
the local Sutro server and moto's S3: one job per shard on the server, and every
attempt returns the complete table or a clear error (never a partial or stale one)."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

ROWS = [{"ticket_id": f"t{i:04d}", "subject": f"Subject {i}", "body": f"Body of ticket {i}.",
         "customer_tier": "pro"} for i in range(240)]
SHARDS = 3


def _attempt(url: str, key: str, storage: dict[str, Any], bucket: str, case: str, mode: str, barrier: Any,
             queue: Any) -> None:
    from sutro_providers import SutroClient
    from sutro_providers.errors import SutroError
    from sutro_providers.identity import RunIdentity
    from sutro_providers.options import EnrichmentOptions, StagingLocation
    from sutro_providers.pipeline import EnrichmentPipeline

    with SutroClient(url, key) as client:
        pipeline = EnrichmentPipeline(client, StagingLocation(url=f"s3://{bucket}/sutro", storage_options=storage))
        options = EnrichmentOptions(function="ticket-triage", id_column="ticket_id", max_rows_per_job=len(ROWS) // SHARDS,
                                    poll_interval=0.2, max_poll_interval=0.5, timeout=240,
                                    on_concurrent_attempt=mode)
        barrier.wait(120)
        try:
            result = pipeline.run(ROWS, RunIdentity.of("concurrent", case=case), options)
        except SutroError as exc:
            queue.put(("error", f"{type(exc).__name__}: {exc}"))
            return
        table = result.table
        queue.put(("ok", table["ticket_id"].to_pylist() if table is not None else None,
                   table["label"].null_count if table is not None else None, result.manifest.job_ids))


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("attempts", "mode"), [(2, "wait"), (4, "wait"), (8, "wait"), (4, "fail")])
def test_overlapping_attempts_create_one_job_per_shard(
    attempts: int, mode: str, sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str
) -> None:
    """``wait``: the attempts that find a shard claimed wait for its job and reattach;
    ``fail``: they stop at once with an error naming the other attempt. Either way one
    job per shard, and at least one attempt returns the whole table."""
    # Fresh processes, each forked from a forkserver that imported the pipeline once (per
    # xdist worker, shared by the 4 cases): not 18 interpreters importing pyarrow and s3fs
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["sutro_providers.pipeline", __name__])
    queue, barrier = ctx.Queue(), ctx.Barrier(attempts)
    args = (sutro_clean.url, sutro_clean.api_key, sutro_s3_server.storage_options, sutro_s3_bucket,
            f"n{attempts}-{mode}", mode)
    procs = [ctx.Process(target=_attempt, args=(*args, barrier, queue)) for _ in range(attempts)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=540) for _ in procs]
    for p in procs:
        p.join(60)
    assert sutro_clean.admin.job_count() == SHARDS, outcomes  # one paid job per shard, whoever created it
    expected = [r["ticket_id"] for r in ROWS]
    succeeded = [o for o in outcomes if o[0] == "ok"]
    for _, ids, null_labels, job_ids in succeeded:
        assert ids == expected and null_labels == 0  # complete, in input order
        assert sorted(job_ids) == sorted(succeeded[0][3])  # all on the same jobs
    for outcome in outcomes:
        if outcome[0] == "error":  # allowed, but it must say what happened
            assert "attempt" in outcome[1], outcome
    assert succeeded, outcomes
