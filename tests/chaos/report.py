"""The chaos report: per-run checks folded into the figures the issue asks for."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.chaos.config import ChaosConfig


@dataclass
class RunCheck:
    index: int
    path: str
    rows: int
    ok: bool
    attempts: int
    errors: list[str] = field(default_factory=list)
    final_error: str | None = None
    clear_error: bool = True
    streams_dropped: int = 0
    trigger_restarts: int = 0
    partial_output: bool = False
    lost_rows: int = 0
    duplicated_rows: int = 0
    extra_rows: int = 0
    out_of_order: bool = False
    unlabelled_rows: int = 0
    faults: dict[str, int] = field(default_factory=dict)  # overlap faults injected into this run
    attempt_errors: int = 0  # attempts in processes of their own that ended with an error
    unclear_attempt_errors: int = 0
    incremental: bool = False
    rows_reused: int = 0  # an incremental run's rows with results from the cache
    mismatched_results: int = 0  # an incremental run's rows whose results differ from their content's elsewhere


@dataclass
class ChaosReport:
    seed: int
    runs: int
    runs_by_path: dict[str, int]
    paths_missing: dict[str, str]
    succeeded: int
    failed: int
    retried_runs: int
    attempts: int
    failures_by_error: dict[str, int]
    faults_injected: dict[str, int]
    overlap_faults: dict[str, int]
    ledger_conflicts_seen: int
    attempt_errors: int
    server_restarts: int
    trigger_restarts: int
    streams_dropped_seen: int
    jobs: dict[str, Any]
    duplicate_jobs: int
    double_submits: int
    failed_then_resubmitted: int
    lost_rows: int
    duplicated_rows: int
    extra_rows: int
    out_of_order_runs: int
    unlabelled_rows: int
    partial_outputs: int
    unclear_errors: int
    rows_enriched: int
    seconds: float
    incremental_runs: int = 0
    rows_reused: int = 0
    mismatched_results: int = 0
    failed_runs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def build(cls, config: ChaosConfig, paths: tuple[str, ...], missing: dict[str, str], checks: list[RunCheck],
              injected: dict[str, int], jobs: dict[str, Any], audit: dict[str, int], restarts: int,
              seconds: float, ledger_conflicts_seen: int = 0) -> ChaosReport:
        failed = [c for c in checks if not c.ok]
        errors: Counter[str] = Counter(e for c in checks for e in c.errors)
        overlap: Counter[str] = Counter()
        for c in checks:
            overlap.update(c.faults)
        return cls(
            seed=config.seed, runs=len(checks), runs_by_path=dict(Counter(c.path for c in checks)),
            paths_missing=missing, succeeded=len(checks) - len(failed), failed=len(failed),
            retried_runs=sum(1 for c in checks if c.attempts > 1), attempts=sum(c.attempts for c in checks),
            failures_by_error=dict(errors.most_common()), faults_injected=dict(sorted(injected.items())),
            overlap_faults=dict(sorted(overlap.items())), ledger_conflicts_seen=ledger_conflicts_seen,
            attempt_errors=sum(c.attempt_errors for c in checks),
            server_restarts=restarts, trigger_restarts=sum(c.trigger_restarts for c in checks),
            streams_dropped_seen=sum(c.streams_dropped for c in checks),
            jobs={"total": jobs.get("total", 0), "by_status": jobs.get("by_status", {}), "named": audit["jobs_named"]},
            duplicate_jobs=audit["duplicate_jobs"], double_submits=audit["double_submits"],
            failed_then_resubmitted=audit["failed_then_resubmitted"],
            lost_rows=sum(c.lost_rows for c in checks), duplicated_rows=sum(c.duplicated_rows for c in checks),
            extra_rows=sum(c.extra_rows for c in checks), out_of_order_runs=sum(c.out_of_order for c in checks),
            unlabelled_rows=sum(c.unlabelled_rows for c in checks),
            partial_outputs=sum(c.partial_output for c in checks),
            unclear_errors=sum(1 for c in failed if not c.clear_error) + sum(c.unclear_attempt_errors for c in checks),
            rows_enriched=sum(c.rows for c in checks if c.ok), seconds=round(seconds, 1),
            incremental_runs=sum(c.incremental for c in checks), rows_reused=sum(c.rows_reused for c in checks),
            mismatched_results=sum(c.mismatched_results for c in checks),
            failed_runs=[{"index": c.index, "path": c.path, "attempts": c.attempts, "error": c.final_error}
                         for c in failed],
        )

    @property
    def passed(self) -> bool:
        """The invariants: nothing lost, duplicated, reordered or paid twice; failures clean;
        no reused result of another row."""
        return not (self.duplicate_jobs or self.double_submits or self.lost_rows or self.duplicated_rows
                    or self.extra_rows or self.out_of_order_runs or self.unlabelled_rows or self.partial_outputs
                    or self.unclear_errors or self.mismatched_results)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "passed": self.passed}, indent=2)

    def to_text(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in self.faults_injected.items()) or "none"
        by_path = ", ".join(f"{k} {v}" for k, v in self.runs_by_path.items())
        lines = [
            f"chaos report (seed {self.seed}, {self.seconds:.0f} s)",
            f"  runs                     {self.runs} ({by_path})",
            f"  succeeded / failed       {self.succeeded} / {self.failed} (retried runs {self.retried_runs}, attempts {self.attempts})",
            f"  faults injected          {sum(self.faults_injected.values())}: {faults}",
            f"  overlap faults           {', '.join(f'{k} {v}' for k, v in self.overlap_faults.items()) or 'none'}",
            f"  ledger writes lost/redone {self.ledger_conflicts_seen} (conditional-write conflicts met by attempts)",
            f"  attempts ended in error  {self.attempt_errors} (of those run in processes of their own)",
            f"  server restarts          {self.server_restarts}",
            f"  trigger re-creations     {self.trigger_restarts}",
            f"  progress streams dropped {self.streams_dropped_seen} (seen by the core path)",
            f"  jobs                     {self.jobs['total']} {self.jobs['by_status']}",
            f"  duplicate jobs           {self.duplicate_jobs}",
            f"  double submits           {self.double_submits}",
            f"  FAILED then resubmitted  {self.failed_then_resubmitted}",
            f"  lost rows                {self.lost_rows}",
            f"  duplicated rows          {self.duplicated_rows}",
            f"  extra / unlabelled rows  {self.extra_rows} / {self.unlabelled_rows}",
            f"  out-of-order runs        {self.out_of_order_runs}",
            f"  partial outputs          {self.partial_outputs}",
            f"  unclear errors           {self.unclear_errors}",
            f"  rows enriched            {self.rows_enriched}",
            f"  incremental runs         {self.incremental_runs} ({self.rows_reused} rows reused, "
            f"{self.mismatched_results} with results unlike their content's elsewhere)",
        ]
        if self.failures_by_error:
            lines.append("  attempt failures         " + ", ".join(f"{k} {v}" for k, v in self.failures_by_error.items()))
        for run in self.failed_runs:
            lines.append(f"  failed run {run['index']} ({run['path']}, {run['attempts']} tries): {run['error']}")
        for path, why in self.paths_missing.items():
            lines.append(f"  path {path} skipped: {why}")
        lines.append(f"  result                   {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)
