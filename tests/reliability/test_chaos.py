"""The chaos suite in small (the full one: ``python -m tests.chaos --runs 200 --seed 1``),
and checks that its invariant checks do catch lost, duplicated and double-paid rows."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.columns import REUSED
from tests.chaos import ChaosConfig, run_chaos
from tests.chaos.config import plan_runs
from tests.chaos.drivers import Outcome
from tests.chaos.env import ChaosEnv
from tests.chaos.runner import check_run, job_audit

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


def test_small_chaos_run_keeps_every_invariant(sutro_s3_server: Any) -> None:
    config = ChaosConfig(runs=8, seed=5, concurrency=2, restart_every=4, min_rows=10, max_rows=60,
                         not_ready_every=3, read_fault_rate=0.15)
    report = run_chaos(config, s3=sutro_s3_server)  # ~40-55 s of runs; no wall-clock assert on a shared machine
    print(report.to_text())
    assert report.runs == 8 and set(report.runs_by_path) == {"core", "realtime", "airflow", "dagster"}
    assert report.server_restarts == 1 and report.trigger_restarts >= 1
    assert sum(report.faults_injected.values()) > 0 and report.faults_injected.get("results_not_ready", 0) > 0
    assert report.duplicate_jobs == 0 and report.double_submits == 0
    assert report.lost_rows == 0 and report.duplicated_rows == 0 and report.partial_outputs == 0
    assert report.passed, report.to_text()


@pytest.fixture
def env(sutro_clean: Any, sutro_s3_server: Any) -> Any:
    env = ChaosEnv(ChaosConfig(runs=2, paths=("core",), fail_job_rate=0, read_fault_rate=0, incremental_every=0),
                   server=sutro_clean, s3=sutro_s3_server)
    yield env.start()
    env.stop()


def _write(env: Any, spec: Any, ids: list[str]) -> None:
    with env.s3_server.filesystem().open(env.output_uri(spec).removeprefix("s3://"), "wb") as handle:
        pq.write_table(pa.table({"ticket_id": ids, "label": ["bug"] * len(ids)}), handle)


def test_checks_catch_lost_duplicated_and_partial_rows(env: Any) -> None:
    spec = plan_runs(env.config, ("core",))[0]
    ids = spec.ids
    _write(env, spec, ids[:-1] + [ids[0]])  # one row lost, one duplicated
    check = check_run(env, spec, Outcome(ok=True, attempts=1))
    assert (check.lost_rows, check.duplicated_rows) == (1, 1)
    _write(env, spec, list(reversed(ids)))
    assert check_run(env, spec, Outcome(ok=True, attempts=1)).out_of_order
    assert check_run(env, spec, Outcome(ok=False, attempts=4)).partial_output  # a failed run left a file


def test_checks_catch_a_reused_result_of_another_row(env: Any) -> None:
    spec = dataclasses.replace(plan_runs(env.config, ("core",))[0], incremental=True)
    fields = sorted(spec.rows[0])
    labels = [f"label-{i}" for i in range(len(spec.rows))]

    def land(labels: list[str]) -> None:
        with env.s3_server.filesystem().open(env.output_uri(spec).removeprefix("s3://"), "wb") as handle:
            pq.write_table(pa.table({**{f: [r[f] for r in spec.rows] for f in fields}, "label": labels,
                                     REUSED: [True] * len(labels)}), handle)

    land(labels)
    first = check_run(env, spec, Outcome(ok=True, attempts=1))
    assert (first.rows_reused, first.mismatched_results) == (len(labels), 0)
    land(labels[1:2] + labels[1:])  # row 0 got row 1's result
    assert check_run(env, spec, Outcome(ok=True, attempts=1)).mismatched_results == 1


def test_incremental_chaos_runs_reuse_results_and_never_mix_them_up(sutro_s3_server: Any) -> None:
    """Three incremental core runs, one after the other, over one pool of 40 tickets
    (some edited) under the default faults: later runs reuse earlier runs' results,
    and every landed result is the one its content got everywhere else."""
    config = ChaosConfig(runs=3, seed=11, paths=("core",), concurrency=1, restart_every=0, min_rows=20, max_rows=40,
                         overlap_every=0, incremental_every=1, pool_rows=40, not_ready_every=2)
    report = run_chaos(config, s3=sutro_s3_server)
    print(report.to_text())
    assert report.incremental_runs == 3 and report.rows_reused > 0
    assert report.mismatched_results == 0
    assert report.passed, report.to_text()


def test_audit_catches_a_shard_paid_twice(env: Any) -> None:
    with env.client() as client:
        for attempt in (0, 1):  # two SUCCEEDED jobs for shard 0 of one run
            client.create_job(model="ticket-triage", inputs=[{"subject": "a", "body": "b"}],
                              name=f"sp-{'ab' * 10}-s0000-a{attempt:03d}")
        client.create_job(model="ticket-triage", inputs=[{"subject": "a", "body": "b"}], name=f"sp-{'cd' * 10}-s0000-a000")
        client.create_job(model="ticket-triage", inputs=[{"subject": "a", "body": "b"}], name=f"sp-{'cd' * 10}-s0000-a000")
        deadline = time.monotonic() + 30
        while any(not j.status.is_terminal for j in client.list_jobs().jobs) and time.monotonic() < deadline:
            time.sleep(0.1)
    audit = job_audit(env)
    assert audit["duplicate_jobs"] == 2 and audit["double_submits"] == 1


@pytest.mark.timeout(600)  # 3 runs, 5 processes besides this one: slow on a loaded machine
def test_overlap_faults_keep_every_invariant(sutro_s3_server: Any) -> None:
    """One core run each with 3 attempts at once (processes), a zombie (SIGSTOP past its
    claim's lease, SIGCONT after another attempt ran) and a foreign ledger writer."""
    config = ChaosConfig(runs=3, seed=3, paths=("core",), concurrency=3, restart_every=0, min_rows=10, max_rows=60,
                         overlap_every=1, max_parallel=3, not_ready_every=0)
    assert [s.fault for s in plan_runs(config, ("core",))] == ["concurrent", "zombie", "ledger_conflict"]
    report = run_chaos(config, s3=sutro_s3_server)
    print(report.to_text())
    assert report.overlap_faults["concurrent_runs"] == 1 and report.overlap_faults["zombies_paused"] == 1
    assert report.overlap_faults["ledger_foreign_writes"] > 0
    assert report.duplicate_jobs == 0 and report.double_submits == 0
    assert report.passed, report.to_text()
