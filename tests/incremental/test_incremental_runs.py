"""Incremental runs against the local server and moto S3: only new and changed rows
are submitted (the server's job says how many rows it got), the output equals a
full run's, an all-hit run submits nothing and still lands its output."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.columns import REUSED
from sutro_providers.errors import SutroInputError
from sutro_providers.identity import RunIdentity
from sutro_providers.incremental import results_cache
from sutro_providers.pipeline import EnrichmentPipeline
from tests.pipeline.conftest import options, tickets

ROWS = 1000


def changed(rows: list[dict[str, Any]], share: float, seed: int = 3) -> tuple[list[dict[str, Any]], set[int]]:
    rng = random.Random(seed)
    picked = set(rng.sample(range(len(rows)), int(len(rows) * share)))
    out = [dict(r) for r in rows]
    for i in picked:
        out[i]["body"] = out[i]["body"] + f" (edited {i})"
    return out, picked


def submitted_rows(pipeline: EnrichmentPipeline, job_ids: list[str]) -> int:
    return sum(pipeline.client.get_job(j).num_rows or 0 for j in job_ids)


def output(uri: str, storage: dict[str, Any]) -> pa.Table:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri, **storage)
    with fs.open(path, "rb") as f:
        return pq.read_table(f)


def test_second_run_submits_exactly_the_changed_rows(pipeline: EnrichmentPipeline, staging: Any) -> None:
    day1 = tickets(ROWS)
    day2, edited = changed(day1, 0.02)
    store = staging.storage_options
    out = f"{staging.url}/out"
    first = pipeline.run(day1, RunIdentity.of("test", day=1), options(incremental=True, output_uri=f"{out}/d1.parquet",
                                                                        output_storage_options=store))
    assert first.manifest.rows_reused == 0 and first.manifest.rows_submitted == ROWS
    assert first.table is not None and not any(first.table[REUSED].to_pylist())

    second = pipeline.run(day2, RunIdentity.of("test", day=2), options(incremental=True, output_uri=f"{out}/d2.parquet",
                                                                         output_storage_options=store))
    m = second.manifest
    assert submitted_rows(pipeline, m.job_ids) == len(edited) == 20  # the server's count
    assert (m.rows_reused, m.rows_submitted, m.rows_out) == (ROWS - 20, 20, ROWS)
    assert m.cost_avoided_usd is not None and m.cost_avoided_usd > 0
    assert first.manifest.cost_usd is not None
    assert m.cost_avoided_usd == pytest.approx(first.manifest.cost_usd * (ROWS - 20) / ROWS, rel=1e-6)
    reused = second.table[REUSED].to_pylist()  # type: ignore[index]
    assert {i for i, r in enumerate(reused) if not r} == edited

    full = pipeline.run(day2, RunIdentity.of("test", day=2, full=True), options(output_uri=f"{out}/full.parquet",
                                                                                  output_storage_options=store))
    landed = output(f"{out}/d2.parquet", store)
    assert landed.drop_columns([REUSED]).equals(output(f"{out}/full.parquet", store))
    assert second.table is not None and second.table.drop_columns([REUSED]).equals(full.table)


def test_all_hit_run_submits_nothing_and_lands_its_output(pipeline: EnrichmentPipeline, staging: Any,
                                                         sutro_clean: Any) -> None:
    rows = tickets(300)
    store = staging.storage_options
    first = pipeline.run(rows, RunIdentity.of("test", part="a"), options(incremental=True))
    jobs = sutro_clean.admin.job_count()
    again = pipeline.run(rows, RunIdentity.of("test", part="b"),
                         options(incremental=True, output_uri=f"{staging.url}/out/again.parquet",
                                 output_storage_options=store))
    assert sutro_clean.admin.job_count() == jobs  # nothing paid
    assert again.manifest.job_ids == [] and again.manifest.rows_reused == 300 and again.manifest.rows_submitted == 0
    assert again.manifest.state == "succeeded"
    landed = output(f"{staging.url}/out/again.parquet", store)
    assert all(landed[REUSED].to_pylist())
    assert first.table is not None
    assert landed.drop_columns([REUSED]).equals(first.table.drop_columns([REUSED]))


def test_refresh_submits_every_row_and_its_results_win(pipeline: EnrichmentPipeline, sutro_clean: Any) -> None:
    rows = tickets(50)
    pipeline.run(rows, RunIdentity.of("test", r=1), options(incremental=True))
    fresh = pipeline.run(rows, RunIdentity.of("test", r=2), options(incremental=True, refresh=True))
    assert submitted_rows(pipeline, fresh.manifest.job_ids) == 50 and fresh.manifest.rows_reused == 0
    again = pipeline.run(rows, RunIdentity.of("test", r=3), options(incremental=True))
    assert again.manifest.rows_reused == 50 and again.manifest.job_ids == []


def test_cache_follows_the_cache_version_and_sampling(pipeline: EnrichmentPipeline) -> None:
    rows = tickets(40)
    pipeline.run(rows, RunIdentity.of("test", v=1), options(incremental=True))
    bumped = pipeline.run(rows, RunIdentity.of("test", v=2), options(incremental=True, cache_version="2"))
    assert bumped.manifest.rows_reused == 0
    sampled = pipeline.run(rows, RunIdentity.of("test", v=3),
                           options(incremental=True, cache_version="2", sampling_params={"temperature": 0.3}))
    assert sampled.manifest.rows_reused == 0
    same = pipeline.run(rows, RunIdentity.of("test", v=4), options(incremental=True, cache_version="2"))
    assert same.manifest.rows_reused == 40


def test_skipped_rows_stay_skipped(pipeline: EnrichmentPipeline) -> None:
    rows = tickets(30)
    pipeline.run(rows, RunIdentity.of("test", s=1), options(incremental=True, on_invalid_rows="skip"))
    bad = [dict(r) for r in rows]
    bad[4]["body"] = None
    result = pipeline.run(bad, RunIdentity.of("test", s=2), options(incremental=True, on_invalid_rows="skip"))
    table = result.table
    assert table is not None and result.manifest.rows_skipped == 1 and result.manifest.rows_reused == 29
    assert table["sutro_skip_reason"][4].as_py() and table["label"][4].as_py() is None
    assert table[REUSED][4].as_py() is False and table["sutro_skip_reason"].null_count == 29


def test_without_a_published_spec_a_cache_version_is_required(pipeline: EnrichmentPipeline, staging: Any,
                                                              sutro_clean: Any) -> None:
    validator, spec = pipeline._validator(options())
    with pytest.raises(SutroInputError, match="cache_version"):
        results_cache(pipeline.area, options(incremental=True), None, validator)
    assert results_cache(pipeline.area, options(incremental=True, cache_version="x"), None, validator) is not None
