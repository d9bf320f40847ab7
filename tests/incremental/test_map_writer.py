"""The map of reused rows (sutro_providers.incremental.reuse.MapWriter) on moto S3:
row groups are encoded and uploaded on a thread of their own, in order; a failure
there reaches the lookup and leaves no file behind."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from sutro_providers.columns import ROW_ID
from sutro_providers.incremental import reuse
from sutro_providers.incremental.reuse import SEGMENT, SEGMENT_ROW, MapWriter, ReuseHeader, read_header
from sutro_providers.parquet_io import open_parquet
from sutro_providers.staging.area import StagingArea


def _writer(staging: Any) -> tuple[StagingArea, MapWriter]:
    area = StagingArea(staging)
    path = f"{area.root}/maps/{time.time_ns()}/reused-map.parquet"
    return area, MapWriter(area.fs, path, ReuseHeader(cache_root=f"{area.root}/cache", pin="p", segments=[]))


def test_the_map_keeps_every_triple_in_order_across_row_groups(staging: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reuse, "MAP_ROWS", 1_000)
    original = pq.ParquetWriter.write_table

    def slow(self: pq.ParquetWriter, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.05)  # the lookup runs ahead of the map's thread: close must wait for it
        original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", slow)
    area, writer = _writer(staging)
    rng = np.random.default_rng(3)
    expected: list[tuple[int, int, int]] = []
    for part in range(40):
        n = int(rng.integers(1, 400))
        positions = rng.permutation(100_000)[:n].astype(np.int64)
        rows = np.sort(rng.integers(0, 10**9, n)).astype(np.int64)
        writer.add(positions, part % 3, rows)
        expected += zip(positions.tolist(), [part % 3] * n, rows.tolist(), strict=True)
    path = writer.close()
    assert path is not None and writer.rows == len(expected)
    assert read_header(area.fs, path).pin == "p"
    with open_parquet(area.fs, path) as handle:
        file = pq.ParquetFile(handle)
        assert file.metadata.num_row_groups > 1
        table = file.read()
    assert list(zip(table[ROW_ID].to_pylist(), table[SEGMENT].to_pylist(), table[SEGMENT_ROW].to_pylist(),
                    strict=True)) == expected


def test_a_failed_upload_of_the_map_is_raised_and_leaves_no_file(staging: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reuse, "MAP_ROWS", 100)
    original, calls = pq.ParquetWriter.write_table, [0]

    def failing(self: pq.ParquetWriter, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise OSError("the store went away")
        original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    area, writer = _writer(staging)
    with pytest.raises(OSError, match="the store went away"):
        try:  # as Planner.lookup does
            for part in range(10):
                writer.add(np.arange(part * 100, part * 100 + 100, dtype=np.int64), 0, np.arange(100, dtype=np.int64))
            writer.close()
        except BaseException:
            writer.abort()
            raise
    assert calls[0] == 2  # the rows after the failure were not written
    assert not area.fs.exists(writer.path)


def test_a_flush_past_map_rows_is_split_into_row_groups_of_map_rows(staging: Any) -> None:
    """One bucket's matches can take a flush past MAP_ROWS: the collect still reads at
    most MAP_ROWS map rows at once."""
    area, writer = _writer(staging)
    n = reuse.MAP_ROWS + 300_000
    writer.add(np.arange(n, dtype=np.int64), 0, np.arange(n, dtype=np.int64))
    path = writer.close()
    assert path is not None
    with open_parquet(area.fs, path) as handle:
        meta = pq.ParquetFile(handle).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [reuse.MAP_ROWS, 300_000]
