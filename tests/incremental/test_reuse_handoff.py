"""The reused rows' hand-off from the lookup to the collect (sutro_providers.incremental.reuse):
the lookup copies no result, the collect (another pipeline object, as a deferred
task's) reads them from the committed segments the lookup matched: the same output
as a full run, even when a compaction retired those segments meanwhile and a newer
entry of a reused key was committed; the pin is released when the run is done."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers import SutroClient
from sutro_providers.columns import REUSED
from sutro_providers.function_spec import InputField
from sutro_providers.identity import RunIdentity
from sutro_providers.incremental import results_cache, store
from sutro_providers.incremental.keys import HI, LO, content_keys
from sutro_providers.incremental.lookup import Planner
from sutro_providers.incremental.reuse import gather
from sutro_providers.incremental.store import (
    CACHED_AT,
    MAX_SEGMENTS,
    ROW_COST,
    Catalog,
    ResultsCache,
    Segment,
    sort_entries,
)
from sutro_providers.inputs.sources import open_source
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.pipeline import EnrichmentPipeline
from sutro_providers.staging.area import StagingArea
from tests.incremental.test_incremental_runs import changed, output
from tests.pipeline.conftest import options, tickets

ROWS = 600


def _segment_files(cache: ResultsCache, segment: Segment) -> list[str]:
    return [cache.path(f) for f in segment.files]


def test_a_collect_elsewhere_reads_the_segment_the_lookup_matched(client: SutroClient, staging: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store_options = staging.storage_options
    out = f"{staging.url}/out"
    day1 = tickets(ROWS)
    day2, edited = changed(day1, 0.05)
    first = EnrichmentPipeline(client, staging).run(day1, RunIdentity.of("handoff", day=1), options(incremental=True))
    assert first.table is not None and first.manifest.rows_submitted == ROWS
    submitter = EnrichmentPipeline(client, staging)
    opts = options(incremental=True, output_uri=f"{out}/d2.parquet", output_storage_options=store_options)
    identity = RunIdentity.of("handoff", day=2)
    submitted = submitter.submit(day2, identity, opts)
    assert submitted.rows_reused == ROWS - len(edited) and submitted.rows_submitted == len(edited)

    validator, spec = submitter._validator(opts)
    cache = results_cache(submitter.area, opts, spec, validator)
    (matched,) = cache.load().segments
    assert cache.pins.held() == {matched.name}  # the lookup's pin
    staged = submitter.area.fs.ls(submitter.area.files_prefix(identity, _stage_id(submitter, identity)))
    assert not any("reused-c" in p for p in staged)  # no copy of the reused results
    assert sum(1 for p in staged if p.endswith("reused-map.parquet")) == 1

    # meanwhile: a newer entry of a reused key, then enough commits for a compaction
    # that retires the matched segment; retired files go at once unless a pin holds them
    monkeypatch.setattr(store, "ORPHAN_GRACE_SECONDS", -1.0)
    reused_row = next(i for i in range(ROWS) if i not in edited)
    cache.commit(_overriding_entry(cache, matched, validator, day2[reused_row]))
    dummies = []
    for i in range(MAX_SEGMENTS - 1):  # the matched one, the overriding one and these: one too many
        segment = cache.write_segment(iter([_entries(cache, matched, [f"dummy {i} {j}" for j in range(5)])]),
                                      _schema(cache, matched))
        assert segment is not None
        dummies.append(segment)
        catalog = cache.commit(segment)
    assert len(catalog.segments) == 1 and matched.name not in {s.name for s in catalog.segments}
    fs = cache.fs
    assert all(fs.exists(p) for p in _segment_files(cache, matched))  # pinned: kept
    assert not any(fs.exists(p) for d in dummies for p in _segment_files(cache, d))  # not pinned: removed

    collector = EnrichmentPipeline(client, staging)  # the deferred task's own pipeline
    collector.check(collector.wait(identity, opts), identity, opts)
    result = collector.collect(identity, opts)
    assert result.manifest.rows_reused == ROWS - len(edited) and result.manifest.rows_out == ROWS
    assert result.manifest.cost_avoided_usd == submitted.cost_avoided_usd
    full = EnrichmentPipeline(client, staging).run(day2, RunIdentity.of("handoff", full=True),
                                                   options(output_uri=f"{out}/full.parquet",
                                                           output_storage_options=store_options))
    landed = output(f"{out}/d2.parquet", store_options)
    assert landed[REUSED].to_pylist() == [i not in edited for i in range(ROWS)]
    assert landed.drop_columns([REUSED]).equals(output(f"{out}/full.parquet", store_options))
    assert full.table is not None
    assert landed["label"][reused_row].as_py() == first.table["label"][reused_row].as_py() != "OVERRIDDEN"

    assert cache.pins.held() == set()  # completed, snapshot removed: released
    assert not fs.exists(submitter.area.reused_path(identity, _stage_id(submitter, identity)))
    cache.collect_garbage(cache.load())
    assert not any(fs.exists(p) for p in _segment_files(cache, matched))  # now it goes


def test_gather_takes_each_row_from_the_newest_segment_that_has_it(staging: Any) -> None:
    area = StagingArea(staging)
    cache = ResultsCache(area.fs, f"{area.root}/cache/gather-{time.time_ns()}", display=area.display)
    validator = InputValidator("f", [InputField(name="body")])
    schema = pa.schema([(HI, pa.uint64()), (LO, pa.uint64()), (CACHED_AT, pa.float64()), (ROW_COST, pa.float64()),
                        ("label", pa.string()), ("n", pa.int64())])

    def segment(numbers: range, label: str) -> None:
        bodies = [f"b{i}" for i in numbers]
        hi, lo = content_keys(validator.cast_for_submit(pa.record_batch({"body": bodies})))
        table = sort_entries(pa.table({HI: hi, LO: lo, CACHED_AT: np.full(len(bodies), time.time()),
                                       ROW_COST: np.full(len(bodies), 0.5), "label": [label] * len(bodies),
                                       "n": list(numbers)}, schema=schema))
        written = cache.write_segment(iter([table]), schema)
        assert written is not None
        cache.commit(written)

    segment(range(0, 40_000), "old")
    segment(range(20_000, 60_000), "new")
    wanted = list(range(0, 80_000))
    random.Random(5).shuffle(wanted)
    wanted += wanted[:10]  # the same content twice: both rows reuse it
    planner = Planner(cache, validator)
    try:
        keys = planner.read(open_source(pa.table({"body": [f"b{i}" for i in wanted]})))
        found = planner.lookup(keys, f"{area.root}/runs/gather/reused-map.parquet", "gather-pin")
    finally:
        planner.close()
    hit = [n < 60_000 for n in wanted]
    assert found.hits.tolist() == hit and found.map_file is not None
    assert found.cost_avoided_usd == pytest.approx(0.5 * sum(hit))
    reused = gather(area.fs, found.map_file, len(wanted), area.display)
    try:
        ids = np.flatnonzero(found.hits)
        got = pa.concat_tables([reused.take(ids[i:i + 7_000]) for i in range(0, len(ids), 7_000)])
    finally:
        reused.close()
    numbers = [wanted[i] for i in ids]
    assert got["n"].to_pylist() == numbers
    assert got["label"].to_pylist() == ["old" if n < 20_000 else "new" for n in numbers]
    assert got.column_names == ["label", "n"]


def test_segments_of_the_first_layout_are_still_read(staging: Any) -> None:
    """A catalog written before segments had a keys file names one-file segments."""
    area = StagingArea(staging)
    cache = ResultsCache(area.fs, f"{area.root}/cache/layout1-{time.time_ns()}", display=area.display)
    validator = InputValidator("f", [InputField(name="body")])
    bodies = [f"v1 {i}" for i in range(30_000)]
    hi, lo = content_keys(validator.cast_for_submit(pa.record_batch({"body": bodies})))
    table = sort_entries(pa.table({HI: hi, LO: lo, CACHED_AT: np.full(len(bodies), time.time()),
                                   ROW_COST: np.full(len(bodies), 0.25), "label": bodies}))
    name = f"seg-{int(time.time() * 1000):013d}-0000abcd.parquet"
    area.fs.makedirs(cache.root, exist_ok=True)
    with area.fs.open(cache.path(name), "wb") as handle:
        pq.write_table(table, handle, row_group_size=16_384)
    cache.commit(Segment(name=name, rows=len(bodies), newest=time.time(), committed_at=0.0))
    wanted = bodies[::-3] + ["absent"]
    planner = Planner(cache, validator)
    try:
        found = planner.lookup(planner.read(open_source(pa.table({"body": wanted}))),
                               f"{area.root}/runs/layout1/reused-map.parquet", "layout1-pin")
    finally:
        planner.close()
    assert found.hits.tolist() == [True] * (len(wanted) - 1) + [False]
    assert found.map_file is not None
    reused = gather(area.fs, found.map_file, len(wanted), area.display)
    try:
        got = reused.take(np.arange(len(wanted) - 1))
    finally:
        reused.close()
    assert got.column_names == ["label"] and got["label"].to_pylist() == wanted[:-1]


def _stage_id(pipeline: EnrichmentPipeline, identity: RunIdentity) -> str | None:
    record = pipeline._ledger(identity).load()
    assert record is not None
    return record.stage_id


def _schema(cache: ResultsCache, segment: Segment) -> pa.Schema:
    reader = cache.open_segments(Catalog(segments=[segment]))[0]
    try:
        return reader.schema
    finally:
        reader.close()


def _entries(cache: ResultsCache, like: Segment, bodies: list[str]) -> pa.Table:
    """Entries of made-up keys in the schema of ``like``."""
    schema = _schema(cache, like)
    rng = np.random.default_rng(len(bodies) + int(time.time_ns() % 1000))
    n = len(bodies)
    columns = {HI: rng.integers(0, 2**63, n, dtype=np.uint64), LO: rng.integers(0, 2**63, n, dtype=np.uint64),
               CACHED_AT: np.full(n, time.time()), ROW_COST: np.full(n, 0.0)}
    arrays = [pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(n, f.type) for f in schema]
    return sort_entries(pa.Table.from_arrays(arrays, schema=schema))


def _overriding_entry(cache: ResultsCache, matched: Segment, validator: InputValidator, row: dict[str, Any]) -> Segment:
    """A newer segment with another result for the key of ``row``."""
    schema = _schema(cache, matched)
    source = open_source([row])
    batch = next(iter(source.batches()))
    hi, lo = content_keys(validator.cast_for_submit(batch))
    columns = {HI: hi, LO: lo, CACHED_AT: np.full(1, time.time()), ROW_COST: np.full(1, 0.0)}
    arrays = [pa.array(columns[f.name], f.type) if f.name in columns
              else pa.array(["OVERRIDDEN"], f.type) if f.name == "label" else pa.nulls(1, f.type) for f in schema]
    segment = cache.write_segment(iter([pa.Table.from_arrays(arrays, schema=schema)]), schema)
    assert segment is not None
    return segment
