"""B1: a pandas table to staged Parquet on S3 plus a signed URL, against plain pyarrow.

Ours: ``StagingArea.stage`` as ``EnrichmentPipeline.submit`` calls it (an
``InputValidator`` for the ``ticket-triage`` spec, one shard) and ``sign`` of
the shard. Floor: ``pa.Table.from_pandas`` + ``pq.write_table`` of the same
table to the same moto S3 server through s3fs. Each measurement runs in a fresh
process whose baseline already holds the DataFrame and an open S3 connection.

    .venv/bin/python bench/b1_staging.py            # 1,000,000 rows, 3 runs per side
    .venv/bin/python bench/b1_staging.py --smoke    # 5,000 rows, 1 run

Targets: time ratio <= 1.15; peak RSS above baseline <= 1.5x the table's Arrow size.
"""

from __future__ import annotations

import secrets
from typing import Any

from _common import (
    alternate,
    in_child,
    measure,
    median,
    mib,
    parser,
    preload,
    print_table,
    s3_server,
    ticket_validator,
    tickets_pandas,
    verdict,
)


def floor(rows: int, storage_options: dict[str, Any], bucket: str) -> dict[str, Any]:
    """pyarrow straight to S3: convert the DataFrame, write one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import s3fs

    df = tickets_pandas(rows)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **storage_options)
    fs.ls(bucket)  # connect outside the measurement, as ours does
    path = f"{bucket}/floor-{secrets.token_hex(4)}/tickets.parquet"
    with measure() as out:
        table = pa.Table.from_pandas(df, preserve_index=False)
        with fs.open(path, "wb") as handle:
            pq.write_table(table, handle)
    out["value"] = {"arrow_bytes": table.nbytes, "bytes_written": fs.size(path)}
    return out


def ours(rows: int, storage_options: dict[str, Any], bucket: str) -> dict[str, Any]:
    """StagingArea.stage + sign, as pipeline.submit does it."""
    from sutro_providers.identity import RunIdentity
    from sutro_providers.inputs.sources import open_source
    from sutro_providers.options import StagingLocation
    from sutro_providers.staging.area import StagingArea

    df = tickets_pandas(rows)
    area = StagingArea(StagingLocation(url=f"s3://{bucket}/sutro", storage_options=storage_options))
    area.exists(f"{bucket}/sutro")  # connect outside the measurement
    identity = RunIdentity.of("bench", case="b1", nonce=secrets.token_hex(4))
    validator = ticket_validator()
    with measure() as out:
        staged = area.stage(identity, open_source(df), validator, shard_size=2**62)
        url = area.sign(area.shard_path(identity, 0))
    assert staged.rows_submitted == rows and url.startswith("http")
    written = sum(area.fs.size(p) for p in [area.source_path(identity), area.shard_path(identity, 0)])
    out["value"] = {"bytes_written": written}
    return out


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    rows = 5_000 if args.smoke else 1_000_000
    repeat = args.repeat or (1 if args.smoke else 3)
    preload("pandas", "pyarrow.parquet", "s3fs", "sutro_providers.staging.area", "sutro_providers.pipeline")
    with s3_server() as s3:
        bucket = s3.create_bucket("bench-b1")
        floors, ourses = alternate(repeat, lambda: in_child(floor, rows, s3.storage_options, bucket),
                                   lambda: in_child(ours, rows, s3.storage_options, bucket))
    arrow_bytes = floors[0].value["arrow_bytes"]
    f_time, o_time = median([m.seconds for m in floors]), median([m.seconds for m in ourses])
    f_rss, o_rss = median([m.rss_above for m in floors]), median([m.rss_above for m in ourses])
    ratio, rss_ratio = o_time / f_time, o_rss / arrow_bytes
    print_table(
        f"B1 pandas -> staged Parquet on S3 + signed URL, {rows:,} rows, median of {repeat}",
        ["side", "seconds (each run)", "median s", "CPU s", "peak RSS above baseline", "bytes written"],
        [
            ["floor: pyarrow -> s3fs", " ".join(f"{m.seconds:.2f}" for m in floors), f_time,
             median([m.cpu_seconds for m in floors]), mib(f_rss), mib(floors[0].value["bytes_written"])],
            ["ours: StagingArea.stage + sign", " ".join(f"{m.seconds:.2f}" for m in ourses), o_time,
             median([m.cpu_seconds for m in ourses]), mib(o_rss), mib(ourses[0].value["bytes_written"])],
        ],
        [f"table Arrow size {mib(arrow_bytes)}",
         f"time ratio ours/floor {ratio:.2f} (target <= 1.15: {verdict(ratio <= 1.15)})",
         f"peak RSS above baseline / Arrow size {rss_ratio:.2f} (target <= 1.5: {verdict(rss_ratio <= 1.5)})"],
    )


if __name__ == "__main__":
    main()
