"""Parquet inputs and the staged snapshot read row group by row group without a
read-ahead cache (:mod:`sutro_providers.parquet_io`), against the moto S3 server,
and the bound on batches queued for the staging threads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs

from sutro_providers import parquet_io
from sutro_providers.errors import SutroInputError
from sutro_providers.inputs.sources import open_source
from sutro_providers.parquet_io import open_parquet
from sutro_providers.prefetch import Lane


def _table(rows: int) -> pa.Table:
    return pa.table({"id": pa.array(range(rows), pa.int64()), "text": [f"row {i}" for i in range(rows)]})


@pytest.fixture
def s3_file(sutro_s3_server: Any, sutro_s3_bucket: str) -> str:
    """A 100-row Parquet file on S3 in row groups of 30 rows."""
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **sutro_s3_server.storage_options)
    with fs.open(f"{sutro_s3_bucket}/in/a.parquet", "wb") as handle:
        pq.write_table(_table(100), handle, row_group_size=30)
    return f"s3://{sutro_s3_bucket}/in/a.parquet"


def test_a_parquet_url_is_read_row_group_by_row_group(sutro_s3_server: Any, s3_file: str) -> None:
    reader = open_source(s3_file, storage_options=sutro_s3_server.storage_options, batch_size=25)
    batches = list(reader.batches())
    assert reader.num_rows == 100 and reader.schema.names == ["id", "text"]
    assert [len(b) for b in batches] == [25, 5] * 3 + [10]  # never across the 30-row groups
    assert pa.Table.from_batches(batches)["id"].to_pylist() == list(range(100))


def test_parquet_files_are_opened_without_a_read_ahead_cache(sutro_s3_server: Any, s3_file: str) -> None:
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **sutro_s3_server.storage_options)
    assert fs.open(s3_file, "rb").cache.name == "readahead"  # s3fs' default: 50 MiB beyond each read
    with open_parquet(fs, s3_file) as handle:
        assert handle.cache.name == "none"
        assert pq.ParquetFile(handle).metadata.num_row_groups == 4


def test_a_local_directory_of_parquet_files_keeps_file_order_and_names_a_broken_file(tmp_path: Path) -> None:
    for name, rows in [("b.parquet", 7), ("a.parquet", 5)]:
        pq.write_table(_table(rows), tmp_path / name, row_group_size=3)
    batches = list(open_source(str(tmp_path), batch_size=100).batches())
    assert [len(b) for b in batches] == [3, 2, 3, 3, 1]  # a.parquet, then b.parquet
    (tmp_path / "c.parquet").write_bytes(b"not parquet")
    with pytest.raises(SutroInputError, match=r"c\.parquet' is not a readable Parquet file"):
        open_source(str(tmp_path))


def test_the_shared_reader_is_the_one_inputs_staging_and_collect_use() -> None:
    from sutro_providers.collection import id_check as collection
    from sutro_providers.inputs import sources as inputs
    from sutro_providers.staging import area as staging

    assert inputs.parquet_batches is staging.parquet_batches is parquet_io.parquet_batches
    assert collection.row_group_batches is parquet_io.row_group_batches  # the snapshot: through the staging area


def test_a_staging_lane_holds_at_most_depth_tasks() -> None:
    lane, submitted, seen = Lane("test", depth=2), [0], []

    def task(i: int) -> None:
        seen.append(submitted[0] - i)  # how far the caller got ahead of this task
        time.sleep(0.005)

    for i in range(20):
        lane.submit(task, i)
        submitted[0] = i + 1
    lane.drain()
    assert len(seen) == 20 and max(seen) <= 2  # the caller blocks instead of queueing a 3rd batch
