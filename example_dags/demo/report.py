"""The per-orchestrator summary the demo prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Summary:
    orchestrator: str
    rows_in: int
    rows_out: int
    labels: dict[str, int]
    mean_confidence: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    job_ids: list[str]
    wall_seconds: float
    outputs: list[str] = field(default_factory=list)


def summarize_rows(orchestrator: str, rows_in: int, rows: list[tuple[Any, Any]], jobs: list[Any],
                   wall: float, outputs: list[str]) -> Summary:
    """``rows`` are (label, confidence) pairs read back from the destination table;
    ``jobs`` the Sutro job records created during the run."""
    confidences = [float(c) for _, c in rows if c is not None]
    jobs = [j for j in jobs if j.run_type != "COST_ESTIMATE"]  # estimates are free
    return Summary(
        orchestrator=orchestrator,
        rows_in=rows_in,
        rows_out=len(rows),
        labels=dict(Counter(str(label) for label, _ in rows).most_common()),
        mean_confidence=sum(confidences) / len(confidences) if confidences else None,
        input_tokens=sum(j.input_tokens or 0 for j in jobs),
        output_tokens=sum(j.output_tokens or 0 for j in jobs),
        cost_usd=sum(j.job_cost or 0.0 for j in jobs),
        job_ids=[j.job_id for j in jobs],
        wall_seconds=wall,
        outputs=outputs,
    )


def print_summary(s: Summary) -> None:
    ok = "OK" if s.rows_out == s.rows_in else "MISMATCH"
    print(f"\n== {s.orchestrator} ==")
    print(f"  rows in / out     {s.rows_in} / {s.rows_out}  [{ok}]")
    print("  labels            " + ", ".join(f"{k} {v}" for k, v in s.labels.items()))
    conf = f"{s.mean_confidence:.3f}" if s.mean_confidence is not None else "-"
    print(f"  mean confidence   {conf}")
    print(f"  tokens in / out   {s.input_tokens} / {s.output_tokens}")
    print(f"  cost              ${s.cost_usd:.4f}")
    print(f"  Sutro job(s)      {', '.join(s.job_ids) or '-'}")
    print(f"  wall time         {s.wall_seconds:.1f} s")
    for out in s.outputs:
        print(f"  output            {out}")
