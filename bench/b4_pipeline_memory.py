"""B4: a 10M-row Parquet source on S3 to the enriched output on S3: peak RSS of the pipeline.

The source (``subject``, ``body``, ``ticket_id``; pyarrow's default row groups of
1Mi rows) is written to a moto S3 server; ``EnrichmentPipeline.run`` (submit,
wait, collect with ``materialize=False``, ``output_uri`` on S3) runs in a fresh
process against the local Sutro server (a separate process, not counted). The
run is repeated at a smaller size, so the table shows whether memory follows the
table size or the row-group/batch size. The peak of each phase (VmHWM, reset between
phases) shows which phase sets the process peak.

    .venv/bin/python bench/b4_pipeline_memory.py                      # 1M and 10M rows
    .venv/bin/python bench/b4_pipeline_memory.py --sizes 10000000
    .venv/bin/python bench/b4_pipeline_memory.py --smoke              # 20,000 rows

Target: peak RSS <= 1 GB (bounded by row-group size, not table size).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from _common import (
    FUNCTION,
    in_child,
    measure,
    mib,
    parser,
    peak_rss,
    preload,
    print_table,
    reset_peak,
    s3_server,
    sutro_server,
    tickets_arrow,
    verdict,
)

CHUNK = 1_000_000
LIMIT = 1 << 30


def write_source(rows: int, path: str, storage_options: dict[str, Any]) -> None:
    """The source Parquet, written chunk by chunk (never the whole table in memory)."""
    import pyarrow.parquet as pq
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **storage_options)
    with fs.open(path, "wb") as handle, pq.ParquetWriter(handle, tickets_arrow(1).schema) as writer:
        for start in range(0, rows, CHUNK):
            chunk = tickets_arrow(min(CHUNK, rows - start))
            writer.write_table(chunk.set_column(2, "ticket_id", chunk["ticket_id"].combine_chunks()))


def run(source: str, url: str, key: str, storage_options: dict[str, Any], bucket: str) -> dict[str, Any]:
    """EnrichmentPipeline.run, source and output on S3, nothing materialised."""
    from sutro_providers import SutroClient
    from sutro_providers.identity import RunIdentity
    from sutro_providers.options import EnrichmentOptions, StagingLocation
    from sutro_providers.pipeline import EnrichmentPipeline

    output = f"s3://{bucket}/out/{secrets.token_hex(4)}.parquet"
    with SutroClient(url, key) as client:
        pipeline = EnrichmentPipeline(client, StagingLocation(url=f"s3://{bucket}/sutro", storage_options=storage_options))
        pipeline.area.exists(f"{bucket}/sutro")
        options = EnrichmentOptions(function=FUNCTION, output_uri=output, output_storage_options=storage_options,
                                    poll_interval=0.5, max_poll_interval=2.0)
        identity = RunIdentity.of("bench", case="b4", nonce=secrets.token_hex(4))
        phases = {}
        with measure() as out:  # what pipeline.run does, one step at a time for the phase times and peaks
            started = time.perf_counter()
            pipeline.submit(source, identity, options, source_storage_options=storage_options)
            phases["submit_s"], phases["submit_peak"], started = time.perf_counter() - started, phase_peak(), time.perf_counter()
            pipeline.check(pipeline.wait(identity, options), identity, options)
            phases["wait_s"], phases["wait_peak"], started = time.perf_counter() - started, phase_peak(), time.perf_counter()
            manifest = pipeline.collect(identity, options, materialize=False).manifest
            phases["collect_s"], phases["collect_peak"] = time.perf_counter() - started, phase_peak()
    absolute = max(phases["submit_peak"], phases["wait_peak"], phases["collect_peak"])
    out["rss_above"] = max(0, absolute - out["baseline_rss"])  # measure's own VmHWM saw only the last phase
    out["value"] = {"rows_out": manifest.rows_out, "absolute_peak": absolute, "shards": len(manifest.shards), **phases}
    return out


def phase_peak() -> int:
    """Peak RSS (VmHWM, bytes) since the last call (or the start of ``measure``), then
    reset the kernel's high-water mark for the next phase."""
    peak = peak_rss()
    reset_peak()  # where not allowed, each phase's figure is the peak so far
    return peak


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000000,10000000", help="comma-separated row counts")
    args = p.parse_args()
    sizes = [20_000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    preload("httpx", "s3fs", "sutro_providers.pipeline")
    results = []
    with s3_server() as s3, sutro_server() as sutro:
        bucket = s3.create_bucket("bench-b4")
        for rows in sizes:
            source = f"{bucket}/source-{rows}.parquet"
            in_child(_write_source_child, rows, source, s3.storage_options)
            m = in_child(run, f"s3://{source}", sutro.url, sutro.api_key, s3.storage_options, bucket)
            assert m.value["rows_out"] == rows, m.value
            results.append((rows, m))
            s3.filesystem().rm(source)  # keep the in-process moto server small
    worst = max(m.value["absolute_peak"] for _, m in results)
    print_table(
        f"B4 Parquet on S3 -> enriched Parquet on S3 through the local server, sizes {', '.join(f'{r:,}' for r in sizes)}",
        ["rows", "wall s", "submit s", "wait s", "collect s", "CPU s", "peak RSS (VmHWM)", "peak above baseline", "baseline",
         "submit peak", "wait peak", "collect peak"],
        [[rows, m.seconds, m.value["submit_s"], m.value["wait_s"], m.value["collect_s"], m.cpu_seconds, mib(m.value["absolute_peak"]),
          mib(m.rss_above), mib(m.baseline_rss), mib(m.value["submit_peak"]), mib(m.value["wait_peak"]),
          mib(m.value["collect_peak"])] for rows, m in results],
        [f"largest peak RSS {mib(worst)} (target <= 1 GiB: {verdict(worst <= LIMIT)})"],
    )


def _write_source_child(rows: int, path: str, storage_options: dict[str, Any]) -> dict[str, Any]:
    with measure() as out:
        write_source(rows, path, storage_options)
    return out


if __name__ == "__main__":
    main()
