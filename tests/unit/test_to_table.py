"""inputs.sources.to_table: the one frame-to-Arrow converter (also dagster_sutro.frames.to_arrow)."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from sutro_providers.errors import SutroInputError
from sutro_providers.inputs.sources import to_table


def test_arrow_passes_through_and_readers_are_read_whole() -> None:
    table = pa.table({"a": [1, 2, 3]})
    assert to_table(table) is table
    assert to_table(pa.RecordBatchReader.from_batches(table.schema, table.to_batches())).equals(table)
    assert to_table(table.to_batches()[0]).equals(table)


def test_polars_lazy_and_lists_convert() -> None:
    frame = pl.DataFrame({"a": [1, None], "b": ["x", "y"]})
    assert to_table(frame).equals(frame.to_arrow())
    assert to_table(frame.lazy()).equals(frame.to_arrow())
    assert to_table([{"a": 1}, {"a": 2, "b": "late key"}]).to_pylist() == [{"a": 1, "b": None}, {"a": 2, "b": "late key"}]


def test_pandas_keeps_its_dtypes_through_arrow() -> None:
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"), "s": pd.array(["a", None, "c"], dtype="string")})
    table = to_table(frame)
    assert table.num_rows == 3 and b"pandas" in (table.schema.metadata or {})
    assert table.to_pandas().dtypes.to_dict() == frame.dtypes.to_dict()


def test_bad_values_name_the_column_and_row() -> None:
    with pytest.raises(SutroInputError, match=r"column 'v' mixes types: row 2"):
        to_table([{"v": 1}, {"v": "two"}, {"v": [3]}])  # text and numbers make a text column; a list does not fit
    with pytest.raises(SutroInputError, match=r"column 'v' mixes types: row 1"):
        to_table(pd.DataFrame({"v": [1, {"k": 2}, 3.0]}))
    assert to_table([{"v": 1}, {"v": "two"}])["v"].to_pylist() == ["1", "two"]
    with pytest.raises(SutroInputError, match="cannot read a table from dict"):
        to_table({"v": [1]})  # type: ignore[arg-type]


def test_pandas_with_pyarrow_backed_columns_converts() -> None:
    chunked = pa.table({"a": pa.chunked_array([["x", "y"], ["z"]]), "n": pa.chunked_array([[1], [2, 3]])})
    frame = chunked.to_pandas(types_mapper=pd.ArrowDtype)
    assert to_table(frame).to_pydict() == chunked.to_pydict()
