"""Conversions between the table types Dagster assets hand around.

Everything goes through Arrow: polars, pandas and :class:`pyarrow.Table` are
converted to and from a :class:`pyarrow.Table` without copying where the
libraries allow it; the conversion to Arrow is the core's
(:func:`sutro_providers.inputs.sources.to_table`). polars and pandas are imported
lazily, so a project that uses only one of them does not need the other.

Example::

    import pyarrow as pa
    from dagster_sutro.frames import from_arrow, to_arrow

    table = to_arrow([{"subject": "Refund", "body": "Charged twice"}])
    frame = from_arrow(table, "polars")
    assert to_arrow(frame).num_rows == 1
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

import pyarrow as pa

from sutro_providers.inputs.sources import to_table

OutputFormat = Literal["polars", "pandas", "arrow"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)


def _module(obj: object) -> str:
    return type(obj).__module__.split(".")[0]


def is_polars(obj: object) -> bool:
    return _module(obj) == "polars" and type(obj).__name__ in ("DataFrame", "LazyFrame")


def is_pandas(obj: object) -> bool:
    return _module(obj) == "pandas" and type(obj).__name__ == "DataFrame"


def to_arrow(obj: Any) -> pa.Table:
    """Return ``obj`` (polars, pandas, Arrow table or record batch reader, or a
    list of dicts) as a :class:`pyarrow.Table`: the core's converter
    (:func:`sutro_providers.inputs.sources.to_table`), whose errors name the column
    and row at fault. A path is not a table here (an asset returns data, not a file name)."""
    if isinstance(obj, str | os.PathLike):
        raise TypeError(f"cannot convert {type(obj).__name__} to an Arrow table")
    return to_table(obj)


def column_names(obj: Any) -> list[str] | None:
    """The column names of a table-like value without reading its rows (polars,
    pandas, Arrow, a :class:`~sutro_providers.inputs.sources.SourceReader`); ``None``
    for anything else (a path, a list of dicts)."""
    if isinstance(obj, pa.Table | pa.RecordBatch):
        return list(obj.schema.names)
    schema = getattr(obj, "schema", None)
    if isinstance(schema, pa.Schema):  # a SourceReader, a RecordBatchReader
        return list(schema.names)
    if is_polars(obj):
        return [str(c) for c in obj.collect_schema().names()]
    if is_pandas(obj):
        return [str(c) for c in obj.columns]
    return None


def from_arrow(table: pa.Table, output_format: OutputFormat) -> Any:
    """Return ``table`` as a polars or pandas DataFrame, or unchanged for ``arrow``."""
    if output_format == "arrow":
        return table
    if output_format == "polars":
        import polars as pl

        result = pl.from_arrow(table)
        assert isinstance(result, pl.DataFrame)
        return result
    if output_format == "pandas":
        return table.to_pandas()
    raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, not {output_format!r}")


def format_for_type(typing_type: Any, default: OutputFormat) -> OutputFormat:
    """The table format an input annotation asks for (``default`` when unannotated)."""
    module = getattr(typing_type, "__module__", "") or ""
    name = getattr(typing_type, "__name__", "")
    if typing_type is pa.Table:
        return "arrow"
    if module.startswith("polars") and name == "DataFrame":
        return "polars"
    if module.startswith("pandas") and name == "DataFrame":
        return "pandas"
    return default


def concat(tables: Iterable[pa.Table]) -> pa.Table:
    """Concatenate Arrow tables whose schemas may differ in column order or nullability."""
    tables = [t for t in tables if t is not None]
    if not tables:
        return pa.table({})
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def combine_partitions(value: Any) -> Any:
    """An upstream loaded as ``{partition_key: frame}`` (several partitions through a
    file IO manager) becomes one table; anything else is returned unchanged."""
    if isinstance(value, Mapping):
        return concat(to_arrow(v) for _, v in sorted(value.items()))
    return value
