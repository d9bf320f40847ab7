"""write_parquet: all or nothing, on a local path and on an fsspec URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.parquet_io import write_parquet


def _batches(n: int, fail_at: int | None = None) -> Iterator[pa.RecordBatch]:
    for i in range(n):
        if i == fail_at:
            raise RuntimeError("boom")
        yield pa.record_batch({"x": pa.array(range(i * 10, i * 10 + 10), pa.int64())})


SCHEMA = pa.schema([("x", pa.int64())])


def test_write_parquet_local(tmp_path: Path) -> None:
    uri = str(tmp_path / "out" / "enriched.parquet")
    assert write_parquet(_batches(3), SCHEMA, uri, None) == 30
    assert pq.read_table(uri)["x"].to_pylist() == list(range(30))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["enriched.parquet"]


def test_write_parquet_failure_leaves_nothing(tmp_path: Path) -> None:
    uri = str(tmp_path / "enriched.parquet")
    with pytest.raises(RuntimeError, match="boom"):
        write_parquet(_batches(5, fail_at=3), SCHEMA, uri, None)
    assert list(tmp_path.iterdir()) == []


def test_write_parquet_failure_keeps_previous_output(tmp_path: Path) -> None:
    uri = str(tmp_path / "enriched.parquet")
    write_parquet(_batches(1), SCHEMA, uri, None)
    with pytest.raises(RuntimeError):
        write_parquet(_batches(5, fail_at=2), SCHEMA, uri, None)
    assert pq.read_table(uri).num_rows == 10
    assert [p.name for p in tmp_path.iterdir()] == ["enriched.parquet"]


def test_write_parquet_memory_fs() -> None:
    mem = fsspec.filesystem("memory")
    uri = "memory://bucket/results/run-1.parquet"
    with pytest.raises(RuntimeError):
        write_parquet(_batches(4, fail_at=2), SCHEMA, uri, {})
    assert not mem.exists("/bucket/results/run-1.parquet")
    assert [p for p in mem.find("/bucket") if "sutro-tmp" in p] == []
    assert write_parquet(_batches(4), SCHEMA, uri, {}) == 40
    with mem.open("/bucket/results/run-1.parquet", "rb") as f:
        assert pq.read_table(f).num_rows == 40
    assert mem.find("/bucket") == ["/bucket/results/run-1.parquet"]
