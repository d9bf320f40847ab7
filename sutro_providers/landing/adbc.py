"""Any ADBC driver: bulk ingest into a temporary table, then ``INSERT ... SELECT``.

``adbc_ingest`` hands the Arrow batches to the driver's bulk path (PostgreSQL:
binary ``COPY``; Snowflake: PUT + COPY; SQLite: a prepared insert); the delete and
the ``INSERT ... SELECT`` into the destination share the transaction, so the
partition is replaced atomically. Types stay Arrow end to end.
"""

from __future__ import annotations

import importlib
import secrets
from typing import Any

import pyarrow as pa

from sutro_providers.database import Database, quote
from sutro_providers.landing.base import DbapiLoader, LoadRequest
from sutro_providers.landing.object_storage import literal

_TEXT_TYPES = {"text", "character varying", "character", "varchar", "string", "user-defined", "array"}
PLACEHOLDERS = {"adbc_driver_postgresql": "$1", "adbc_driver_sqlite": "?", "adbc_driver_snowflake": "?",
                "adbc_driver_flightsql": "?", "adbc_driver_bigquery": "?"}


class AdbcLoader(DbapiLoader):
    """``database.uri`` opened with the ADBC driver module ``driver`` (``adbc_driver_postgresql``...)."""

    def __init__(self, database: Database, driver: str | None = None) -> None:
        if database.uri is None:
            raise ValueError("AdbcLoader needs the database uri")
        super().__init__(database)
        self.driver = driver or database.adbc_driver or {
            "postgresql": "adbc_driver_postgresql", "sqlite": "adbc_driver_sqlite"}.get(database.dialect, "")
        if not self.driver:
            raise ValueError("AdbcLoader needs an ADBC driver module name")

    @property
    def placeholder(self) -> str:
        return PLACEHOLDERS.get(self.driver, "?")

    def connect(self) -> Any:
        dbapi = importlib.import_module(f"{self.driver}.dbapi")
        return dbapi.connect(self.database.uri)

    def insert(self, conn: Any, cur: Any, request: LoadRequest) -> int:
        temp = f"sutro_load_{secrets.token_hex(6)}"
        counted = [0]

        def counting() -> Any:
            for batch in request.batches():
                counted[0] += batch.num_rows
                yield batch

        schema = request.schema()
        declared = self.declared_types(cur, request.table)
        reader = pa.RecordBatchReader.from_batches(schema, counting())
        cur.adbc_ingest(temp, reader, mode="create", temporary=True)
        names = ", ".join(quote(c) for c in [*request.columns, request.partition_column])
        selected = "".join(f"{self.pick(f, declared.get(f.name))}, " for f in schema)
        cur.execute(f"INSERT INTO {request.table} ({names}) SELECT {selected}{self.placeholder} FROM {quote(temp)}",
                    (request.partition,))
        cur.execute(f"DROP TABLE {quote(temp)}")
        return counted[0]

    def declared_types(self, cur: Any, table: str) -> dict[str, str]:
        """The destination's column types from ``information_schema`` (empty where the
        database has none, e.g. SQLite): text columns going into ``uuid``/``jsonb``...
        need a cast in the ``INSERT ... SELECT``."""
        if self.driver == "adbc_driver_sqlite":
            return {}
        schema, _, name = table.rpartition(".")
        where = f"table_name = {literal(name)}" + (f" AND table_schema = {literal(schema)}" if schema else "")
        cur.execute(f"SELECT column_name, data_type FROM information_schema.columns WHERE {where}")
        return {str(r[0]): str(r[1]) for r in cur.fetchall()}

    @staticmethod
    def pick(field: pa.Field, declared: str | None) -> str:
        text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        if text and declared and declared.lower() not in _TEXT_TYPES:
            return f"CAST({quote(field.name)} AS {declared})"
        return quote(field.name)


__all__ = ["AdbcLoader"]
