"""A SQL query as a stream of Arrow record batches (a :class:`SourceReader`).

:func:`open_sql` runs the query and returns a reader whose ``schema`` is known
from the first batch; :meth:`SourceReader.batches` streams the rest, so staging
writes the source snapshot as the rows arrive and memory stays at a few batches
whatever the table size. Each further call of ``batches()`` runs the query again
(a retry re-reads its input to compare fingerprints).

Paths, fastest first (the first that fits the :class:`~sutro_providers.database.Database`):

* PostgreSQL and SQLite with a ``uri`` and no ``parameters``: ADBC
  (``adbc-driver-postgresql``/``adbc-driver-sqlite``, Arrow straight from the
  wire; PostgreSQL uses ``COPY ... TO STDOUT (FORMAT binary)``);
* DuckDB with a ``uri`` (or a ``connect`` giving DuckDB connections, e.g. cursors of
  a connection the process holds: a file cannot be opened twice with different
  settings in one process): DuckDB's own Arrow reader. While one DuckDB stream of a
  file is suspended half-read, start no second one on the same file;
* ``adbc_driver`` given: that ADBC driver on ``uri``;
* otherwise any DB-API connection (``connect``): ``cursor.fetchmany(batch_size)``
  on a server-side cursor where the driver has one (``cursor(name=...)``:
  psycopg 2/3), with the schema fixed from the cursor description and the
  first batch. Queries with ``parameters`` always take this path, since their
  placeholders follow the DB-API driver.

Types that survive every path: integers, floats, booleans, numerics
(``decimal128(p, s)``: PostgreSQL ``numeric(p,s)`` keeps its precision and
scale; an unconstrained ``numeric`` gets precision 38 and the largest scale of
the first batch, at least 6), dates, timestamps (with time zone: UTC), text.
UUID becomes its canonical text, JSON its text (a destination ``uuid``/``json``
column reads both back). A value that does not fit the fixed schema (a later
batch holding a float in an integer column, a numeric with more decimals than the
first batch had) raises :class:`~sutro_providers.errors.SutroInputError` naming
the column and row. Driver errors are wrapped in it too, without the URI.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import json
import logging
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.database import Database
from sutro_providers.errors import SutroInputError
from sutro_providers.inputs.sources import SourceReader

log = logging.getLogger("sutro_providers.inputs.sql")
MIN_NUMERIC_SCALE = 6

# PostgreSQL type OIDs, as DB-API drivers report them in cursor.description (psycopg 2/3)
_PG_OIDS: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(), 701: pa.float64(),
    25: pa.string(), 1043: pa.string(), 1042: pa.string(), 114: pa.string(), 3802: pa.string(), 2950: pa.string(),
    1082: pa.date32(), 1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"),
}


def open_sql(database: Database, query: str, parameters: Any = None, *, batch_size: int = 65_536) -> SourceReader:
    """Run ``query`` on ``database`` and stream its rows (see the module docstring).

    The query runs once here (for the schema) and the open result is consumed by the
    first :meth:`SourceReader.batches`; later passes run it again."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    open_stream = _chooser(database, query, parameters, batch_size)
    first = _Stream.open(open_stream, database)
    pending: list[_Stream] = [first]

    def batches() -> Iterator[pa.RecordBatch]:
        stream = pending.pop() if pending else _Stream.open(open_stream, database)
        with stream:
            yield from stream.batches(first.schema)

    reader = SourceReader(first.schema, batches, num_rows=None, batch_size=batch_size,
                          description=f"SQL query on {database.dialect}", close=lambda: _close_pending(pending))
    weakref.finalize(reader, _close_pending, pending)  # a reader never iterated closes its open result
    return reader


def _close_pending(pending: list[_Stream]) -> None:
    while pending:
        pending.pop().__exit__(None, None, None)


# -- the paths -------------------------------------------------------------------------------


Opened = tuple[ExitStack, Iterator[pa.RecordBatch]]
"""What a path opens: the resources to close, and raw batches (normalised later)."""


def _chooser(database: Database, query: str, parameters: Any, batch_size: int) -> Callable[[], Opened]:
    uri = database.uri
    if parameters is None and database.dialect == "duckdb":
        if database.connect is not None:  # e.g. a cursor of a connection this process holds
            factory = database.connect
            return lambda: _duckdb(factory(), query, batch_size)
        if uri is not None:
            return lambda: _duckdb(_duckdb_file(uri), query, batch_size)
    if parameters is None and uri is not None:
        module = {"postgresql": "adbc_driver_postgresql", "sqlite": "adbc_driver_sqlite"}.get(database.dialect)
        module = database.adbc_driver or module
        if module is not None and _importable(f"{module}.dbapi"):
            return lambda: _adbc(module, uri, query, batch_size)
    if database.connect is None and not (database.uri and database.dialect != "generic"):
        raise SutroInputError(f"cannot read a SQL query with parameters from a {database.dialect} Database "
                              "without a DB-API connect factory")
    return lambda: _dbapi(database, query, parameters, batch_size)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _adbc(module: str, uri: str, query: str, batch_size: int) -> Opened:
    dbapi = importlib.import_module(f"{module}.dbapi")
    stack = ExitStack()
    try:
        conn = stack.enter_context(dbapi.connect(uri))
        cur = stack.enter_context(conn.cursor())
        if module == "adbc_driver_postgresql":
            cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(4 << 20)})
        cur.execute(query)
        reader = cur.fetch_record_batch()
        stack.callback(reader.close)  # before the cursor and connection (ADBC refuses otherwise)
    except BaseException:
        stack.close()
        raise
    return stack, iter(reader)


def _duckdb_file(path: str) -> Any:
    import duckdb

    try:
        return duckdb.connect(path, read_only=True)
    except duckdb.ConnectionException:  # this process has it open read-write already
        return duckdb.connect(path)


def _duckdb(conn: Any, query: str, batch_size: int) -> Opened:
    stack = ExitStack()
    try:
        stack.callback(conn.close)
        reader = conn.sql(query).to_arrow_reader(batch_size)
    except BaseException:
        stack.close()
        raise
    return stack, iter(reader)


def _dbapi(database: Database, query: str, parameters: Any, batch_size: int) -> Opened:
    stack = ExitStack()
    try:
        conn = database.dbapi()
        stack.callback(conn.close)
        cur = _server_side_cursor(conn)
        stack.callback(cur.close)
        if hasattr(cur, "itersize"):
            cur.itersize = batch_size
        cur.execute(query, parameters) if parameters is not None else cur.execute(query)
    except BaseException:
        stack.close()
        raise
    return stack, _fetchmany(cur, batch_size)


def _server_side_cursor(conn: Any) -> Any:
    """A named (server-side) cursor where the driver has them, so ``execute`` does not
    pull the whole result into the client (psycopg 2 and 3 do, with a plain cursor)."""
    module = type(conn).__module__
    if module.startswith(("psycopg2", "psycopg")):
        return conn.cursor(name="sutro_read")
    return conn.cursor()


def _fetchmany(cur: Any, batch_size: int) -> Iterator[pa.RecordBatch]:
    schema: pa.Schema | None = None
    converters: list[Callable[[list[Any]], list[Any]]] = []
    row = 0
    while True:
        rows = cur.fetchmany(batch_size)
        if not rows and schema is not None:
            return
        names = [d[0] for d in cur.description or []]
        columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in names]
        if schema is None:
            schema, converters = _dbapi_schema(cur.description or [], columns)
        arrays = []
        for field, convert, values in zip(schema, converters, columns, strict=True):
            try:
                arrays.append(pa.array(convert(values), type=field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as exc:
                raise SutroInputError(_misfit(field, values, row, exc)) from exc
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        row += len(rows)
        if not rows:
            return


def _misfit(field: pa.Field, values: list[Any], first_row: int, exc: Exception) -> str:
    for i, value in enumerate(values):
        try:
            pa.array([value], type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            return (f"column {field.name!r}, row {first_row + i}: {value!r:.80} ({type(value).__name__}) does not "
                    f"fit the column type {field.type} fixed from the first batch; CAST it in the query ({exc})")
    return f"column {field.name!r} near row {first_row}: cannot convert to {field.type} ({exc})"


def _text(values: list[Any]) -> list[Any]:
    return [v if v is None or isinstance(v, str) else
            json.dumps(v, default=str) if isinstance(v, dict | list) else str(v) for v in values]


def _same(values: list[Any]) -> list[Any]:
    return values


def _utc(values: list[Any]) -> list[Any]:
    return [v.astimezone(dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is not None else v for v in values]


def _dbapi_schema(description: Any, columns: list[list[Any]]) -> tuple[pa.Schema, list[Callable[[list[Any]], list[Any]]]]:
    """The fixed schema: the description's type code where it is a PostgreSQL OID,
    else what the first batch holds; all-NULL columns without a type are text."""
    fields: list[pa.Field] = []
    converters: list[Callable[[list[Any]], list[Any]]] = []
    for desc, values in zip(description, columns, strict=True):
        name, code = desc[0], desc[1]
        sample = next((v for v in values if v is not None), None)
        declared = _PG_OIDS.get(code) if isinstance(code, int) else None
        if isinstance(code, int) and code == 1700 or isinstance(sample, decimal.Decimal):
            kind: pa.DataType = _decimal_type(desc, values)
            convert = _same
        elif isinstance(sample, uuid.UUID | dict | list) or (declared is not None and pa.types.is_string(declared)):
            kind, convert = pa.string(), _text
        elif declared is not None:
            kind, convert = declared, _utc if pa.types.is_timestamp(declared) else _same
        elif sample is None:
            kind, convert = pa.string(), _text
        elif isinstance(sample, dt.datetime) and sample.tzinfo is not None:
            kind, convert = pa.timestamp("us", tz="UTC"), _utc
        else:
            try:
                kind = pa.array(values).type
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise SutroInputError(f"column {name!r} mixes types in the first batch: {exc}") from exc
            convert = _same
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                kind, convert = pa.string(), _text
        fields.append(pa.field(name, kind))
        converters.append(convert)
    return pa.schema(fields), converters


def _decimal_type(desc: Any, values: list[Any]) -> pa.DataType:
    precision, scale = (desc[4], desc[5]) if len(desc) > 5 else (None, None)
    if precision and scale is not None and 0 < precision <= 38 and precision != 65535:
        return pa.decimal128(precision, scale)
    exponents = [v.as_tuple().exponent for v in values if isinstance(v, decimal.Decimal) and v.is_finite()]
    return pa.decimal128(38, max([MIN_NUMERIC_SCALE, *[-e for e in exponents if isinstance(e, int)]]))


# -- normalising Arrow from ADBC / DuckDB ----------------------------------------------------


class _Stream:
    """One execution of the query: its resources and its batches, normalised."""

    def __init__(self, stack: ExitStack, raw: Iterator[pa.RecordBatch], database: Database) -> None:
        self._stack, self._raw, self._database = stack, raw, database
        self._head: pa.RecordBatch | None = None
        self._plan: list[Callable[[pa.Array], pa.Array]] = []
        self.schema: pa.Schema = pa.schema([])

    @classmethod
    def open(cls, opener: Callable[[], Opened], database: Database) -> _Stream:
        try:
            stack, raw = opener()
        except SutroInputError:
            raise
        except Exception as exc:
            raise SutroInputError(f"the SQL query failed: {database.scrubbed(exc)}") from exc
        stream = cls(stack, raw, database)
        try:
            stream._head = stream._next()
            if stream._head is None:  # no rows; the schema still comes from the reader
                schema = getattr(raw, "schema", None)
                stream._head = pa.RecordBatch.from_pylist([], schema=schema) if schema is not None else None
            stream._plan, stream.schema = _plan(stream._head.schema if stream._head is not None else pa.schema([]),
                                                 stream._head)
        except BaseException:
            stack.close()
            raise
        return stream

    def _next(self) -> pa.RecordBatch | None:
        try:
            return next(self._raw, None)
        except SutroInputError:
            raise
        except Exception as exc:
            raise SutroInputError(f"reading the SQL result failed: {self._database.scrubbed(exc)}") from exc

    def batches(self, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        if not self.schema.equals(schema):
            raise SutroInputError(f"the SQL query returned another schema on a second pass: {self.schema} vs {schema}")
        batch, row = self._head, 0
        self._head = None
        while batch is not None:
            if batch.num_rows:
                yield self._convert(batch, row)
                row += batch.num_rows
            batch = self._next()

    def _convert(self, batch: pa.RecordBatch, row: int) -> pa.RecordBatch:
        arrays = []
        for field, step, column in zip(self.schema, self._plan, batch.columns, strict=True):
            try:
                arrays.append(_owned(step(column)))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise SutroInputError(f"column {field.name!r} near row {row}: does not fit {field.type} "
                                      f"fixed from the first batch; CAST it in the query ({exc})") from exc
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _plan(schema: pa.Schema, head: pa.RecordBatch | None) -> tuple[list[Callable[[pa.Array], pa.Array]], pa.Schema]:
    steps, fields = [], []
    for i, field in enumerate(schema):
        step, kind = _column_plan(field, head.column(i) if head is not None else None)
        steps.append(step)
        fields.append(pa.field(field.name, kind))
    return steps, pa.schema(fields)


def _column_plan(field: pa.Field, head: pa.Array | None) -> tuple[Callable[[pa.Array], pa.Array], pa.DataType]:
    kind = field.type
    if isinstance(kind, pa.BaseExtensionType):
        name = kind.extension_name
        storage = kind.storage_type
        if name == "arrow.uuid":
            return _uuid_text, pa.string()
        if name == "arrow.opaque" and getattr(kind, "type_name", "") == "numeric":
            target = _numeric_type(field, head)
            return (lambda a, t=target: pc.cast(_storage(a), t)), target
        return (lambda a, t=storage: _storage(a).cast(t)), storage
    if pa.types.is_timestamp(kind) and kind.tz is not None and kind.tz != "UTC":
        target = pa.timestamp(kind.unit, tz="UTC")
        return (lambda a, t=target: a.cast(t)), target
    if pa.types.is_large_string(kind):
        return (lambda a: a.cast(pa.string())), pa.string()
    if pa.types.is_null(kind):
        return (lambda a: a.cast(pa.string())), pa.string()
    return (lambda a, t=kind: a if a.type == t else a.cast(t)), kind


def _owned(array: pa.Array) -> pa.Array:
    """``array`` in memory of its own. Arrays imported from a driver through the Arrow C
    interface (ADBC, DuckDB) share one release callback per batch: a slice of one
    column kept later (the id check keeps the id column) would keep the whole batch
    alive, and memory would follow the table size. Concatenating allocates anew."""
    return pa.concat_arrays([array, array.slice(0, 0)])


def _storage(array: pa.Array) -> pa.Array:
    return array.storage if isinstance(array, pa.ExtensionArray) else array


def _numeric_type(field: pa.Field, head: pa.Array | None) -> pa.DataType:
    meta = field.metadata or {}
    typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
    if typmod >= 4:
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        if 0 < precision <= 38:
            return pa.decimal128(precision, scale)
    scale = MIN_NUMERIC_SCALE
    if head is not None and len(head):
        text = _storage(head)
        fraction = pc.utf8_length(pc.replace_substring_regex(text, r"^[^.]*\.?", ""))
        longest = pc.max(fraction).as_py()
        scale = max(scale, int(longest or 0))
    return pa.decimal128(38, min(scale, 37))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASHES = (8, 12, 16, 20)


def _uuid_text(array: pa.Array) -> pa.Array:
    """16-byte UUIDs as canonical text (``8-4-4-4-12`` lowercase hex), vectorised."""
    storage = _storage(array)
    n = len(storage)
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8, count=16 * (n + storage.offset))[16 * storage.offset:]
    nibbles = np.empty((n, 32), dtype=np.uint8)
    pairs = raw.reshape(n, 16)
    nibbles[:, 0::2], nibbles[:, 1::2] = _HEX[pairs >> 4], _HEX[pairs & 15]
    text = np.insert(nibbles, _DASHES, ord("-"), axis=1)
    offsets = pa.py_buffer(np.arange(0, 36 * (n + 1), 36, dtype=np.int32).tobytes())
    validity = storage.buffers()[0] if storage.null_count else None
    if validity is not None and storage.offset:
        validity = pc.is_valid(storage).buffers()[1]
    return pa.Array.from_buffers(pa.string(), n, [validity, offsets, pa.py_buffer(text.tobytes())],
                                 null_count=storage.null_count)


__all__ = ["open_sql"]
