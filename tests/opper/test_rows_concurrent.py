"""Two attempts of one Opper run at the same time (a "dead" worker that is not, a run
re-executed twice at once) never both pay for a row: the run record is written only
conditionally and one attempt at a time holds the claim on calling. And a completed
run is reused only for the input it ran on."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sutro_providers.errors import SutroConcurrentAttemptError, SutroLedgerConflictError
from sutro_providers.identity import RunIdentity
from sutro_providers.opper_rows import OpperRowPipeline
from sutro_providers.pipeline import EnrichmentResult
from tests.opper.opper_harness import OpperServer
from tests.opper.test_rows import calls, make, options, tickets

ROWS = 60


def rows_called(opper: OpperServer) -> Counter[str]:
    return Counter(c["tags"]["sutro.row"] for c in calls(opper))


def in_thread(target: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def body() -> None:
        try:
            out["result"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    return thread, out


def staged_together(pipelines: list[OpperRowPipeline]) -> None:
    """Both first attempts stage before either writes the run record (the race the
    conditional create decides)."""
    barrier = threading.Barrier(len(pipelines), timeout=30)
    for pipeline in pipelines:
        stage = pipeline.area.stage

        def staged(*args: Any, _stage: Any = stage, **kwargs: Any) -> Any:
            result = _stage(*args, **kwargs)
            if kwargs.get("write", True):
                barrier.wait()
            return result
        pipeline.area.stage = staged  # type: ignore[method-assign]


def test_two_overlapping_first_attempts_call_each_row_once(opper: OpperServer, tmp_path: Path) -> None:
    opper.emulator.faults.set([{"kind": "latency", "endpoint": "opper-call-revision", "latency_ms": 20}])
    identity = RunIdentity.dagster("support/tickets_triaged", "2026-11-20", "run-1")
    first, second = make(opper, tmp_path), make(opper, tmp_path)  # two attempts: two holders, one staging store
    staged_together([first, second])
    opts = options(concurrency=4)
    threads = [in_thread(p.run, tickets(ROWS), identity, opts) for p in (first, second)]
    for thread, _ in threads:
        thread.join(timeout=120)
    outs = [out for _, out in threads]
    assert all("error" not in out for out in outs), outs
    called = rows_called(opper)
    assert len(called) == ROWS and set(called.values()) == {1}, called.most_common(3)  # nobody paid twice
    results: list[EnrichmentResult] = [out["result"] for out in outs]
    assert results[0].manifest == results[1].manifest and results[0].manifest.rows_out == ROWS
    assert results[0].table is not None and results[1].table is not None
    assert results[0].table.equals(results[1].table)
    record = first.load(identity)
    assert record is not None and record.phase == "completed" and record.holder is None
    folders = [p for p in Path(first.area.run_prefix(identity)).iterdir() if p.name.startswith("stage-")]
    assert [p.name for p in folders if any(p.glob("*.parquet"))] == [record.stage_id]  # the loser's staging went


def test_a_second_attempt_fails_fast_while_the_first_calls(opper: OpperServer, tmp_path: Path) -> None:
    opper.emulator.faults.set([{"kind": "latency", "endpoint": "opper-call-revision", "latency_ms": 30}])
    identity = RunIdentity.of("script", n="concurrent-fail")
    first, second = make(opper, tmp_path), make(opper, tmp_path)
    thread, out = in_thread(first.run, tickets(ROWS), identity, options(concurrency=2))
    while len(calls(opper)) < 5:
        assert thread.is_alive(), out
        threading.Event().wait(0.01)
    with pytest.raises(SutroConcurrentAttemptError, match="calling its rows"):
        second.run(tickets(ROWS), identity, options(concurrency=2, on_concurrent_attempt="fail"))
    # "wait" (the default) waits for the first and returns its result without a call
    waited = second.run(tickets(ROWS), identity, options(concurrency=2))
    thread.join(timeout=120)
    assert "error" not in out, out
    assert waited.manifest == out["result"].manifest
    called = rows_called(opper)
    assert len(called) == ROWS and set(called.values()) == {1}


def test_a_completed_run_is_reused_only_for_its_input(opper: OpperServer, tmp_path: Path) -> None:
    pipeline, identity = make(opper, tmp_path), RunIdentity.of("script", n="completed-input")
    done = pipeline.run(tickets(5), identity, options())
    again = make(opper, tmp_path).run(tickets(5), identity, options())  # the same input: no call
    assert len(calls(opper)) == 5 and again.manifest == done.manifest
    changed = tickets(5).set_column(1, "subject", tickets(5)["body"])  # same rows, other text
    with pytest.raises(SutroLedgerConflictError, match="completed run"):
        make(opper, tmp_path).run(changed, identity, options())
    assert len(calls(opper)) == 5  # refused before any call
    fresh = make(opper, tmp_path).run(changed, identity, options(on_input_change="resubmit"))
    assert fresh.table is not None and fresh.table["subject"].to_pylist() == changed["subject"].to_pylist()
    assert len(calls(opper)) == 10 and fresh.manifest.run_key == done.manifest.run_key
    assert fresh.manifest.usage_by_model["openai/gpt-4o-mini"].calls == 5  # the old answers were discarded
    record = pipeline.load(identity)
    assert record is not None and record.phase == "completed" and record.holder is None


def test_the_claim_is_renewed_while_calling(opper: OpperServer, tmp_path: Path) -> None:
    """A run that calls for longer than its lease keeps its claim (renewed every third
    of the lease): a second attempt well after the first lease would have ended is
    still kept out."""
    opper.emulator.faults.set([{"kind": "latency", "endpoint": "opper-call-revision", "latency_ms": 60}])
    identity = RunIdentity.of("script", n="renewed")
    lease = {"claim_lease_seconds": 0.6, "concurrency": 1}  # the first attempt calls for >= 3.6 s
    first, second = make(opper, tmp_path), make(opper, tmp_path)
    thread, out = in_thread(first.run, tickets(ROWS), identity, options(**lease))
    while len(calls(opper)) < 3:
        assert thread.is_alive(), out
        threading.Event().wait(0.01)
    threading.Event().wait(1.0)  # beyond the first lease
    assert thread.is_alive(), "the first attempt ended too early for this test"
    with pytest.raises(SutroConcurrentAttemptError):
        second.run(tickets(ROWS), identity, options(**lease, on_concurrent_attempt="fail"))
    thread.join(timeout=120)
    assert "error" not in out, out
    called = rows_called(opper)
    assert len(called) == ROWS and set(called.values()) == {1}
