"""The streaming exactly-once id check of :mod:`sutro_providers.collection.id_check`,
checked against a source snapshot with skipped rows, several shards and batches
smaller than a shard."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.collection.id_check import check_run_ids
from sutro_providers.columns import ROW_ID, SKIP_REASON
from sutro_providers.errors import SutroResultsError
from sutro_providers.parquet_io import parquet_batches
from sutro_providers.submission.ledger import ShardRecord


class _Area:
    """The member of ``StagingArea`` the id check uses (reading the snapshot), on a local file."""

    def __init__(self, path: Path) -> None:
        self.fs = fsspec.filesystem("file")
        self._path = path
        self.reads = 0

    def read_source(self, identity: Any, batch_size: int, columns: list[str] | None = None, *,
                    stage_id: str | None = None) -> Generator[pa.RecordBatch, None, None]:
        self.reads += 1
        return parquet_batches(self.fs, str(self._path), batch_size, columns)


def _area(tmp_path: Path, rows: int = 100) -> _Area:
    reasons = ["too long" if i % 7 == 3 else None for i in range(rows)]  # 14 of 100 skipped
    source = tmp_path / "source.parquet"
    pq.write_table(pa.table({"x": list(range(rows)), ROW_ID: pa.array(range(rows), pa.int64()),
                             SKIP_REASON: pa.array(reasons, pa.string())}), source, row_group_size=16)
    return _Area(source)


def _shards(sizes: list[int]) -> list[ShardRecord]:
    shards, first = [], 0
    for index, rows in enumerate(sizes):
        shards.append(ShardRecord(index=index, rows=rows, first_submitted_row=first, attempt=0, job_name=f"j{index}"))
        first += rows
    return shards


def _submitted(area: _Area) -> list[int]:
    return [i for i in range(100) if i % 7 != 3]


def _results(tmp_path: Path, index: int, ids: list[int]) -> Path:
    path = tmp_path / f"s{index}.parquet"
    pq.write_table(pa.table({ROW_ID: pa.array(ids, pa.int64())}), path, row_group_size=9)
    return path


def _check(area: _Area, tmp_path: Path, sizes: list[int], ids_per_shard: list[list[int]]) -> None:
    results = [(shard, f"job-{shard.index}", _results(tmp_path, shard.index, ids))
               for shard, ids in zip(_shards(sizes), ids_per_shard, strict=True)]
    check_run_ids(area, None, results, batch_size=4)  # type: ignore[arg-type]


def test_matching_shards_pass(tmp_path: Path) -> None:
    area = _area(tmp_path)
    ids = _submitted(area)
    _check(area, tmp_path, [30, 30, 26], [ids[:30], ids[30:60], ids[60:]])


def test_same_ids_in_another_order_pass_and_later_shards_still_checked(tmp_path: Path) -> None:
    area = _area(tmp_path)
    ids = _submitted(area)
    _check(area, tmp_path, [30, 56], [ids[:30][::-1], ids[30:]])
    with pytest.raises(SutroResultsError, match="job-1"):
        _check(area, tmp_path, [30, 56], [ids[:30][::-1], ids[31:]])


def test_every_shard_reordered_reads_the_snapshot_once(tmp_path: Path) -> None:
    area = _area(tmp_path)
    ids = _submitted(area)
    sizes = [10, 20, 25, 31]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    shards = [ids[start:start + size] for start, size in zip(starts, sizes, strict=True)]
    shards[0] = shards[0][3:] + shards[0][:3]  # differs at the first id
    shards[1][12], shards[1][13] = shards[1][13], shards[1][12]  # 12 ids match first (3 batches of 4)
    shards[2] = shards[2][::-1]
    shards[3][29], shards[3][30] = shards[3][30], shards[3][29]  # differs at the last batch
    _check(area, tmp_path, sizes, shards)
    assert area.reads == 1
    broken = [list(s) for s in shards]
    broken[3][20] = broken[3][0]  # a duplicate, past the difference
    with pytest.raises(SutroResultsError, match="job-3") as err:
        _check(area, tmp_path, sizes, broken)
    assert "1 ids come back more than once" in str(err.value)


@pytest.mark.parametrize(("case", "named"), [
    ("missing", "1 submitted rows have no result (ids 53)"),
    ("duplicated", "1 ids come back more than once (ids 50)"),
    ("unknown", "1 result ids were never submitted (ids 3)"),
    ("extra at the end", "1 ids come back more than once (ids 99)"),
])
def test_bad_ids_in_a_later_shard_are_named(tmp_path: Path, case: str, named: str) -> None:
    area = _area(tmp_path)
    ids = _submitted(area)
    second = ids[30:]
    if case == "missing":
        second = [i for i in second if i != 53]
    elif case == "duplicated":
        second = second[:10] + [50] + second[10:]
    elif case == "unknown":
        second = [3, *second]
    else:
        second = [*second, 99]
    with pytest.raises(SutroResultsError, match="job-1") as err:
        _check(area, tmp_path, [30, 56], [ids[:30], second])
    assert named in str(err.value)
