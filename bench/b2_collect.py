"""B2: 1M result rows to the joined, enriched table written as Parquet, against plain pyarrow.

Set-up (not measured): the source snapshot is staged with ``StagingArea.stage``
into a local staging folder, and a results Parquet in the local server's format
(``__sutro_row_id``, ``outputs`` JSON text, ``confidence_score``) is synthesised.
Ours: what ``EnrichmentPipeline.collect(materialize=False)`` does after the
download: the streaming exactly-once id check (``check_run_ids``), ``Collector``
(unpack the JSON outputs, join to the source snapshot by row id) and
``write_parquet``. Floor: pyarrow reading the results Parquet and writing it out as
the output Parquet.

    .venv/bin/python bench/b2_collect.py            # 1,000,000 rows, 3 runs per side
    .venv/bin/python bench/b2_collect.py --smoke    # 5,000 rows, 1 run

Target: time ratio <= 1.25.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _common import (
    alternate,
    function_spec,
    in_child,
    measure,
    median,
    mib,
    parser,
    preload,
    print_table,
    results_arrow,
    ticket_validator,
    tickets_arrow,
    verdict,
)

IDENTITY = {"case": "b2"}


def _area(folder: Path) -> Any:
    from sutro_providers.options import StagingLocation
    from sutro_providers.staging.area import StagingArea

    return StagingArea(StagingLocation(url=f"file://{folder}/staging", storage_options={"auto_mkdir": True}))


def setup(folder: Path, rows: int) -> Path:
    """Stage the source snapshot and write the results Parquet; returns the results path."""
    import pyarrow.parquet as pq

    from sutro_providers.identity import RunIdentity
    from sutro_providers.inputs.sources import open_source

    validator = ticket_validator()
    _area(folder).stage(RunIdentity.of("bench", **IDENTITY), open_source(tickets_arrow(rows)), validator, shard_size=2**62)
    path = folder / "results.parquet"
    pq.write_table(results_arrow(rows), path)
    return path


def floor(folder: Path, results: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    target = folder / "floor-out.parquet"
    with measure() as out:
        pq.write_table(pq.read_table(results), target)
    out["value"] = {"bytes": target.stat().st_size}
    return out


def ours(folder: Path, results: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from sutro_providers.collection.collector import Collector
    from sutro_providers.collection.id_check import check_run_ids
    from sutro_providers.identity import RunIdentity
    from sutro_providers.options import EnrichmentOptions
    from sutro_providers.parquet_io import write_parquet

    area, identity = _area(folder), RunIdentity.of("bench", **IDENTITY)
    rows = pq.ParquetFile(results).metadata.num_rows
    shard = SimpleNamespace(first_submitted_row=0, rows=rows)
    record = SimpleNamespace(shards=[shard])
    target = folder / "ours-out.parquet"
    options = EnrichmentOptions(function="ticket-triage")
    collector = Collector(None, area, identity, record, options, function_spec())  # type: ignore[arg-type]
    phases = {}
    with measure() as out:
        started = time.perf_counter()  # the id check of Collector.prepare, after its download
        check_run_ids(area, identity, [(shard, "bench", results)], options.batch_size)  # type: ignore[list-item]
        phases["id check"] = time.perf_counter() - started
        collector._paths = [results]  # what Collector.prepare leaves after downloading
        joiner, unpacked = collector.joiner()
        written = write_parquet(collector.batches(joiner, unpacked), joiner.schema, str(target))
    assert written == rows
    out["value"] = {"bytes": target.stat().st_size, "phases": phases}
    return out


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    rows = 5_000 if args.smoke else 1_000_000
    repeat = args.repeat or (1 if args.smoke else 3)
    preload("pyarrow.parquet", "sutro_providers.collection.collector", "sutro_providers.pipeline")
    with tempfile.TemporaryDirectory(prefix="bench-b2-") as tmp:
        folder = Path(tmp)
        results = setup(folder, rows)
        results_bytes = results.stat().st_size
        floors, ourses = alternate(repeat, lambda: in_child(floor, folder, results), lambda: in_child(ours, folder, results))
    f_time, o_time = median([m.seconds for m in floors]), median([m.seconds for m in ourses])
    ratio = o_time / f_time
    print_table(
        f"B2 results -> joined enriched Parquet, {rows:,} rows, median of {repeat}",
        ["side", "seconds (each run)", "median s", "CPU s", "peak RSS above baseline", "output"],
        [
            ["floor: pq.read_table + pq.write_table", " ".join(f"{m.seconds:.2f}" for m in floors), f_time,
             median([m.cpu_seconds for m in floors]), mib(median([m.rss_above for m in floors])), mib(floors[0].value["bytes"])],
            ["ours: id check + Collector join + write_parquet", " ".join(f"{m.seconds:.2f}" for m in ourses), o_time,
             median([m.cpu_seconds for m in ourses]), mib(median([m.rss_above for m in ourses])), mib(ourses[0].value["bytes"])],
        ],
        [f"results Parquet {mib(results_bytes)}; id check {median([m.value['phases']['id check'] for m in ourses]):.2f} s of ours",
         f"time ratio ours/floor {ratio:.2f} (target <= 1.25: {verdict(ratio <= 1.25)})"],
    )


if __name__ == "__main__":
    main()
