"""PostgreSQL: ``COPY ... FROM STDIN`` (psycopg 3), in one transaction with the partition delete.

Each Parquet batch becomes CSV in Arrow's writer (C++, no Python objects per row) and
is streamed into one ``COPY``; the ``DELETE`` of the partition runs first in the same
transaction. If the process dies mid-``COPY`` the server aborts the transaction:
the old rows of the partition stay. Memory: one batch and its CSV text.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv

from sutro_providers.database import Database, check_identifier, quote
from sutro_providers.landing.base import DbapiLoader, LoadRequest, flat, with_partition

PG_TYPES = {"int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN", "text": "TEXT", "date": "DATE",
            "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "decimal": "NUMERIC({p},{s})", "json": "JSONB",
            "binary": "BYTEA"}
_CSV = pcsv.WriteOptions(include_header=False, quoting_style="needed")


def csv_bytes(batch: pa.RecordBatch) -> pa.Buffer:
    """One batch as PostgreSQL-readable CSV: NULL is an empty field, an empty string
    is ``""``, timestamps with time zone end in ``Z``, nested values are JSON text."""
    sink = pa.BufferOutputStream()
    pcsv.write_csv(flat(batch), sink, _CSV)
    return sink.getvalue()


class PostgresCopyLoader(DbapiLoader):
    """PostgreSQL through psycopg 3 ``COPY`` (``database.uri``: a libpq URI or conninfo)."""

    types = PG_TYPES

    def __init__(self, database: Database) -> None:
        if database.uri is None:
            raise ValueError("PostgresCopyLoader needs the database uri (libpq URI or conninfo)")
        super().__init__(database)

    @property
    def placeholder(self) -> str:
        return "%s"

    def connect(self) -> Any:
        import psycopg

        assert self.database.uri is not None
        return psycopg.connect(self.database.uri)

    def columns(self, table: str) -> list[str] | None:
        check_identifier(table)
        with self.connect() as conn:
            oid = conn.execute("SELECT to_regclass(%s)::oid", (table,)).fetchone()
            if oid is None or oid[0] is None:
                return None
            rows = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 "
                                "AND NOT attisdropped ORDER BY attnum", (oid[0],)).fetchall()
            return [r[0] for r in rows]

    def copy_sql(self, request: LoadRequest) -> str:
        names = ", ".join(quote(c) for c in [*request.columns, request.partition_column])
        return f"COPY {request.table} ({names}) FROM STDIN (FORMAT csv)"

    def insert(self, conn: Any, cur: Any, request: LoadRequest) -> int:
        loaded = 0
        with cur.copy(self.copy_sql(request)) as copy:
            for batch in request.batches():
                if batch.num_rows:
                    copy.write(memoryview(csv_bytes(with_partition(batch, request.partition_column,
                                                                   request.partition))))
                    loaded += batch.num_rows
        return loaded


__all__ = ["PG_TYPES", "PostgresCopyLoader", "csv_bytes"]
