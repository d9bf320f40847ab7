"""B9: a Parquet upstream -> streaming Dagster asset -> DuckDB IO manager: peak RSS.

The upstream ``support/tickets`` (``subject``, ``body``, ``ticket_id``; row groups
of 1Mi rows) is written where ``ConfigurableSutroParquetIOManager`` keeps it; then,
in a fresh process, ``dg.materialize`` runs ``sutro_function_asset(stream=True)``
(the upstream read as a stream, staged on moto S3, enriched by the local Sutro
server, the enriched Parquet inserted into DuckDB batch by batch by
``SutroDuckDBIOManager``). Reported: wall time and peak RSS (VmHWM) of that process.

    .venv/bin/python bench/b9_dagster_stream.py                      # 1M and 10M rows
    .venv/bin/python bench/b9_dagster_stream.py --sizes 10000000
    .venv/bin/python bench/b9_dagster_stream.py --smoke              # 20,000 rows

Target: peak RSS <= 1 GiB.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    in_child,
    measure,
    mib,
    parser,
    peak_rss,
    preload,
    print_table,
    s3_server,
    sutro_server,
    verdict,
)
from b4_pipeline_memory import CHUNK

LIMIT = 1 << 30


def write_upstream(rows: int, path: str) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from _common import tickets_arrow

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with measure() as out, pq.ParquetWriter(path, tickets_arrow(1).schema) as writer:
        for start in range(0, rows, CHUNK):
            chunk = tickets_arrow(min(CHUNK, rows - start))
            ids = pc.add(chunk["ticket_id"].combine_chunks(), start)  # unique across chunks (the id_column)
            writer.write_table(chunk.set_column(2, "ticket_id", ids))
    return out


def materialize(lake: str, database: str, url: str, key: str, endpoint: str, bucket: str) -> dict[str, Any]:
    import dagster as dg

    from dagster_sutro import (
        ConfigurableSutroParquetIOManager,
        SutroDuckDBIOManager,
        SutroResource,
        sutro_function_asset,
    )

    @dg.asset(key=["support", "tickets"], io_manager_key="lake")
    def tickets() -> None:
        raise AssertionError("written beforehand")

    triaged = sutro_function_asset(function="ticket-triage", upstream=tickets, key=["support", "tickets_triaged"],
                                   stream=True, options={"id_column": "ticket_id"})
    resources = {
        "sutro": SutroResource(api_url=url, api_key=key, staging_url=f"s3://{bucket}/staging", s3_endpoint_url=endpoint,
                               aws_access_key_id="testing", aws_secret_access_key="testing",
                               aws_region_name="us-east-1", poll_interval=0.5, max_poll_interval=2.0),
        "lake": ConfigurableSutroParquetIOManager(base_path=lake),
        "io_manager": SutroDuckDBIOManager(database=database),
    }
    with measure() as out:
        result = dg.materialize([tickets, triaged], selection=dg.AssetSelection.assets(triaged), resources=resources)
    assert result.success
    meta = result.asset_materializations_for_node("support__tickets_triaged")[0].metadata
    out["value"] = {"rows": meta["dagster/row_count"].value, "absolute_peak": peak_rss()}
    return out


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000000,10000000", help="comma-separated row counts")
    args = p.parse_args()
    sizes = [20_000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    preload("httpx", "s3fs", "duckdb", "dagster", "dagster_sutro")
    results = []
    with s3_server() as s3, sutro_server() as sutro:
        bucket = s3.create_bucket("bench-b9")
        for rows in sizes:
            work = tempfile.mkdtemp(prefix="b9-")
            lake, database = os.path.join(work, "lake"), os.path.join(work, "w.duckdb")
            in_child(write_upstream, rows, os.path.join(lake, "support", "tickets.parquet"))
            m = in_child(materialize, lake, database, sutro.url, sutro.api_key, s3.endpoint_url, bucket)
            assert m.value["rows"] == rows, m.value
            import duckdb

            with duckdb.connect(database, read_only=True) as db:
                assert db.execute("select count(*) from support.tickets_triaged").fetchone() == (rows,)
            results.append((rows, m))
    worst = max(m.value["absolute_peak"] for _, m in results)
    print_table(
        f"B9 Parquet upstream -> sutro_function_asset(stream=True) -> SutroDuckDBIOManager, sizes "
        f"{', '.join(f'{r:,}' for r in sizes)}",
        ["rows", "wall s", "CPU s", "peak RSS (VmHWM)", "peak above baseline", "baseline"],
        [[rows, m.seconds, m.cpu_seconds, mib(m.value["absolute_peak"]), mib(m.rss_above), mib(m.baseline_rss)]
         for rows, m in results],
        [f"largest peak RSS {mib(worst)} (target <= 1 GiB: {verdict(worst <= LIMIT)})"],
    )


if __name__ == "__main__":
    main()
