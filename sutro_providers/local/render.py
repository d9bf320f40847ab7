"""Turn row values into prompt text, identically for JSON, CSV and Parquet rows.

Rules (shared by batch jobs and ``functions/{name}/run``): ``null``/NaN → ``""``,
objects and lists → JSON text, everything else → ``str(value)``. Integer
columns render like Python ints (``3`` → ``"3"``) whichever way they arrived.
A Function prompt is one ``name: value`` line per declared input, in declared
order, joined by newlines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def is_missing(value: Any) -> bool:
    """``None`` or a float NaN (pandas' missing value, sent as a bare ``NaN``)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def render_value(value: Any) -> str:
    """Render one JSON value as prompt text."""
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_values(values: Sequence[Any]) -> pa.Array:
    """Render a list of JSON values to a string array."""
    return pa.array([render_value(v) for v in values], type=pa.string())


def render_column(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Render an Arrow column with the same rules as :func:`render_value`.

    Strings and integers are converted with Arrow kernels (fast path); every
    other type goes through Python values so floats, booleans, lists and
    structs render exactly as they would from JSON.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    typ = column.type
    if pa.types.is_dictionary(typ):
        column = column.dictionary_decode()
        typ = column.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_integer(typ):
        return pc.fill_null(pc.cast(column, pa.string()), "")
    if pa.types.is_null(typ):
        return pa.array([""] * len(column), type=pa.string())
    return render_values(column.to_pylist())


def build_prompts(names: Sequence[str], columns: Sequence[pa.Array]) -> pa.Array:
    """``name: value`` lines joined by ``\\n``, one prompt per row."""
    if not columns:
        raise ValueError("at least one column is needed to build prompts")
    parts: list[Any] = []
    for i, (name, col) in enumerate(zip(names, columns, strict=True)):
        parts.append(("\n" if i else "") + f"{name}: ")
        parts.append(col)
    return pc.binary_join_element_wise(*parts, "")


def render_object_row(row: dict[str, Any], names: Sequence[str]) -> str:
    """The prompt of one object row: what :func:`build_prompts` makes of it, built in
    plain Python (an Arrow kernel call per row costs more than the row)."""
    return "\n".join(f"{name}: {render_value(row.get(name))}" for name in names)
