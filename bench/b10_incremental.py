"""B10: an incremental run over 10M rows of which 1% changed: lookup + merge time and peak RSS.

Set-up (not measured): the cache of the ``ticket-triage`` namespace holds the results
of all 10M rows of day 1 (keys computed by ``content_keys``, synthetic labels,
confidences and rationales; written as one committed segment through
``ResultsCache.write_segment``/``commit``, the path a run's collect takes); day 2 is
the same 10M rows with 1% of the bodies edited, as Parquet on moto S3.

Measured, each in a fresh process:

* **staging (baseline)**: ``StagingArea.stage`` of day 2 as a non-incremental run stages it;
* **incremental run**: ``EnrichmentPipeline`` with ``incremental=True`` over day 2:
  submit (read + keys = ``Planner.read``: the source file copied to local scratch,
  then read from there; ``Planner.lookup``: the segment's keys,
  the map of reused rows; staging the 1% misses), the wait for the 100k-row job on
  the local server (not a target), and collect (download, id check, the reused
  rows' results read from the cache segment = ``reuse.gather``, merge of 9.9M
  reused + 100k new rows in input order, the output on S3, the cache commit of the
  100k new entries).

    .venv/bin/python bench/b10_incremental.py                 # 10M rows, 1% changed
    .venv/bin/python bench/b10_incremental.py --rows 1000000
    .venv/bin/python bench/b10_incremental.py --smoke         # 20,000 rows

Targets: peak RSS of the incremental run <= 1 GiB; lookup (read + keys + lookup) no
slower than staging the rows.
"""

from __future__ import annotations

import functools
import secrets
import time
from typing import Any

from _common import (
    FUNCTION,
    function_spec,
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
    ticket_validator,
    tickets_arrow,
    verdict,
)

CHUNK = 1_000_000
LIMIT = 1 << 30
CHANGED = 0.01


def day2(rows: int, start: int) -> Any:
    """Rows ``[start, start + rows)`` of day 2: day 1 with every 100th body edited."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = tickets_arrow(start + rows).slice(start)
    ids = table["ticket_id"]
    edited = pc.equal(pc.remainder(ids, int(1 / CHANGED)), 7)
    body = pc.if_else(edited, pc.binary_join_element_wise(table["body"], pa.scalar(" (edited)"), ""), table["body"])
    return table.set_column(1, "body", body).combine_chunks()


def build_cache(rows: int, staging: dict[str, Any]) -> dict[str, Any]:
    """The day-1 cache: one committed segment of ``rows`` entries (chunk by chunk)."""
    import tempfile

    import numpy as np
    import pyarrow as pa

    from sutro_providers.incremental import results_cache
    from sutro_providers.incremental.keys import HI, LO, bucket_of, content_keys
    from sutro_providers.incremental.merge import SLICE_BITS
    from sutro_providers.incremental.spill import BucketSpill
    from sutro_providers.incremental.store import CACHED_AT, ROW_COST, SLICES, sort_entries
    from sutro_providers.options import EnrichmentOptions, StagingLocation
    from sutro_providers.staging.area import StagingArea

    area = StagingArea(StagingLocation(**staging))
    validator = ticket_validator()
    cache = results_cache(area, EnrichmentOptions(function=FUNCTION, incremental=True), function_spec(), validator)
    labels = pa.array(["billing", "bug", "feature_request", "account", "other"])
    schema = pa.schema([(HI, pa.uint64()), (LO, pa.uint64()), (CACHED_AT, pa.float64()), (ROW_COST, pa.float64()),
                        ("label", pa.string()), ("rationale", pa.string()), ("confidence", pa.float64())])
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        spill = BucketSpill(tmp, "cache", schema, SLICES)
        for start in range(0, rows, CHUNK):
            table = tickets_arrow(min(CHUNK, rows - start) + start).slice(start)  # day 1: no edits
            hi, lo = content_keys(validator.cast_for_submit(table.combine_chunks().to_batches()[0]))
            n = len(hi)
            spill.append(pa.table({HI: hi, LO: lo, CACHED_AT: np.full(n, time.time()), ROW_COST: np.full(n, 2e-5),
                                   "label": labels.take(pa.array(rng.integers(0, 5, n))),
                                   "rationale": pa.array(["matches the customer's words"] * n),
                                   "confidence": rng.random(n)}, schema=schema), bucket_of(hi, SLICE_BITS))
        spill.finish()
        segment = cache.write_segment((sort_entries(spill.read(b)) for b in spill.buckets()), schema)
    assert segment is not None
    cache.commit(segment)
    return {"seconds": 0.0}


def write_source(rows: int, path: str, storage_options: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **storage_options)
    with fs.open(path, "wb") as handle, pq.ParquetWriter(handle, day2(1, 0).schema) as writer:
        for start in range(0, rows, CHUNK):
            writer.write_table(day2(min(CHUNK, rows - start), start))
    return {"seconds": 0.0}


def baseline_staging(source: str, staging: dict[str, Any]) -> dict[str, Any]:
    """A non-incremental run's staging of the same rows."""
    from sutro_providers.identity import RunIdentity
    from sutro_providers.inputs.sources import open_source
    from sutro_providers.options import StagingLocation
    from sutro_providers.staging.area import StagingArea

    area = StagingArea(StagingLocation(**staging))
    validator = ticket_validator()
    identity = RunIdentity.of("bench", case="b10-stage", nonce=secrets.token_hex(4))
    reader = open_source(source, storage_options=staging["storage_options"])
    with measure() as out:
        staged = area.stage(identity, reader, validator, shard_size=2**62, stage_id="stage-bench")
    out["value"] = {"rows": staged.rows_in}
    return out


def _timed(store: dict[str, float], name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            store[name] = store.get(name, 0.0) + time.perf_counter() - started
    return wrapper


def incremental_run(source: str, url: str, key: str, staging: dict[str, Any], bucket: str) -> dict[str, Any]:
    from sutro_providers import SutroClient
    from sutro_providers.identity import RunIdentity
    from sutro_providers.incremental import lookup, merge
    from sutro_providers.options import EnrichmentOptions, StagingLocation
    from sutro_providers.pipeline import EnrichmentPipeline
    from sutro_providers.staging.area import StagingArea

    times: dict[str, float] = {}
    lookup.Planner.read = _timed(times, "read_keys_s", lookup.Planner.read)  # type: ignore[method-assign]
    lookup.Planner.lookup = _timed(times, "lookup_s", lookup.Planner.lookup)  # type: ignore[method-assign]
    StagingArea.stage = _timed(times, "stage_misses_s", StagingArea.stage)  # type: ignore[method-assign]
    merge.gather = _timed(times, "gather_s", merge.gather)  # type: ignore[assignment]
    found: dict[str, Any] = {}
    original = lookup.Planner._match

    def keep(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        found["keys_bytes"] = result.bytes_read
        return result

    lookup.Planner._match = keep  # type: ignore[method-assign]
    so = staging["storage_options"]
    output = f"s3://{bucket}/out/{secrets.token_hex(4)}.parquet"
    phases: dict[str, Any] = {}
    with SutroClient(url, key) as client:
        pipeline = EnrichmentPipeline(client, StagingLocation(**staging))
        options = EnrichmentOptions(function=FUNCTION, incremental=True, output_uri=output, output_storage_options=so,
                                    poll_interval=0.5, max_poll_interval=2.0)
        identity = RunIdentity.of("bench", case="b10", nonce=secrets.token_hex(4))
        with measure() as out:
            started = time.perf_counter()
            submitted = pipeline.submit(source, identity, options, source_storage_options=so)
            phases["submit_s"], phases["submit_peak"], started = time.perf_counter() - started, _phase_peak(), time.perf_counter()
            pipeline.check(pipeline.wait(identity, options), identity, options)
            phases["wait_s"], phases["wait_peak"], started = time.perf_counter() - started, _phase_peak(), time.perf_counter()
            record = pipeline._ledger(identity).load()
            assert record is not None
            map_path = pipeline.area.reused_path(identity, record.stage_id)
            found["map_bytes"] = pipeline.area.fs.info(map_path)["size"]
            manifest = pipeline.collect(identity, options, materialize=False).manifest
            phases["collect_s"], phases["collect_peak"] = time.perf_counter() - started, _phase_peak()
    absolute = max(phases["submit_peak"], phases["wait_peak"], phases["collect_peak"])
    out["rss_above"] = max(0, absolute - out["baseline_rss"])
    out["value"] = {"rows_out": manifest.rows_out, "rows_reused": manifest.rows_reused,
                    "rows_submitted": submitted.rows_submitted, "cost_avoided": manifest.cost_avoided_usd,
                    "absolute_peak": absolute, **phases, **times, **found}
    return out


def _phase_peak() -> int:
    peak = peak_rss()
    reset_peak()
    return peak


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    args = p.parse_args()
    rows = 20_000 if args.smoke else args.rows
    preload("httpx", "s3fs", "polars", "sutro_providers.pipeline")
    with s3_server() as s3, sutro_server() as sutro:
        bucket = s3.create_bucket(f"bench-b10-{secrets.token_hex(3)}")
        staging = {"url": f"s3://{bucket}/sutro", "storage_options": s3.storage_options}
        source = f"{bucket}/day2-{rows}.parquet"
        in_child(build_cache, rows, staging)
        in_child(write_source, rows, source, s3.storage_options)
        base = in_child(baseline_staging, f"s3://{source}", staging)
        run = in_child(incremental_run, f"s3://{source}", sutro.url, sutro.api_key, staging, bucket)
    v = run.value
    changed = sum(1 for i in range(rows) if i % int(1 / CHANGED) == 7)
    assert v["rows_out"] == rows and v["rows_submitted"] == changed and v["rows_reused"] == rows - changed, v
    lookup_s = v["read_keys_s"] + v["lookup_s"]
    print_table(
        f"B10 incremental run: {rows:,} cached rows, {changed:,} changed (1%), source and cache on moto S3",
        ["step", "seconds", "peak RSS (VmHWM)", "note"],
        [["staging all rows (baseline, non-incremental)", base.seconds, mib(base.rss_above + base.baseline_rss), ""],
         ["incremental: read + keys (local copy of the source)", v["read_keys_s"], "", "Planner.read"],
         ["incremental: lookup (segment keys, map of reused rows up)", v["lookup_s"], "",
          f"Planner.lookup: {mib(v['keys_bytes'])} of keys read, map {mib(v['map_bytes'])}"],
         ["incremental: lookup total (read + keys + lookup)", lookup_s, "", f"{lookup_s / base.seconds:.2f}x staging"],
         ["incremental: staging the misses", v["stage_misses_s"], "", f"{changed:,} rows to shards"],
         ["incremental: submit", v["submit_s"], mib(v["submit_peak"]), ""],
         ["incremental: wait (local server, 1 job)", v["wait_s"], mib(v["wait_peak"]), "not a target"],
         ["incremental: collect (merge + output + cache commit)", v["collect_s"], mib(v["collect_peak"]),
          f"of which {v['gather_s']:.2f} s reading the reused rows' results (reuse.gather)"]],
        [f"peak RSS of the incremental run {mib(v['absolute_peak'])} (target <= 1 GiB: "
         f"{verdict(v['absolute_peak'] <= LIMIT)}); lookup {lookup_s:.2f} s vs staging {base.seconds:.2f} s "
         f"(target lookup <= staging: {verdict(lookup_s <= base.seconds)}); cost avoided ${v['cost_avoided']}"],
    )


if __name__ == "__main__":
    main()
