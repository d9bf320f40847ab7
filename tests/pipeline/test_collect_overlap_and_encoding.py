"""The worker-thread prefetch of the collect and the PostgreSQL load
(:func:`prefetch.prefetched`) and the output's per-column dictionary choice
(:func:`parquet_io.dictionary_columns`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.errors import SutroResultsError
from sutro_providers.parquet_io import dictionary_columns, write_parquet
from sutro_providers.prefetch import prefetched


def test_prefetched_keeps_order_and_runs_on_another_thread() -> None:
    threads: list[int] = []

    def items() -> Iterator[int]:
        for i in range(50):
            threads.append(threading.get_ident())
            yield i

    assert list(prefetched(items(), depth=3)) == list(range(50))
    assert set(threads) and threading.get_ident() not in threads


def test_prefetched_raises_the_producers_error_after_its_items() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise SutroResultsError("row 7 has no result")

    got = []
    with pytest.raises(SutroResultsError, match="row 7"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1]


def test_closing_stops_the_worker_and_closes_the_items() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    stream = prefetched(items(), depth=2)
    assert next(stream) == 0
    before = {t.name for t in threading.enumerate()}
    stream.close()
    assert closed.is_set()  # closed (by the worker) before close() returned
    assert "sutro-prefetch" in before
    assert "sutro-prefetch" not in {t.name for t in threading.enumerate()}


def test_only_columns_that_repeat_are_dictionary_encoded(tmp_path: Path) -> None:
    rows = 1000
    table = pa.table({"label": ["a", "b"] * (rows // 2), "body": [f"text {i}" for i in range(rows)],
                      "reason": pa.nulls(rows, pa.string())})
    assert dictionary_columns(table.to_batches()[0]) == ["label", "reason"]
    out = tmp_path / "o.parquet"
    assert write_parquet(table.to_batches(max_chunksize=300), table.schema, str(out)) == rows
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups == 4
    encodings = {meta.schema.column(i).name: meta.row_group(0).column(i).encodings for i in range(3)}
    assert "RLE_DICTIONARY" in encodings["label"] and "RLE_DICTIONARY" not in encodings["body"]
    assert pq.read_table(out).equals(table)


def test_an_empty_stream_writes_an_empty_file(tmp_path: Path) -> None:
    schema = pa.schema([("label", pa.string())])
    out = tmp_path / "o.parquet"
    assert write_parquet(iter([]), schema, str(out)) == 0
    assert pq.read_table(out).schema.equals(schema)
