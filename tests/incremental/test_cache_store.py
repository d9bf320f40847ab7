"""The results cache on moto S3: commits are atomic and never lost to a concurrent
commit, compaction keeps the newest entry of a key and applies retention, a
lookup of a few keys reads a few row groups, not the cache, and a lookup reads
no result column at all."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.function_spec import InputField
from sutro_providers.incremental.keys import HI, LO, content_keys
from sutro_providers.incremental.lookup import Lookup, Planner
from sutro_providers.incremental.store import (
    CACHED_AT,
    MAX_SEGMENTS,
    ROW_COST,
    ROW_GROUP_ROWS,
    ResultsCache,
    sort_entries,
)
from sutro_providers.inputs.sources import open_source
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.staging.area import StagingArea

SCHEMA = pa.schema([(HI, pa.uint64()), (LO, pa.uint64()), (CACHED_AT, pa.float64()), (ROW_COST, pa.float64()),
                    ("label", pa.string())])
VALIDATOR = InputValidator("f", [InputField(name="body")])


def entries(bodies: list[str], label: str, at: float | None = None) -> pa.Table:
    hi, lo = content_keys(VALIDATOR.cast_for_submit(pa.record_batch({"body": bodies})))
    n = len(bodies)
    return sort_entries(pa.table({HI: hi, LO: lo, CACHED_AT: np.full(n, at or time.time()),
                                  ROW_COST: np.full(n, 0.001), "label": [label] * n}, schema=SCHEMA))


@pytest.fixture
def cache(staging: Any) -> ResultsCache:
    area = StagingArea(staging)
    return ResultsCache(area.fs, f"{area.root}/cache/test-{time.time_ns()}", display=area.display)


def lookup(cache: ResultsCache, bodies: list[str], tmp_dir: Any) -> tuple[np.ndarray, int]:
    found = run_lookup(cache, bodies)
    return found.hits, found.bytes_read


def run_lookup(cache: ResultsCache, bodies: list[str]) -> Lookup:
    planner = Planner(cache, VALIDATOR)
    try:
        keys = planner.read(open_source(pa.table({"body": bodies})))
        tag = time.time_ns()
        return planner.lookup(keys, f"{cache.root}/../lookups/{tag}/reused-map.parquet", f"pin-{tag}")
    finally:
        planner.close()


def test_concurrent_commits_all_land(cache: ResultsCache, tmp_path: Any) -> None:
    writers = 6
    segments = [cache.write_segment(iter([entries([f"w{w}-{i}" for i in range(50)], f"w{w}")]), SCHEMA)
                for w in range(writers)]
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def commit(i: int) -> None:
        start.wait()
        try:
            segment = segments[i]
            assert segment is not None
            cache.__class__(cache.fs, cache.root, display=cache.display).commit(segment)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    catalog = cache.load()
    assert len(catalog.segments) == writers and catalog.rows == writers * 50  # no commit lost
    hits, _ = lookup(cache, [f"w{w}-{i}" for w in range(writers) for i in range(50)] + ["new"], tmp_path)
    assert hits[:-1].all() and not hits[-1]


def test_an_uncommitted_segment_is_invisible(cache: ResultsCache, tmp_path: Any) -> None:
    segment = cache.write_segment(iter([entries(["a", "b"], "x")]), SCHEMA)
    assert segment is not None and cache.fs.exists(cache.path(segment.name))
    hits, _ = lookup(cache, ["a", "b"], tmp_path)
    assert not hits.any()
    cache.commit(segment)
    hits, _ = lookup(cache, ["a", "b"], tmp_path)
    assert hits.all()


def test_compaction_keeps_the_newest_entry_and_drops_expired_ones(staging: Any, tmp_path: Any) -> None:
    area = StagingArea(staging)
    cache = ResultsCache(area.fs, f"{area.root}/cache/compact-{time.time_ns()}", display=area.display,
                         retention_seconds=3600)
    old = time.time() - 7200
    first = cache.write_segment(iter([entries(["stale", "kept"], "old", at=old)]), SCHEMA)
    assert first is not None
    first.newest = time.time()  # so the segment is not dropped whole at commit: compaction must filter it
    cache.commit(first)
    for i in range(MAX_SEGMENTS):
        segment = cache.write_segment(iter([entries(["kept", f"s{i}"], f"new{i}")]), SCHEMA)
        assert segment is not None
        catalog = cache.commit(segment)
    assert len(catalog.segments) == 1 and {r.name for r in catalog.retired} >= {first.name}
    reader = cache.open_segments(catalog)[0]
    table = pa.concat_tables([reader.read(g) for g in range(reader.num_row_groups)])
    reader.close()
    labels = dict(zip(zip(table[HI].to_pylist(), table[LO].to_pylist(), strict=True), table["label"].to_pylist(),
                      strict=True))
    assert table.num_rows == MAX_SEGMENTS + 1  # "kept" once, s0..s7; "stale" expired
    kept = entries(["kept"], "")
    assert labels[(kept[HI][0].as_py(), kept[LO][0].as_py())] == f"new{MAX_SEGMENTS - 1}"
    hits, _ = lookup(cache, ["stale", "kept", "s3"], tmp_path)
    assert hits.tolist() == [False, True, True]


def test_a_lookup_of_few_keys_reads_few_row_groups(cache: ResultsCache, tmp_path: Any) -> None:
    bodies = [f"row {i}" for i in range(200_000)]
    segment = cache.write_segment(iter([entries(bodies, "l")]), SCHEMA)
    assert segment is not None
    cache.commit(segment)
    with cache.fs.open(cache.path(segment.keys_file), "rb") as handle:
        meta = pq.ParquetFile(handle).metadata
    wanted = {HI, LO, ROW_COST}
    sizes = [sum(meta.row_group(g).column(c).total_compressed_size for c in range(meta.num_columns)
                 if meta.row_group(g).column(c).path_in_schema in wanted) for g in range(meta.num_row_groups)]
    groups, size = len(sizes), sum(sizes)
    assert groups >= 200_000 // ROW_GROUP_ROWS
    hits, read = lookup(cache, bodies[:3] + ["absent"], tmp_path)
    assert hits.tolist() == [True, True, True, False]
    assert 0 < read <= 4 * max(sizes)  # at most one row group per key, whatever the cache's size
    hits, read_all = lookup(cache, bodies, tmp_path)
    assert hits.all() and read_all == size  # each row group once
    assert size <= 17 * 200_000  # ~16 bytes per cached row: the keys, not the results


def test_a_lookup_reads_no_result_column(cache: ResultsCache) -> None:
    """The results file of a segment is for the collect: with it gone, a lookup
    still finds every key (a lookup that read one result column would fail)."""
    bodies = [f"row {i}" for i in range(50_000)]
    segment = cache.write_segment(iter([entries(bodies, "l")]), SCHEMA)
    assert segment is not None and segment.files == [segment.keys_file, segment.name]
    cache.commit(segment)
    cache.fs.rm_file(cache.path(segment.name))
    found = run_lookup(cache, bodies[::7] + ["absent"])
    assert found.hits[:-1].all() and not found.hits[-1] and found.rows_reused == len(bodies[::7])
    assert found.cost_avoided_usd == pytest.approx(0.001 * len(bodies[::7]))
    assert found.map_file is not None and cache.fs.exists(found.map_file)


def test_a_lookup_without_hits_writes_no_map_and_holds_no_pin(cache: ResultsCache) -> None:
    segment = cache.write_segment(iter([entries(["a", "b"], "x")]), SCHEMA)
    assert segment is not None
    cache.commit(segment)
    found = run_lookup(cache, ["c", "d"])
    assert not found.hits.any() and found.map_file is None
    assert cache.pins.held() == set()
    found = run_lookup(cache, ["a", "d"])
    assert found.hits.tolist() == [True, False] and cache.pins.held() == {segment.name}


def test_match_keys_goes_by_both_halves() -> None:
    from sutro_providers.incremental.matching import match_keys

    entry_hi = np.array([1, 5, 5, 5, 9], dtype=np.uint64)  # three entries share k_hi 5
    entry_lo = np.array([0, 2, 4, 8, 1], dtype=np.uint64)
    hi = np.array([5, 5, 5, 9, 9, 1, 2], dtype=np.uint64)
    lo = np.array([4, 8, 3, 1, 2, 0, 0], dtype=np.uint64)
    assert match_keys(entry_hi, entry_lo, hi, lo).tolist() == [2, 3, -1, 4, -1, 0, -1]


@pytest.mark.parametrize("batch_groups", [1, 3, 32])
def test_the_map_places_every_found_row_on_its_own_result(cache: ResultsCache, monkeypatch: pytest.MonkeyPatch,
                                                          batch_groups: int) -> None:
    """Row groups are matched in batches (matching.BATCH_GROUPS): whatever the batch,
    each found row's map entry points at the segment row holding its own result,
    across two segments (newest first), with keys in shuffled input order."""
    from sutro_providers.incremental import matching
    from sutro_providers.incremental.reuse import gather

    monkeypatch.setattr(matching, "BATCH_GROUPS", batch_groups)
    older = [f"old {i}" for i in range(40_000)]
    newer = [f"new {i}" for i in range(60_000)]
    for bodies in (older, newer):
        hi, lo = content_keys(VALIDATOR.cast_for_submit(pa.record_batch({"body": bodies})))
        table = sort_entries(pa.table({HI: hi, LO: lo, CACHED_AT: np.full(len(bodies), time.time()),
                                       ROW_COST: np.full(len(bodies), 0.001), "label": bodies}, schema=SCHEMA))
        segment = cache.write_segment(iter([table]), SCHEMA)
        assert segment is not None
        cache.commit(segment)
    rng = np.random.default_rng(batch_groups)
    wanted = [str(b) for b in rng.permutation(np.array(older[::3] + newer[::2] + ["absent 1", "absent 2"]))]
    found = run_lookup(cache, wanted)
    assert found.rows_reused == len(wanted) - 2 and found.map_file is not None
    assert found.cost_avoided_usd == pytest.approx(0.001 * (len(wanted) - 2))
    reused = gather(cache.fs, found.map_file, len(wanted), cache.display)
    try:
        ids = np.flatnonzero(found.hits)
        assert reused.take(ids)["label"].to_pylist() == [wanted[i] for i in ids]
    finally:
        reused.close()


def test_a_failure_spreading_the_keys_is_raised_by_the_read(cache: ResultsCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys are spread over their buckets on a thread of the read pass: its error
    is the read's, and no thread of the read outlives it."""
    from sutro_providers.incremental.spill import BucketSpill

    def full(self: BucketSpill, *args: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(BucketSpill, "append_grouped", full)
    planner = Planner(cache, VALIDATOR)
    try:
        with pytest.raises(OSError, match="No space left"):
            planner.read(open_source(pa.table({"body": [f"row {i}" for i in range(1_000)]})))
    finally:
        planner.close()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("sutro-lookup")]
