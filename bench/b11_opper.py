"""B11: 2,000 rows through the Opper runner with 50 ms injected server latency.

The local server delays every Opper v2 call (``POST /v2/call``) by 50 ms (fault
rule ``{"kind": "latency", "endpoint": "opper-call-revision", "latency_ms": 50}``,
through ``POST /_opper/faults``). Ours: ``OpperRowPipeline.run`` at concurrency 32
on an Arrow table (validate, stage to a local folder, call, journal, join): the
whole run. Floor: the same calls made one after another with
``OpperClient.call_by_name``. Each side runs in a fresh process, side by side in
one run; the server's call log must hold exactly ``rows`` answered calls per side.
The server's CPU time per call is read from ``/proc/<pid>/stat`` as in B6.

    .venv/bin/python bench/b11_opper.py                 # 2,000 rows, concurrency 32
    .venv/bin/python bench/b11_opper.py --smoke         # 64 rows

Target: ours >= 25x faster than the floor at concurrency 32 (as B6).
"""

from __future__ import annotations

import tempfile
from typing import Any

import httpx
from _common import in_child, measure, parser, preload, print_table, sutro_server, tickets_arrow, verdict
from b6_realtime import process_cpu, server_side

LATENCY = {"kind": "latency", "endpoint": "opper-call-revision", "latency_ms": 50}
FUNCTION = "ticket-triage"
INPUT_SCHEMA = {"type": "object", "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
                "required": ["subject", "body"]}
OUTPUT_SCHEMA = {"type": "object", "properties": {
    "label": {"type": "string", "enum": ["billing", "bug", "feature_request", "account", "other"]},
    "urgent": {"type": "boolean"}}, "required": ["label", "urgent"]}
MODEL = "openai/gpt-4o-mini"


def floor(rows: int, url: str, key: str) -> dict[str, Any]:
    """One call after another."""
    from sutro_providers.opper import OpperClient

    inputs = tickets_arrow(rows).select(["subject", "body"]).to_pylist()
    with OpperClient(base_url=url, api_key=key) as client:
        client.list_functions()  # connection and key checked before the clock starts
        with measure() as out:
            answers = [client.call_by_name(FUNCTION, row, instructions="Classify the support ticket",
                                           input_schema=INPUT_SCHEMA, output_schema=OUTPUT_SCHEMA, model=MODEL)
                       for row in inputs]
    assert len(answers) == rows and all(isinstance(a.json_payload, dict) for a in answers)
    return out


def ours(rows: int, url: str, key: str, concurrency: int) -> dict[str, Any]:
    """The Opper runner on an Arrow table: the whole run (stage, call, journal, join)."""
    from sutro_providers.identity import RunIdentity
    from sutro_providers.opper import OpperConfig
    from sutro_providers.opper_rows import OpperOptions, OpperRowPipeline
    from sutro_providers.options import StagingLocation

    table = tickets_arrow(rows)
    options = OpperOptions(function=FUNCTION, instructions="Classify the support ticket", input_schema=INPUT_SCHEMA,
                           output_schema=OUTPUT_SCHEMA, model=MODEL, id_column="ticket_id", concurrency=concurrency)
    with tempfile.TemporaryDirectory(prefix="b11-") as staging:
        pipeline = OpperRowPipeline(OpperConfig(base_url=url, api_key=key),  # type: ignore[arg-type]
                                    StagingLocation(url=staging))
        with measure() as out:
            result = pipeline.run(table, RunIdentity.of("bench", name="b11", rows=rows), options)
    assert result.table is not None and result.table.num_rows == rows and result.table["label"].null_count == 0
    assert result.manifest.usage_by_model[MODEL].calls == rows
    return out


def answered_calls(url: str) -> int:
    return len(httpx.get(f"{url}/_opper/calls", timeout=60).json()["calls"])


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args()
    rows = 64 if args.smoke else args.rows
    preload("httpx", "sutro_providers.opper_rows")
    with sutro_server() as server:
        admin = httpx.Client(base_url=server.url, timeout=60)
        try:
            admin.post("/_opper/reset").raise_for_status()
            admin.post("/_opper/faults", json=[LATENCY]).raise_for_status()
            cpu0 = process_cpu(server)
            slow = in_child(floor, rows, server.url, server.api_key)
            cpu1 = process_cpu(server)
            floor_calls = answered_calls(server.url)
            fast = in_child(ours, rows, server.url, server.api_key, args.concurrency)
            cpu2 = process_cpu(server)
            our_calls = answered_calls(server.url) - floor_calls
        finally:
            admin.delete("/_opper/faults")
            admin.close()
    assert (floor_calls, our_calls) == (rows, rows), (floor_calls, our_calls)
    speedup = slow.seconds / fast.seconds
    print_table(
        f"B11 Opper runner, {rows:,} rows, 50 ms injected latency per call",
        ["side", "seconds", "per row", "CPU s", "CPU per row", "server CPU per call"],
        [
            ["floor: OpperClient.call_by_name one after another", slow.seconds, f"{1000 * slow.seconds / rows:.1f} ms",
             slow.cpu_seconds, f"{1000 * slow.cpu_seconds / rows:.2f} ms", server_side(cpu0, cpu1, rows)],
            [f"ours: OpperRowPipeline.run, concurrency {args.concurrency}", fast.seconds,
             f"{1000 * fast.seconds / rows:.1f} ms", fast.cpu_seconds, f"{1000 * fast.cpu_seconds / rows:.2f} ms",
             server_side(cpu1, cpu2, rows)],
        ],
        [f"answered calls on the server: floor {floor_calls}, ours {our_calls}",
         f"speed-up {speedup:.2f}x (ideal {args.concurrency}x; target >= 25x: {verdict(speedup >= 25)})"],
    )


if __name__ == "__main__":
    main()
