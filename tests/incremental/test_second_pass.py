"""The incremental run reads its source twice (keys, then staging the missed rows):
both passes must see the same rows in the same order. A file source (Parquet or CSV,
on moto S3 or local) is copied to local scratch as it is and read from there, so a
file replaced between the passes changes nothing; an in-memory table is read twice
as it is; a stream (SQL, a RecordBatchReader, a pandas frame) is copied batch by
batch to a local IPC scratch file while it is read."""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from sutro_providers.database import Database
from sutro_providers.errors import SutroInputError
from sutro_providers.function_spec import InputField
from sutro_providers.incremental.lookup import Planner
from sutro_providers.inputs.sources import SourceReader, open_source
from sutro_providers.inputs.sql import open_sql
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.options import StagingLocation
from sutro_providers.parquet_io import download_file

VALIDATOR = InputValidator("f", [InputField(name="body")])
ROWS = 2_500


def table(rows: int = ROWS, tag: str = "") -> pa.Table:
    return pa.table({"id": pa.array(range(rows), pa.int64()), "body": [f"ticket {i}{tag}" for i in range(rows)]})


def rows_of(reader: SourceReader) -> pa.Table:
    return pa.Table.from_batches(list(reader.batches()), schema=reader.schema)


def two_passes(reader: SourceReader, replace: Any = None) -> tuple[Planner, pa.Table]:
    """Planner.read (the first pass), then ``replace()`` (the source changes), then the
    second pass as staging reads it."""
    planner = Planner(None, VALIDATOR)
    planner.read(reader)
    if replace is not None:
        replace()
    assert planner.replay is not None
    return planner, rows_of(planner.replay)


def write_parquet(fs: Any, path: str, data: pa.Table) -> None:
    with fs.open(path, "wb") as handle:
        pq.write_table(data, handle, row_group_size=1_000)


@pytest.fixture
def s3(staging: StagingLocation) -> tuple[Any, str, dict[str, Any]]:
    fs, root = fsspec.core.url_to_fs(staging.url, **staging.storage_options)
    return fs, root, staging.storage_options


@pytest.mark.parametrize("layout", ["file", "folder", "csv.gz"])
def test_a_file_source_on_s3_is_copied_as_it_is_and_replaced_files_change_nothing(
        s3: tuple[Any, str, dict[str, Any]], layout: str) -> None:
    fs, root, options = s3
    first, second = table(), table(tag=" (replaced)")
    if layout == "file":
        paths, uri = [f"{root}/in/t.parquet"], f"s3://{root}/in/t.parquet"
    elif layout == "folder":
        paths, uri = [f"{root}/dir/a.parquet", f"{root}/dir/b.parquet"], f"s3://{root}/dir"
    else:
        paths, uri = [f"{root}/in/t.csv.gz"], f"s3://{root}/in/t.csv.gz"

    def write(data: pa.Table) -> None:
        if layout == "csv.gz":
            sink = pa.BufferOutputStream()
            pcsv.write_csv(data, sink)
            fs.pipe(paths[0], gzip.compress(sink.getvalue().to_pybytes()))
            return
        half = len(data) // len(paths)
        for index, path in enumerate(paths):
            write_parquet(fs, path, data.slice(index * half, half))

    write(first)
    planner, replayed = two_passes(open_source(uri, storage_options=options, batch_size=300),
                                   replace=lambda: write(second))
    try:
        assert planner.rows == ROWS
        assert replayed.equals(first)  # the copy's rows, not the replaced file's
        assert "(local copy)" in planner.replay.description  # type: ignore[union-attr]
        assert rows_of(open_source(uri, storage_options=options)).equals(second)  # the source did change
    finally:
        planner.close()
    assert not list(Path(planner._tmp.name).parent.glob(Path(planner._tmp.name).name))  # the copy is removed


def test_a_local_file_is_copied_too(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(table(), path, row_group_size=700)
    planner, replayed = two_passes(open_source(str(path), batch_size=256),
                                   replace=lambda: pq.write_table(table(tag="!"), path))
    try:
        assert replayed.equals(table())
        assert all(b.num_rows <= 256 for b in planner.replay.batches())  # type: ignore[union-attr]
    finally:
        planner.close()


def test_an_arrow_table_is_read_twice_as_it_is() -> None:
    reader = open_source(table(), batch_size=512)
    planner, replayed = two_passes(reader)
    try:
        assert planner.replay is reader and replayed.equals(table())
    finally:
        planner.close()


def _sqlite(tmp_path: Path) -> SourceReader:
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE src (id INTEGER, body TEXT)")
        conn.executemany("INSERT INTO src VALUES (?, ?)", [(i, f"ticket {i}") for i in range(ROWS)])
    return open_sql(Database("sqlite", uri=str(db)), "SELECT id, body FROM src ORDER BY id", batch_size=400)


@pytest.mark.parametrize("kind", ["sql", "record batch reader", "pandas"])
def test_a_stream_is_copied_to_scratch_while_it_is_read(tmp_path: Path, kind: str) -> None:
    if kind == "sql":
        reader = _sqlite(tmp_path)
    elif kind == "pandas":
        reader = open_source(table().to_pandas(), batch_size=400)
    else:  # consumed by the first pass: a second read of it would find nothing
        reader = open_source(pa.RecordBatchReader.from_batches(table().schema, table().to_batches(max_chunksize=400)))
    planner, replayed = two_passes(reader)
    try:
        assert "(scratch copy)" in planner.replay.description  # type: ignore[union-attr]
        assert replayed.cast(table().schema).equals(table())  # pandas: large_string
    finally:
        planner.close()


def test_a_file_gone_before_the_copy_is_an_input_error(s3: tuple[Any, str, dict[str, Any]]) -> None:
    fs, root, options = s3
    write_parquet(fs, f"{root}/gone/t.parquet", table())
    reader = open_source(f"s3://{root}/gone/t.parquet", storage_options=options)
    fs.rm(f"{root}/gone/t.parquet")
    planner = Planner(None, VALIDATOR)
    try:
        with pytest.raises(SutroInputError, match=r"t\.parquet.* went away before it was read"):
            planner.read(reader)
    finally:
        planner.close()


def test_a_copy_is_one_streaming_get(staging: StagingLocation, tmp_path: Path) -> None:
    """s3fs' own get_file downloads a file larger than its block size as concurrent
    ranged GETs held in memory whole (and each free to see another version of the
    object): the copy is one GET, streamed."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, default_block_size=2**20, **staging.storage_options)
    root = staging.url.removeprefix("s3://")
    data = bytes(range(256)) * (3 * 2**20 // 256 + 7)  # ~3 MiB: three blocks
    fs.pipe(f"{root}/big.bin", data)
    calls: list[str] = []
    real = fs._call_s3

    async def counting(method: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        return await real(method, *args, **kwargs)

    fs._call_s3 = counting  # type: ignore[method-assign]
    download_file(fs, f"{root}/big.bin", str(tmp_path / "big.bin"))
    assert (tmp_path / "big.bin").read_bytes() == data
    assert calls.count("get_object") == 1, calls
