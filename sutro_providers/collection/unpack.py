"""Turn a Sutro results table (one JSON object per row) into typed columns.

A Function job's results have an ``outputs`` string column (one JSON object per
row), a ``confidence_score`` float column and the ``__sutro_row_id`` id column.
:func:`unpack_outputs` parses the JSON with Arrow's JSON reader (fast: about a
second per million rows) and falls back to ``json.loads`` per row only to
report errors exactly or for shapes the reader cannot type (object/array fields).

With a :class:`FunctionSpec` the columns and their types come from the spec, and
every row must match it: a required field missing or null, a value of the wrong
type, or a label/enum value outside the declared set raises
:class:`~sutro_providers.errors.SutroResultsError` naming up to five row ids.
Without a spec (real deployments do not publish them) the columns are the union
of the objects' keys in first-seen order, typed by Arrow; a key whose values mix
types becomes a text column (strings as is, other values as JSON).

Reasoning models may wrap each object as ``{"content": {...}, "reasoning_content": "..."}``;
the envelope is unwrapped (``content`` may also be a JSON string) and the
reasoning text dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from sutro_providers.columns import CONFIDENCE, CONFIDENCE_SCORE, OUTPUTS, ROW_ID
from sutro_providers.errors import SutroResultsError
from sutro_providers.function_spec import FunctionSpec

MAX_NAMED = 5
_TYPES = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_()}


@dataclass(frozen=True)
class OutputField:
    """One typed output field: ``kind`` is string/number/integer/boolean, or json
    (objects and arrays, kept as JSON text)."""

    name: str
    kind: str
    required: bool
    enum: frozenset[Any] | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return _TYPES.get(self.kind, pa.string())


def output_fields(spec: FunctionSpec) -> list[OutputField]:
    """The typed output fields of a Function, in output order."""
    if spec.kind == "classification":
        return [OutputField("label", "string", True, frozenset(spec.labels or ())),
                OutputField("rationale", "string", False)]
    schema = spec.output_schema or {}
    required = set(schema.get("required", ()))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type", "string" if "enum" in prop else "json")
        if isinstance(kind, list):  # ["string", "null"]
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if len(kinds) == 1 else "json"
        kind = kind if kind in _TYPES else "json"
        enum = frozenset(prop["enum"]) if "enum" in prop and kind == "string" else None
        fields.append(OutputField(name, kind, name in required, enum))
    return fields


def result_columns(spec: FunctionSpec | None, *, prefix: str = "") -> list[str]:
    """The result column names :func:`unpack_outputs` adds (without ``ROW_ID``).
    Without a spec only the confidence column is known in advance."""
    if spec is None:
        return [prefix + CONFIDENCE]
    names = [prefix + _column(f.name) for f in output_fields(spec)]
    names.insert(1 if spec.kind == "classification" else len(names), prefix + CONFIDENCE)
    return names


def result_schema(spec: FunctionSpec, *, prefix: str = "") -> pa.Schema:
    """The schema of :func:`unpack_outputs` for a spec: ``ROW_ID`` then :func:`result_columns`."""
    types = {prefix + _column(f.name): f.arrow_type for f in output_fields(spec)}
    types[prefix + CONFIDENCE] = pa.float64()
    return pa.schema([(ROW_ID, pa.int64())] + [(n, types[n]) for n in result_columns(spec, prefix=prefix)])


def unpack_outputs(results: pa.Table, spec: FunctionSpec | None, *, prefix: str = "") -> pa.Table:
    """``ROW_ID`` plus one typed column per output field (names prefixed with
    ``prefix``) plus ``confidence``; rows in the order of ``results``. Raises
    :class:`SutroResultsError` when a row is not a JSON object or does not match ``spec``."""
    for needed in (OUTPUTS, ROW_ID):
        if needed not in results.column_names:
            raise SutroResultsError(
                f"the results have no {needed!r} column (they have: {results.column_names})")
    ids = results[ROW_ID].combine_chunks().cast(pa.int64())
    outputs = results[OUTPUTS].combine_chunks()
    if not (pa.types.is_string(outputs.type) or pa.types.is_large_string(outputs.type)):
        raise SutroResultsError(f"the results' outputs column is {outputs.type}, not JSON text")
    what = f"results do not match Function {spec.name!r}" if spec else "results are not JSON objects"
    if outputs.null_count:
        rows = _ids_at(ids, outputs.is_null())
        raise SutroResultsError(f"{what}: the output of row(s) {rows} is null")
    fields = output_fields(spec) if spec else None
    columns = _fast(outputs, fields)
    if columns is None:
        columns = _slow(outputs.to_pylist(), ids, fields, what)
    if CONFIDENCE_SCORE in results.column_names:
        confidence = results[CONFIDENCE_SCORE].combine_chunks().cast(pa.float64())
    else:
        confidence = pa.nulls(len(ids), pa.float64())
    columns.pop(ROW_ID, None)
    names = [prefix + _column(n) for n in columns]
    arrays = list(columns.values())
    at = 1 if spec is not None and spec.kind == "classification" else len(names)
    names.insert(at, prefix + CONFIDENCE)
    arrays.insert(at, confidence)
    return pa.Table.from_arrays([ids, *arrays], names=[ROW_ID, *names])


def _column(key: str) -> str:
    """An output key's column name: a key named ``confidence`` becomes ``output_confidence``
    so it does not hide the server's confidence score."""
    return "output_confidence" if key == CONFIDENCE else key


def _ids_at(ids: pa.Array, mask: pa.Array) -> str:
    idx = pc.indices_nonzero(mask)
    shown = ", ".join(str(ids[i.as_py()].as_py()) for i in idx[:MAX_NAMED])
    return shown + (f" and {len(idx) - MAX_NAMED} more" if len(idx) > MAX_NAMED else "")


# -- fast path: Arrow's JSON reader ------------------------------------------------------------


def _fast(outputs: pa.Array, fields: list[OutputField] | None) -> dict[str, pa.Array] | None:
    """Parse with Arrow; ``None`` when the slow path must decide (parse errors, rows not
    matching the spec, envelope rows mixed with plain rows, JSON-typed fields)."""
    if fields is not None and any(f.kind == "json" for f in fields):
        return None
    schema = pa.schema([(f.name, f.arrow_type) for f in fields]) if fields is not None else None
    content = _envelope_content(outputs[0].as_py()) if len(outputs) else None
    if isinstance(content, str):  # {"content": "<JSON text>", ...}: parse the inner text
        envelope = _read_lines(outputs, pa.schema([("content", pa.string())]))
        if envelope is None or envelope["content"].null_count:
            return None
        outputs = envelope["content"].combine_chunks()
    if isinstance(content, dict):
        inner = pa.schema([("content", pa.struct(schema))]) if schema is not None else None
        envelope = _read_lines(outputs, inner)
        if envelope is None or "content" not in envelope.column_names or envelope["content"].null_count:
            return None
        struct = envelope["content"].combine_chunks()
        if not pa.types.is_struct(struct.type):
            return None
        table = pa.Table.from_struct_array(struct)
    else:
        table = _read_lines(outputs, schema)
        if table is None:
            return None
    if fields is None:
        return {n: table[n].combine_chunks() for n in table.column_names}
    columns = {f.name: table[f.name].combine_chunks() for f in fields}
    for f in fields:  # any mismatch: the slow path re-reads the rows to name them exactly
        col = columns[f.name]
        if f.required and col.null_count:
            return None
        if f.enum is not None and not pc.all(
                pc.or_(pc.is_in(col, pa.array(sorted(f.enum), col.type)), col.is_null())).as_py():
            return None
    return columns


def _envelope_content(value: str) -> Any:
    """The ``content`` of a reasoning envelope, or ``None`` if ``value`` is not one."""
    try:
        obj = json.loads(value)
    except ValueError:
        return None
    if isinstance(obj, dict) and "content" in obj and "reasoning_content" in obj:
        return obj["content"]
    return None


def _read_lines(strings: pa.Array, schema: pa.Schema | None) -> pa.Table | None:
    """One JSON value per string, via Arrow's newline-delimited JSON reader."""
    strings = strings.cast(pa.large_string())
    if not len(strings):
        return pa.table({f.name: pa.array([], f.type) for f in schema}) if schema else pa.table({})
    lines = pc.binary_join_element_wise(strings, pa.scalar("", pa.large_string()),
                                        pa.scalar("\n", pa.large_string()))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    text = np.frombuffer(data, dtype=np.uint8)
    if np.count_nonzero(text == 10) != len(lines) or np.count_nonzero(text == 13):
        # a newline or CR inside valid JSON can only be whitespace: blank it, keep the row ends
        text = text.copy()
        np.putmask(text, (text == 10) | (text == 13), 32)
        text[offsets[1:] - offsets[0] - 1] = 10
        data = pa.py_buffer(text)
    longest = int(np.diff(offsets).max())
    read = pj.ReadOptions(block_size=min(max(1 << 20, 2 * longest + 2), 2**31 - 1))
    parse = (pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
             if schema is not None else pj.ParseOptions(unexpected_field_behavior="infer"))
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=read, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return table if table.num_rows == len(strings) else None


# -- slow path: json.loads per row, exact error reporting --------------------------------------


def _slow(outputs: list[str], ids: pa.Array, fields: list[OutputField] | None,
          what: str) -> dict[str, pa.Array]:
    objects: list[dict[str, Any]] = []
    errors: list[str] = []
    bad_rows = 0
    for i, text in enumerate(outputs):
        obj, problem = _object(text)
        if obj is not None and fields is not None:
            problem = "; ".join(p for f in fields if (p := _check(f, obj.get(f.name, _MISSING))))
        if problem:
            bad_rows += 1
            if len(errors) < MAX_NAMED:
                errors.append(f"row {ids[i].as_py()}: {problem}")
        objects.append(obj or {})
    if errors:
        more = f" (and {bad_rows - len(errors)} more rows)" if bad_rows > len(errors) else ""
        raise SutroResultsError(f"{what}: " + "; ".join(errors) + more)
    if fields is not None:
        return {f.name: _typed(f, [o.get(f.name) for o in objects]) for f in fields}
    names = dict.fromkeys(k for o in objects for k in o)
    return {n: _inferred([o.get(n) for o in objects]) for n in names}


_MISSING = object()


def _object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        obj = json.loads(text)
    except ValueError:
        return None, f"output is not valid JSON: {text[:80]!r}"
    if isinstance(obj, dict) and "content" in obj and "reasoning_content" in obj:
        obj = obj["content"]
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except ValueError:
                return None, f"the content of the output is not JSON: {obj[:80]!r}"
    if not isinstance(obj, dict):
        return None, f"output is not a JSON object: {text[:80]!r}"
    return obj, None


def _check(field: OutputField, value: Any) -> str | None:
    if value is _MISSING or value is None:
        if not field.required:
            return None
        return f"field {field.name!r} is {'missing' if value is _MISSING else 'null'}"
    kind = field.kind
    ok = (
        kind == "json"
        or (kind == "string" and isinstance(value, str))
        or (kind == "boolean" and isinstance(value, bool))
        or (kind == "number" and isinstance(value, int | float) and not isinstance(value, bool))
        or (kind == "integer" and not isinstance(value, bool)
            and (isinstance(value, int) or (isinstance(value, float) and value.is_integer())))
    )
    if not ok:
        return f"field {field.name!r} should be {kind}, got {json.dumps(value)[:60]}"
    if field.enum is not None and value not in field.enum:
        return f"field {field.name!r} is {value!r}, not one of {sorted(field.enum)}"
    return None


def _typed(field: OutputField, values: list[Any]) -> pa.Array:
    if field.kind == "json":
        values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
    elif field.kind == "integer":
        values = [None if v is None else int(v) for v in values]
    return pa.array(values, field.arrow_type)


def _inferred(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                         for v in values], pa.string())
