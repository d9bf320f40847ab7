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

        reader = pa.RecordBatchReader.from_batches(request.schema(), counting())
        cur.adbc_ingest(temp, reader, mode="create", temporary=True)
        names = ", ".join(quote(c) for c in [*request.columns, request.partition_column])
        selected = "".join(f"{quote(c)}, " for c in request.columns)
        cur.execute(f"INSERT INTO {request.table} ({names}) SELECT {selected}{self.placeholder} FROM {quote(temp)}",
                    (request.partition,))
        cur.execute(f"DROP TABLE {quote(temp)}")
        return counted[0]


__all__ = ["AdbcLoader"]
