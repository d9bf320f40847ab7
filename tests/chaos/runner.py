"""Run the chaos plan and check every outcome.

Runs go through a thread pool (``concurrency`` at once) while the main thread
restarts the server every ``restart_every`` finished runs (with runs in flight).
After each run:

* succeeded: the Parquet at ``output_uri`` holds exactly the source rows, once
  each, in source order, every row with a label (lost/duplicated/out-of-order
  rows and missing labels are counted);
* failed after all tries: the error is one of the package's (clear, with a
  message) and nothing exists at ``output_uri``;
* an incremental run: every row's results equal those its content (every column of
  the row) got wherever it landed before: a reused result of another row, or of
  another version of the row, is a mismatch.

At the end every job on the server is listed: more than one SUCCEEDED job for
the same shard of a run is a duplicate job; two jobs with one name a double
submit; a FAILED job followed by a resubmission is counted separately.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sutro_providers.columns import REUSED
from tests.chaos.config import PATHS, ChaosConfig, RunSpec, plan_runs
from tests.chaos.drivers import DRIVERS, Outcome
from tests.chaos.env import ChaosEnv
from tests.chaos.overlap import CONFLICTS, OVERLAP_DRIVERS
from tests.chaos.report import ChaosReport, RunCheck

log = logging.getLogger("tests.chaos")
SHARD_NAME = re.compile(r"^(sp-[0-9a-f]+-s\d{4})-a(\d{3})$")


def available_paths(wanted: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The paths whose adapter imports here, and why the others were left out."""
    missing: dict[str, str] = {}
    modules = {"airflow": "airflow_provider.operators.batch", "dagster": "dagster_sutro"}
    for path in wanted:
        if path not in PATHS:
            raise ValueError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
        if path in modules:
            try:
                __import__(modules[path])
            except ImportError as exc:
                missing[path] = f"{type(exc).__name__}: {exc}"
    return tuple(p for p in wanted if p not in missing), missing


def check_run(env: ChaosEnv, spec: RunSpec, outcome: Outcome) -> RunCheck:
    fs = env.s3_server.filesystem()
    path = env.output_uri(spec).removeprefix("s3://")
    check = RunCheck(index=spec.index, path=spec.path, rows=len(spec.rows), ok=outcome.ok,
                     attempts=outcome.attempts, errors=outcome.errors, final_error=outcome.final_error,
                     clear_error=outcome.clear_error, streams_dropped=outcome.streams_dropped,
                     trigger_restarts=outcome.trigger_restarts, incremental=spec.incremental)
    check.faults = dict(outcome.faults)
    check_attempt_replies(check, spec, outcome.parallel)
    exists = fs.exists(path)
    if not outcome.ok:
        check.partial_output = bool(exists)
        return check
    if not exists:
        check.lost_rows = len(spec.rows)
        return check
    with fs.open(path, "rb") as handle:
        table = pq.read_table(handle)
    got = table["ticket_id"].to_pylist()
    want = spec.ids
    check.lost_rows = len(set(want) - set(got))
    check.duplicated_rows = len(got) - len(set(got))
    check.extra_rows = len(set(got) - set(want))
    check.out_of_order = got != want and not check.lost_rows and not check.duplicated_rows
    check.unlabelled_rows = table["label"].null_count if "label" in table.column_names else len(got)
    if spec.incremental:
        check.rows_reused, check.mismatched_results = compare_results(env.results, spec, table)
    return check


def compare_results(known: dict[tuple[Any, ...], tuple[Any, ...]], spec: RunSpec,
                    table: pa.Table) -> tuple[int, int]:
    """(rows reused, rows whose results differ from those their content landed with
    before); the results of contents not seen before are kept for later runs."""
    fields = sorted(spec.rows[0])
    results = [c for c in table.column_names if c not in fields and not c.startswith(("sutro_", "__"))]
    mismatched = 0
    rows = table.select(fields).to_pylist()
    values = zip(*(table[c].to_pylist() for c in results), strict=True)
    for row, value in zip(rows, values, strict=True):
        mismatched += known.setdefault(tuple(row[f] for f in fields), value) != value
    reused = sum(table[REUSED].to_pylist()) if REUSED in table.column_names else 0
    return reused, mismatched


def check_attempt_replies(check: RunCheck, spec: RunSpec, replies: list[dict[str, Any]]) -> None:
    """Each attempt that ran in a process of its own returned the complete table, in
    order and labelled, or a clear error (one of the package's, with a message)."""
    want = spec.ids
    for reply in replies:
        if not reply.get("ok"):
            check.attempt_errors += 1
            check.unclear_attempt_errors += bool(reply.get("unclear")) or len(str(reply.get("error", "")).strip()) < 10
            continue
        got = reply["ids"]
        check.lost_rows += len(set(want) - set(got))
        check.duplicated_rows += len(got) - len(set(got))
        check.extra_rows += len(set(got) - set(want))
        check.out_of_order = check.out_of_order or (got != want and set(got) == set(want) and len(got) == len(want))
        check.unlabelled_rows += reply["null_labels"]


def job_audit(env: ChaosEnv) -> dict[str, int]:
    """Duplicate jobs, double submits and resubmissions after FAILED, over every job."""
    with env.client() as client:
        jobs = [j for j in client.iter_jobs() if j.name]
    per_name = Counter(j.name for j in jobs)
    succeeded: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for job in jobs:
        match = SHARD_NAME.match(job.name or "")
        if match is None:
            continue
        if job.status.value == "SUCCEEDED":
            succeeded[match.group(1)] += 1
        elif job.status.value == "FAILED":
            failed[match.group(1)] += 1
    return {
        "jobs_named": len(jobs),
        "duplicate_jobs": sum(n - 1 for n in succeeded.values() if n > 1),
        "double_submits": sum(n - 1 for n in per_name.values() if n > 1),
        "failed_then_resubmitted": sum(n for shard, n in failed.items() if succeeded[shard]),
        "shards_never_succeeded": sum(1 for shard in failed if not succeeded[shard]),
    }


class ChaosRunner:
    """Plan, run, check and report (see the module docstring)."""

    def __init__(self, config: ChaosConfig, env: ChaosEnv) -> None:
        self.config = config
        self.env = env

    def run(self) -> ChaosReport:
        paths, missing = available_paths(self.config.paths)
        if not paths:
            raise RuntimeError(f"no run path is available: {missing}")
        specs = plan_runs(self.config, paths)
        started = time.monotonic()
        conflicts_before = CONFLICTS.seen
        checks: list[RunCheck] = []
        next_restart = self.config.restart_every or None
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="chaos") as pool:
            pending: dict[Future[Outcome], RunSpec] = {}
            queue = list(specs)
            while queue or pending:
                while queue and len(pending) < self.config.concurrency:
                    spec = queue.pop(0)
                    if spec.not_ready:
                        self.env.add_not_ready()
                    driver = OVERLAP_DRIVERS[spec.fault] if spec.fault else DRIVERS[spec.path]
                    pending[pool.submit(driver, self.env, spec)] = spec
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    spec = pending.pop(future)
                    checks.append(check_run(self.env, spec, future.result()))
                    log.info("run %d (%s): %s", spec.index, spec.path, "ok" if checks[-1].ok else checks[-1].final_error)
                if next_restart and len(checks) >= next_restart and pending:
                    time.sleep(0.3)  # let the runs in flight get to their jobs
                    log.warning("restarting the local Sutro server with %d run(s) in flight", len(pending))
                    self.env.restart_server()
                    next_restart += self.config.restart_every
        injected, jobs = self.env.final_counts()
        conflicts_seen = CONFLICTS.seen - conflicts_before
        return ChaosReport.build(self.config, paths, missing, checks, dict(injected), jobs, job_audit(self.env),
                                 self.env.restarts, time.monotonic() - started, conflicts_seen)


def run_chaos(config: ChaosConfig, server: Any = None, s3: Any = None) -> ChaosReport:
    """Start (or borrow) the servers, run the chaos plan, stop what was started."""
    env = ChaosEnv(config, server=server, s3=s3).start()
    try:
        return ChaosRunner(config, env).run()
    finally:
        env.stop()
