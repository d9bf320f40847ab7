"""The one loader interface, and the DB-API loader every SQL loader builds on.

A loader replaces ONE partition of a table (the rows whose ``partition_column``
equals ``partition``) with the rows of the enriched Parquet file, atomically:
the delete and the load share one transaction, so a reader (or a load killed
half way) sees the old partition or the whole new one. Three methods:

* :meth:`Loader.columns` -- the table's column names, ``None`` when it does not exist
  (the pre-flight check, :mod:`sutro_providers.landing.preflight`);
* :meth:`Loader.create` -- create the table from the enriched Arrow schema
  (``create_destination_table=True``);
* :meth:`Loader.replace` -- the partition replace; returns the rows loaded.

:class:`DbapiLoader` implements all three on any DB-API connection (its
``insert`` is ``executemany``, the generic fallback); a faster loader overrides
``insert`` only (or ``statements``, for warehouses that load from object storage).
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from fsspec.core import url_to_fs

from sutro_providers.database import Database, check_identifier, quote
from sutro_providers.errors import SutroDestinationError, SutroDestinationSchemaError
from sutro_providers.parquet_io import open_parquet, row_group_batches

log = logging.getLogger("sutro_providers.landing")


LOAD_READ_AHEAD = 64 * 2**20
"""Bytes fetched per ranged GET while a load reads the enriched Parquet front to back
(the output has a row group per 65,536-row batch, a few MiB each: several row groups a
GET instead of a GET each). Costs one such block of memory during the load."""


@dataclass
class LoadRequest:
    """What to load where.

    :param table: the destination (plain identifier, optionally schema-qualified).
    :param columns: the enriched columns to insert, in order (the partition column
        is added by the loader).
    :param partition_column: the destination column that names the partition.
    :param partition: its value for these rows.
    :param uri: the enriched Parquet file (``None``: no rows, the partition is emptied).
    :param storage_options: fsspec options for ``uri``.
    :param batch_size: rows per batch read from ``uri``.
    """

    table: str
    columns: list[str]
    partition_column: str
    partition: str
    uri: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    batch_size: int = 65_536

    def __post_init__(self) -> None:
        check_identifier(self.table)
        check_identifier(self.partition_column)
        if self.partition_column in self.columns:
            self.columns = [c for c in self.columns if c != self.partition_column]

    def file_schema(self) -> pa.Schema:
        """The schema of the whole Parquet file (all enriched columns)."""
        if self.uri is None:
            return pa.schema([])
        import pyarrow.parquet as pq

        fs, path = url_to_fs(self.uri, **self.storage_options)
        with open_parquet(fs, path) as handle:
            return pq.ParquetFile(handle).schema_arrow

    def schema(self) -> pa.Schema:
        """The Arrow types of :attr:`columns` (checked against the file)."""
        if self.uri is None:
            return pa.schema([])
        full = self.file_schema()
        missing = [c for c in self.columns if c not in full.names]
        if missing:
            raise SutroDestinationSchemaError(f"columns {missing} are not in the enriched table ({full.names})")
        return pa.schema([full.field(c) for c in self.columns])

    def num_rows(self) -> int:
        if self.uri is None:
            return 0
        import pyarrow.parquet as pq

        fs, path = url_to_fs(self.uri, **self.storage_options)
        with open_parquet(fs, path) as handle:
            return int(pq.ParquetFile(handle).metadata.num_rows)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows of :attr:`columns`, one row group (or ``batch_size`` rows) at a time."""
        if self.uri is None:
            return
        self.schema()  # a clear error for a missing column
        fs, path = url_to_fs(self.uri, **self.storage_options)
        with open_parquet(fs, path, read_ahead=LOAD_READ_AHEAD) as handle:  # read front to back
            yield from row_group_batches(handle, self.batch_size, self.columns)


class Loader(ABC):
    """Replaces one partition of a table with the enriched rows (see the module docstring).

    To add a warehouse, subclass :class:`DbapiLoader` (any DB-API driver) and override
    ``insert`` (a bulk path fed batch by batch) or ``statements`` (SQL that loads
    ``request.uri`` from object storage); see :mod:`sutro_providers.landing`."""

    @abstractmethod
    def columns(self, table: str) -> list[str] | None:
        """The column names of ``table``; ``None`` when it does not exist."""

    @abstractmethod
    def create(self, table: str, schema: pa.Schema, partition_column: str) -> None:
        """Create ``table`` with the columns of ``schema`` plus ``partition_column`` (text)."""

    @abstractmethod
    def replace(self, request: LoadRequest) -> int:
        """In one transaction: delete the partition's rows, load ``request``'s rows. Returns the rows loaded."""


# -- SQL types for CREATE TABLE -------------------------------------------------------------------


def sql_type(kind: pa.DataType, names: dict[str, str]) -> str:
    """A column type for ``CREATE TABLE`` from an Arrow type, by the keys of ``names``
    (``int``, ``float``, ``bool``, ``text``, ``date``, ``timestamp``, ``timestamptz``,
    ``decimal`` (a format with ``{p}``/``{s}``), ``json``, ``binary``)."""
    if pa.types.is_boolean(kind):
        return names["bool"]
    if pa.types.is_integer(kind):
        return names["int"]
    if pa.types.is_floating(kind):
        return names["float"]
    if pa.types.is_decimal(kind):
        return names["decimal"].format(p=kind.precision, s=kind.scale)
    if pa.types.is_date(kind):
        return names["date"]
    if pa.types.is_timestamp(kind):
        return names["timestamptz" if kind.tz else "timestamp"]
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return names["binary"]
    if pa.types.is_nested(kind):
        return names["json"]
    return names["text"]


GENERIC_TYPES = {"int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN", "text": "TEXT", "date": "DATE",
                 "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE", "decimal": "DECIMAL({p},{s})",
                 "json": "TEXT", "binary": "BLOB"}


# -- Arrow columns a DB-API driver (or CSV) can take ------------------------------------------------


def json_text(array: pa.Array) -> pa.Array:
    """A nested column (list/struct/map) as JSON text, one value at a time (nested
    result columns only; one batch at a time)."""
    return pa.array([None if v is None else json.dumps(v, default=str) for v in array.to_pylist()], pa.string())


def flat(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with nested columns as JSON text and dictionaries decoded."""
    arrays, fields = [], []
    for f, column in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_nested(column.type):
            column = json_text(column)
        arrays.append(column)
        fields.append(pa.field(f.name, column.type))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def with_partition(batch: pa.RecordBatch, column: str, value: str) -> pa.RecordBatch:
    """``batch`` plus the constant partition column (last)."""
    return pa.RecordBatch.from_arrays([*batch.columns, pa.repeat(pa.scalar(value, pa.string()), batch.num_rows)],
                                      names=[*batch.schema.names, column])


def python_rows(batch: pa.RecordBatch, text_types: bool = False) -> list[tuple[Any, ...]]:
    """The rows of one batch as tuples for ``executemany``. ``text_types``: decimals,
    dates and timestamps as ISO text (SQLite has no such types)."""
    columns = []
    for column in flat(batch).columns:
        kind = column.type
        if text_types and (pa.types.is_decimal(kind) or pa.types.is_temporal(kind)):
            column = pc.cast(column, pa.string())
        columns.append(column.to_pylist())
    return list(zip(*columns, strict=True))


# -- the DB-API loader ---------------------------------------------------------------------------


class DbapiLoader(Loader):
    """Any DB-API database: ``DELETE`` then ``executemany`` of each batch, one transaction.

    The generic fallback (~45k rows/s into PostgreSQL); subclasses override
    :meth:`insert` with their bulk path. ``database.connect`` gives connections,
    ``database.placeholder`` is the parameter marker."""

    types: dict[str, str] = GENERIC_TYPES

    def __init__(self, database: Database) -> None:
        self.database = database

    @property
    def placeholder(self) -> str:
        return self.database.placeholder

    def connect(self) -> Any:
        return self.database.dbapi()

    def _wrap(self, what: str, table: str, exc: BaseException) -> SutroDestinationError:
        return SutroDestinationError(f"{what} {table}: {self.database.scrubbed(exc)}")

    # -- pre-flight
    def columns(self, table: str) -> list[str] | None:
        check_identifier(table)
        conn = self.connect()
        try:
            cur = conn.cursor()
            try:
                cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")
            except Exception:  # the usual "no such table": the message differs per driver
                return None
            return [d[0] for d in cur.description or []]
        finally:
            _rollback(conn)
            conn.close()

    def create(self, table: str, schema: pa.Schema, partition_column: str) -> None:
        self.execute_all([(self.create_sql(table, schema, partition_column), ())], f"creating table {table}")

    def create_sql(self, table: str, schema: pa.Schema, partition_column: str) -> str:
        check_identifier(table)
        cols = [f"{quote(f.name)} {sql_type(f.type, self.types)}" for f in schema if f.name != partition_column]
        cols.append(f"{quote(partition_column)} {self.types['text']}")
        return f"CREATE TABLE {table} ({', '.join(cols)})"

    def execute_all(self, statements: Sequence[tuple[str, Any]], what: str) -> None:
        conn = self.connect()
        try:
            cur = conn.cursor()
            for sql, params in statements:
                cur.execute(sql, params) if params else cur.execute(sql)
            conn.commit()
        except Exception as exc:
            _rollback(conn)
            raise SutroDestinationError(f"{what}: {self.database.scrubbed(exc)}") from exc
        finally:
            conn.close()

    # -- the load
    def delete_sql(self, request: LoadRequest) -> str:
        return f"DELETE FROM {request.table} WHERE {quote(request.partition_column)} = {self.placeholder}"

    def begin(self, conn: Any) -> None:
        """Start the transaction (DB-API connections are in one already)."""

    def cursor(self, conn: Any) -> Any:
        return conn.cursor()

    def replace(self, request: LoadRequest) -> int:
        conn = self.connect()
        try:
            self.begin(conn)
            cur = self.cursor(conn)
            cur.execute(self.delete_sql(request), (request.partition,))
            loaded = self.insert(conn, cur, request)
            conn.commit()
        except SutroDestinationError:
            _rollback(conn)
            raise
        except Exception as exc:
            _rollback(conn)
            raise self._wrap("loading the enriched rows into", request.table, exc) from exc
        finally:
            conn.close()
        log.info("replaced partition %s=%s of %s with %d rows", request.partition_column, request.partition,
                 request.table, loaded)
        return loaded

    def insert_sql(self, request: LoadRequest) -> str:
        names = ", ".join(quote(c) for c in [*request.columns, request.partition_column])
        marks = ", ".join([self.placeholder] * (len(request.columns) + 1))
        return f"INSERT INTO {request.table} ({names}) VALUES ({marks})"

    def insert(self, conn: Any, cur: Any, request: LoadRequest) -> int:
        """Insert every batch of ``request`` on ``cur`` (inside the transaction); returns the rows."""
        sql, loaded = self.insert_sql(request), 0
        for batch in request.batches():
            rows = [(*row, request.partition) for row in python_rows(batch)]
            if rows:
                cur.executemany(sql, rows)
                loaded += len(rows)
        return loaded


def _rollback(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; the server aborts the transaction
        pass

__all__ = ["GENERIC_TYPES", "DbapiLoader", "LoadRequest", "Loader", "flat", "json_text", "python_rows", "sql_type",
           "with_partition"]
