"""What a chaos run does: how many runs, through which paths, and which faults.

The fault mix (per the reliability issue), as local-server rules
(:mod:`sutro_providers.local.faults`):

* ``read_fault_rate`` of reads (every GET/HEAD, ``job-results`` and pre-signed
  downloads) answered 500, 502, 503 or 524, or dropped without an answer (the
  rate is split evenly over those five faults);
* ``realtime_429_rate`` of real-time Function calls answered 429 with Retry-After;
* ``fail_job_rate`` of created jobs end FAILED;
* every ``not_ready_every``-th run adds a rule making the next 3 results calls
  answer ``results_not_ready`` (409) although the job SUCCEEDED;
* ``stream_drop_rate`` of progress streams end after their first line;
* every ``restart_every``-th finished run restarts the server with jobs in flight;
* every Airflow run's trigger is abandoned mid-wait and re-created from
  ``serialize()`` (a triggerer restart);
* overlapping attempts (:mod:`tests.chaos.overlap`) on one core run in
  ``overlap_every``, the three kinds in turn: ``concurrent``
  (2 to ``max_parallel`` attempts at once, each in its own process), ``zombie``
  (an attempt paused with SIGSTOP past its ``zombie_lease``-second claim, then
  resumed after another attempt ran) and ``ledger_conflict`` (a foreign writer
  rewriting the run's ledger every ``ledger_rewrite_every`` seconds);
* one core run in ``incremental_every`` (at random) is ``incremental=True`` over rows drawn
  from one shared pool of ``pool_rows`` tickets (a tenth of them edited, from a few
  edits, so edited rows recur too): it reuses the results of earlier runs from the
  shared results cache, under the same faults (overlaps included); every result a
  run lands must equal the one its content got in every other run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sutro_providers.identity import RunIdentity

PATHS = ("core", "realtime", "airflow", "dagster")
OVERLAP_FAULTS = ("concurrent", "zombie", "ledger_conflict")
READ_STATUSES = (500, 502, 503, 524)


@dataclass(frozen=True)
class ChaosConfig:
    runs: int = 200
    seed: int = 1
    paths: tuple[str, ...] = PATHS
    concurrency: int = 3
    min_rows: int = 20
    max_rows: int = 240
    max_attempts: int = 4
    read_fault_rate: float = 0.10
    realtime_429_rate: float = 0.05
    retry_after: float = 0.2
    fail_job_rate: float = 0.02
    stream_drop_rate: float = 0.5
    not_ready_every: int = 7
    restart_every: int = 50
    trigger_restart_after: float = 0.05
    function: str = "ticket-triage"
    run_timeout: float = 120.0
    overlap_every: int = 2  # one core run in 2 gets an overlap fault, the faults in turn (0: none)
    max_parallel: int = 8
    zombie_lease: float = 2.0
    ledger_rewrite_every: float = 0.05
    attempt_deadline: float = 1800.0  # an attempt in a process of its own that runs longer is a hung one
    incremental_every: int = 3  # about one core run in 3 is incremental over the shared pool (0: none)
    pool_rows: int = 300

    def fault_rules(self, epoch: int) -> list[dict[str, Any]]:
        """The standing rules; ``epoch`` (bumped on every server restart) re-seeds them."""
        seed = self.seed * 1000 + epoch * 10
        per = self.read_fault_rate / (len(READ_STATUSES) + 1)
        rules: list[dict[str, Any]] = [
            {"kind": "status", "endpoint": "reads", "status": s, "rate": per, "seed": seed + i}
            for i, s in enumerate(READ_STATUSES)
        ]
        rules += [
            {"kind": "drop_connection", "endpoint": "reads", "rate": per, "seed": seed + 5},
            {"kind": "status", "endpoint": "functions-run", "status": 429, "rate": self.realtime_429_rate,
             "retry_after": self.retry_after, "seed": seed + 6},
            {"kind": "fail_job", "endpoint": "batch-inference", "rate": self.fail_job_rate, "seed": seed + 7,
             "message": "chaos: GPU node lost"},
            {"kind": "stream_drop", "endpoint": "stream-job-progress", "rate": self.stream_drop_rate, "seed": seed + 8},
        ]
        return rules

    @staticmethod
    def not_ready_rule() -> dict[str, Any]:
        return {"kind": "results_not_ready", "endpoint": "results-url", "count": 3}


@dataclass
class RunSpec:
    """One logical run: which path, which rows, which options."""

    index: int
    path: str
    rows: list[dict[str, Any]]
    id_column: str | None
    max_rows_per_job: int | None
    not_ready: bool
    fault: str | None = None  # an overlap fault (OVERLAP_FAULTS) or None
    parallel: int = 1  # attempts at once, for ``concurrent``
    incremental: bool = False  # rows from the shared pool, incremental=True
    identity: RunIdentity = field(init=False)

    def __post_init__(self) -> None:
        self.identity = RunIdentity.of("chaos", path=self.path, index=self.index)

    @property
    def ids(self) -> list[str]:
        return [r["ticket_id"] for r in self.rows]


def plan_runs(config: ChaosConfig, paths: tuple[str, ...]) -> list[RunSpec]:
    """A deterministic list of runs for ``config.seed`` over the available ``paths``."""
    from tests.chaos.data import tickets

    rng = random.Random(config.seed)
    overlap = random.Random(config.seed + 1)  # its own stream: the plain runs stay what they were
    pooled = random.Random(config.seed + 2)
    pool = tickets(config.pool_rows, seed=config.seed * 100_000 + 99_999)
    specs = []
    core_runs = 0
    for index in range(config.runs):
        path = paths[index % len(paths)]
        n = rng.randint(config.min_rows, config.max_rows)
        if path == "realtime":
            n = min(n, 40)  # row-by-row calls: keep them few
        split = path != "realtime" and rng.random() < 0.3
        specs.append(RunSpec(
            index=index, path=path, rows=tickets(n, seed=config.seed * 100_000 + index),
            id_column="ticket_id" if rng.random() < 0.5 else None,
            max_rows_per_job=max(1, n // 2 + 1) if split else None,
            not_ready=config.not_ready_every > 0 and index % config.not_ready_every == 0,
        ))
        if path == "core":
            if config.incremental_every and pooled.random() * config.incremental_every < 1:
                specs[-1].rows, specs[-1].incremental = pool_rows(pool, min(n, len(pool)), pooled), True
            if config.overlap_every and core_runs % config.overlap_every == 1 % config.overlap_every:
                fault = OVERLAP_FAULTS[(core_runs // config.overlap_every) % len(OVERLAP_FAULTS)]
                specs[-1].fault = fault
                specs[-1].parallel = overlap.randint(2, config.max_parallel) if fault == "concurrent" else 1
            core_runs += 1
    return specs


def pool_rows(pool: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` rows of ``pool`` in a random order, a tenth of them edited (one of three
    edits, so an edited row's content recurs across runs too)."""
    rows = [dict(pool[i]) for i in rng.sample(range(len(pool)), n)]
    for row in rows:
        if rng.random() < 0.1:
            row["body"] += f" (edit {rng.randint(1, 3)})"
    return rows
