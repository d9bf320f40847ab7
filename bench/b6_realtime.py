"""B6: 2,000 rows through the real-time runner with 50 ms injected server latency.

The local server delays every ``POST functions/{name}/run`` by 50 ms (fault rule
``{"kind": "latency", "endpoint": "functions-run", "latency_ms": 50}``). Ours:
``run_realtime(..., concurrency=32)`` on a DataFrame. Floor: the same calls made
one after another with ``SutroClient.run_function``. Each side runs in a fresh process.
The server's CPU time during each side is read from ``/proc/<pid>/stat`` (both run
on the same 2 cores; not shown when ``$BENCH_SUTRO_URL`` points at a shared server).

    .venv/bin/python bench/b6_realtime.py                 # 2,000 rows, concurrency 32
    .venv/bin/python bench/b6_realtime.py --smoke         # 64 rows

Target: ours >= 25x faster than the floor at concurrency 32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from _common import (
    FUNCTION,
    in_child,
    measure,
    parser,
    preload,
    print_table,
    sutro_server,
    tickets_pandas,
    verdict,
)

LATENCY = {"kind": "latency", "endpoint": "functions-run", "latency_ms": 50}


def process_cpu(server: Any) -> float | None:
    """User + system CPU seconds of the local server process (None for a shared server)."""
    proc = getattr(server, "_proc", None)
    if proc is None:
        return None
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_side(before: float | None, after: float | None, rows: int) -> str:
    return "-" if before is None or after is None else f"{1000 * (after - before) / rows:.2f} ms"


def floor(rows: int, url: str, key: str) -> dict[str, Any]:
    """One call after another."""
    from sutro_providers import SutroClient

    inputs = tickets_pandas(rows)[["subject", "body"]].to_dict("records")
    with SutroClient(url, key) as client:
        client.auth_check()
        with measure() as out:
            answers = [client.run_function(FUNCTION, row) for row in inputs]
    assert len(answers) == rows
    return out


def ours(rows: int, url: str, key: str, concurrency: int) -> dict[str, Any]:
    """The real-time runner on a DataFrame."""
    from sutro_providers import SutroClient
    from sutro_providers.options import EnrichmentOptions
    from sutro_providers.realtime import run_realtime

    df = tickets_pandas(rows)[["subject", "body"]]
    with SutroClient(url, key) as client:
        client.auth_check()
        with measure() as out:
            result = run_realtime(client, df, EnrichmentOptions(function=FUNCTION), concurrency=concurrency)
    assert result.table is not None and result.table.num_rows == rows and result.table["label"].null_count == 0
    return out


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args()
    rows = 64 if args.smoke else args.rows
    preload("httpx", "sutro_providers.realtime")
    with sutro_server() as sutro:
        sutro.admin.set_faults([LATENCY])
        cpu0 = process_cpu(sutro)
        slow = in_child(floor, rows, sutro.url, sutro.api_key)
        cpu1 = process_cpu(sutro)
        fast = in_child(ours, rows, sutro.url, sutro.api_key, args.concurrency)
        cpu2 = process_cpu(sutro)
        injected = sutro.admin.stats()["faults_injected"]
    speedup = slow.seconds / fast.seconds
    print_table(
        f"B6 real-time runner, {rows:,} rows, 50 ms injected latency per call",
        ["side", "seconds", "per row", "CPU s", "CPU per row", "server CPU per call"],
        [
            ["floor: one call after another", slow.seconds, f"{1000 * slow.seconds / rows:.1f} ms", slow.cpu_seconds,
             f"{1000 * slow.cpu_seconds / rows:.2f} ms", server_side(cpu0, cpu1, rows)],
            [f"ours: run_realtime, concurrency {args.concurrency}", fast.seconds, f"{1000 * fast.seconds / rows:.1f} ms",
             fast.cpu_seconds, f"{1000 * fast.cpu_seconds / rows:.2f} ms", server_side(cpu1, cpu2, rows)],
        ],
        [f"latency faults injected: {injected}",
         f"speed-up {speedup:.2f}x (ideal {args.concurrency}x; target >= 25x: {verdict(speedup >= 25)})"],
    )


if __name__ == "__main__":
    main()
