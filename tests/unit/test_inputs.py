"""open_source: every kind of table source streams the same Arrow batches."""

from __future__ import annotations

import io
from pathlib import Path

import fsspec
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.errors import SutroInputError
from sutro_providers.function_spec import InputField
from sutro_providers.inputs.sources import SourceReader, open_source
from sutro_providers.inputs.validation import InputValidator

ROWS = [
    {"name": "Ada", "age": 36, "score": 0.5, "active": True, "note": "x"},
    {"name": "Grace", "age": None, "score": 1.0, "active": False, "note": None},
    {"name": "Ünïcode ✓", "age": 7, "score": None, "active": True, "note": "a, \"quoted\" one"},
    {"name": "", "age": 0, "score": -2.25, "active": None, "note": "multi\nline"},
    {"name": "Eve", "age": 41, "score": 3.0, "active": False, "note": "z"},
]
FIELDS = [
    InputField(name="name", type="string"),
    InputField(name="age", type="integer", required=False),
    InputField(name="score", type="number", required=False),
    InputField(name="active", type="boolean", required=False),
    InputField(name="note", type="string", required=False),
]
CSV = (
    'name,age,score,active,note\n'
    'Ada,36,0.5,true,x\n'
    'Grace,,1.0,false,\n'
    'Ünïcode ✓,7,,true,"a, ""quoted"" one"\n'
    '"",0,-2.25,,"multi\nline"\n'
    'Eve,41,3.0,false,z\n'
)


def _expected() -> pa.RecordBatch:
    cols = {f.name: [r[f.name] for r in ROWS] for f in FIELDS}
    schema = pa.schema([("name", pa.string()), ("age", pa.int64()), ("score", pa.float64()),
                        ("active", pa.bool_()), ("note", pa.string())])
    return pa.RecordBatch.from_pydict(cols, schema=schema)


def _sources(tmp_path: Path) -> dict[str, object]:
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=2)
    (tmp_path / "t.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "parts").mkdir()
    pq.write_table(table.slice(0, 3), tmp_path / "parts" / "a.parquet")
    pq.write_table(table.slice(3), tmp_path / "parts" / "b.parquet")
    mem = fsspec.filesystem("memory")
    with mem.open("/inputs/t.parquet", "wb") as f:
        pq.write_table(table, f)
    with mem.open("/inputs/t.csv", "wb") as f:
        f.write(CSV.encode())
    return {
        "list": list(ROWS),
        "pandas": pd.DataFrame(ROWS),
        "polars": pl.DataFrame(ROWS),
        "polars-lazy": pl.DataFrame(ROWS).lazy(),
        "arrow": table,
        "arrow-dict-strings": table.set_column(0, "name", table["name"].dictionary_encode()),
        "reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2)),
        "csv": tmp_path / "t.csv",
        "parquet": str(tmp_path / "t.parquet"),
        "parquet-dir": str(tmp_path / "parts"),
        "parquet-glob": str(tmp_path / "parts" / "*.parquet"),
        "memory-parquet": "memory://inputs/t.parquet",
        "memory-csv": "memory://inputs/t.csv",
    }


def test_every_source_gives_the_same_batches(tmp_path: Path) -> None:
    expected = _expected()
    for kind, source in _sources(tmp_path).items():
        reader = open_source(source, batch_size=2)
        assert isinstance(reader, SourceReader)
        validator = InputValidator("f", FIELDS)
        validator.check_schema(reader.schema)
        batches = list(reader.batches())
        assert all(b.num_rows <= 2 for b in batches), kind
        first = 0
        out = []
        for b in batches:
            assert validator.check_batch(b, first) is None, kind
            first += b.num_rows
            out.append(validator.cast_for_submit(b))
        got = pa.Table.from_batches(out).combine_chunks().to_batches()[0]
        assert got.schema.equals(expected.schema), (kind, got.schema)
        assert got.equals(expected), (kind, got.to_pylist())


def test_num_rows_known_when_cheap(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    assert open_source(sources["arrow"]).num_rows == 5
    assert open_source(sources["pandas"]).num_rows == 5
    assert open_source(sources["parquet"]).num_rows == 5
    assert open_source(sources["parquet-dir"]).num_rows == 5
    assert open_source(sources["csv"]).num_rows is None
    assert open_source(sources["reader"]).num_rows is None


def test_large_batches_are_split() -> None:
    table = pa.table({"a": list(range(10))})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    sizes = [b.num_rows for b in open_source(reader, batch_size=3).batches()]
    assert sizes == [3, 3, 3, 1]


def test_pandas_is_converted_in_slices_with_one_schema() -> None:
    df = pd.DataFrame({"a": [None, None, "x", "y"], "b": [1, 2, 3, 4]})
    reader = open_source(df, batch_size=2)
    batches = list(reader.batches())
    assert [b.schema for b in batches] == [reader.schema, reader.schema]
    assert b"pandas" not in (reader.schema.metadata or {})


def test_text_mixed_with_numbers_in_list_of_dicts_is_text() -> None:
    rows = [{"id": i, "v": i} for i in range(10)] + [{"id": 10, "v": "eleven"}, {"id": 11, "v": 2.5}]
    (batch,) = open_source(rows).batches()
    assert batch.schema.field("v").type == pa.string() and batch.schema.field("id").type == pa.int64()
    assert batch.column("v").to_pylist() == [str(i) for i in range(10)] + ["eleven", "2.5"]


def test_mixed_types_in_list_of_dicts_names_row_and_column() -> None:
    rows = [{"id": i, "v": i} for i in range(10)] + [{"id": 10, "v": "eleven"}, {"id": 11, "v": [11]}]
    with pytest.raises(SutroInputError, match=r"column 'v' mixes types: row 11 holds \[11\] \(list\), which is "
                                              r"neither text nor a number"):
        open_source(rows)


def test_mixed_types_first_offender_across_columns() -> None:
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": {"k": 3}}, {"a": [3], "b": "y"}]
    with pytest.raises(SutroInputError, match=r"column 'b' mixes types: row 1 holds \{'k': 3\} \(dict\)"):
        open_source(rows)


def test_timestamps_mixed_with_text_are_refused() -> None:
    import datetime as dt

    rows = [{"t": "soon"}, {"t": dt.datetime(2026, 11, 20, 9, 30)}]
    with pytest.raises(SutroInputError, match=r"column 't' mixes types: row 1 holds datetime"):
        open_source(rows)


def test_list_rows_must_be_dicts() -> None:
    with pytest.raises(SutroInputError, match="row 1 of the list is a str"):
        open_source([{"a": 1}, "b"])


def test_text_mixed_with_numbers_in_pandas_object_column_is_text() -> None:
    import datetime as dt

    df = pd.DataFrame({"a": pd.Series(["x", "y", 3, None, float("nan"), True, dt.date(2026, 11, 20)], dtype=object),
                       "n": range(7)})
    reader = open_source(df, batch_size=3)
    assert reader.schema == pa.schema([("a", pa.string()), ("n", pa.int64())])
    batches = list(reader.batches())
    assert [b.schema for b in batches] == [reader.schema] * 3
    assert pa.Table.from_batches(batches).to_pydict() == {
        "a": ["x", "y", "3", None, None, "true", "2026-11-20"], "n": list(range(7))}


def test_mixed_types_in_pandas_object_column() -> None:
    df = pd.DataFrame({"a": ["x", "y", 3, {"z": 1}]})
    with pytest.raises(SutroInputError, match=r"column 'a' mixes types: row 3 holds \{'z': 1\} \(dict\)"):
        list(open_source(df).batches())


def test_non_utf8_csv_names_the_row(tmp_path: Path) -> None:
    lines = ["a,b"] + [f"row{i},{i}" for i in range(1000)]
    data = "\n".join(lines).encode() + b"\n"
    data = data.replace(b"row700,", b"r\xffw700,")
    (tmp_path / "bad.csv").write_bytes(data)
    reader = open_source(tmp_path / "bad.csv", batch_size=64)
    with pytest.raises(SutroInputError, match=r"not valid UTF-8: column 'a', data row 700"):
        list(reader.batches())


def test_non_utf8_in_first_csv_row(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_bytes(b"a,b\n\xff,1\n")
    with pytest.raises(SutroInputError, match=r"column 'a', data row 0"):
        list(open_source(tmp_path / "bad.csv").batches())


def test_unknown_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SutroInputError, match="does not exist"):
        open_source(tmp_path / "missing.parquet")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(SutroInputError, match="cannot tell the format"):
        open_source(tmp_path / "t.txt")
    with pytest.raises(SutroInputError, match="cannot read a table from BytesIO"):
        open_source(io.BytesIO(b""))  # type: ignore[arg-type]
    with pytest.raises(SutroInputError, match="no Parquet files match"):
        open_source(str(tmp_path / "*.parquet"))


def test_parquet_parts_with_different_schemas(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"a": ["x"]}), tmp_path / "2.parquet")
    with pytest.raises(SutroInputError, match="different schema"):
        open_source(str(tmp_path))


def test_a_csv_source_reads_again_with_the_types_it_first_inferred(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,score,body\n1,2,a\n2,,b\n3,4.5,c\n")
    reader = open_source(str(path), batch_size=2)
    first = pa.Table.from_batches(list(reader.batches()))
    assert first.schema.field("score").type == pa.float64()
    path.write_text("id,score,body\n1,2,a\n2,3,b\n3,4,c\n")  # would infer int64 now
    again = pa.Table.from_batches(list(reader.batches()))
    assert again.schema == first.schema and again.column("score").to_pylist() == [2.0, 3.0, 4.0]
    unread = open_source(str(path))
    unread.close()  # the opening for the schema is closed; a read opens the file anew
    assert pa.Table.from_batches(list(unread.batches())).num_rows == 3
