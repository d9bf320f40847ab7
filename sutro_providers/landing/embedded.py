"""SQLite and DuckDB, natively: their own Python drivers, one transaction per load.

* SQLite: ``BEGIN IMMEDIATE``, the delete, then ``executemany`` per batch (SQLite's
  own fast path: one prepared statement, no network); decimals, dates and timestamps
  are stored as ISO text (SQLite has no such types), nested values as JSON text.
* DuckDB: the batches are handed to DuckDB as an Arrow stream and inserted with one
  ``INSERT ... SELECT`` (DuckDB reads the stream batch by batch; types stay native).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sutro_providers.database import Database, check_identifier, quote
from sutro_providers.landing.base import DbapiLoader, LoadRequest, python_rows

SQLITE_TYPES = {"int": "INTEGER", "float": "REAL", "bool": "INTEGER", "text": "TEXT", "date": "TEXT",
                "timestamp": "TEXT", "timestamptz": "TEXT", "decimal": "TEXT", "json": "TEXT", "binary": "BLOB"}
DUCKDB_TYPES = {"int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "text": "VARCHAR", "date": "DATE",
                "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "decimal": "DECIMAL({p},{s})",
                "json": "JSON", "binary": "BLOB"}


class FileLoader(DbapiLoader):
    """A database in one local file (``database.uri``: its path), ``?`` placeholders."""

    def __init__(self, database: Database) -> None:
        if database.uri is None:
            raise ValueError(f"{type(self).__name__} needs the database file path as uri")
        super().__init__(database)

    @property
    def path(self) -> str:
        assert self.database.uri is not None
        return self.database.uri

    @property
    def placeholder(self) -> str:
        return "?"


class SqliteLoader(FileLoader):
    """A SQLite file (``database.uri``: its path)."""

    types = SQLITE_TYPES

    def connect(self) -> Any:
        import sqlite3

        return sqlite3.connect(self.path, isolation_level=None, timeout=60)

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def columns(self, table: str) -> list[str] | None:
        check_identifier(table)
        conn = self.connect()
        try:
            schema, _, name = table.rpartition(".")
            prefix = f"{quote(schema)}." if schema else ""
            rows = conn.execute(f"PRAGMA {prefix}table_info({quote(name)})").fetchall()
            return [r[1] for r in rows] or None
        finally:
            conn.close()

    def insert(self, conn: Any, cur: Any, request: LoadRequest) -> int:
        sql, loaded = self.insert_sql(request), 0
        for batch in request.batches():
            rows = [(*row, request.partition) for row in python_rows(batch, text_types=True)]
            cur.executemany(sql, rows)
            loaded += len(rows)
        return loaded


class DuckDBLoader(FileLoader):
    """A DuckDB file (``database.uri``: its path)."""

    types = DUCKDB_TYPES

    def connect(self) -> Any:
        import duckdb

        return duckdb.connect(self.path)

    def begin(self, conn: Any) -> None:
        conn.begin()

    def cursor(self, conn: Any) -> Any:
        return conn  # a DuckDB cursor is another connection, with its own transaction

    def columns(self, table: str) -> list[str] | None:
        check_identifier(table)
        conn = self.connect()
        try:
            try:
                return [d[0] for d in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]
            except Exception as exc:  # duckdb.CatalogException: no such table
                if type(exc).__name__ == "CatalogException":
                    return None
                raise
        finally:
            conn.close()

    def insert(self, conn: Any, cur: Any, request: LoadRequest) -> int:
        counted = [0]

        def counting() -> Any:
            for batch in request.batches():
                counted[0] += batch.num_rows
                yield batch

        reader = pa.RecordBatchReader.from_batches(request.schema(), counting())
        conn.register("__sutro_load", reader)
        try:
            names = ", ".join(quote(c) for c in [*request.columns, request.partition_column])
            selected = ", ".join(quote(c) for c in request.columns)
            conn.execute(f"INSERT INTO {request.table} ({names}) SELECT {selected}{', ' if selected else ''}? "
                         "FROM __sutro_load", [request.partition])
        finally:
            conn.unregister("__sutro_load")
        return counted[0]


__all__ = ["DUCKDB_TYPES", "SQLITE_TYPES", "DuckDBLoader", "SqliteLoader"]
