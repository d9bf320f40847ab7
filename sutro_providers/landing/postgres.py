"""PostgreSQL: ``COPY ... FROM STDIN`` (psycopg 3), in one transaction with the partition delete.

Each Parquet batch becomes CSV in Arrow's writer (C++, no Python objects per row) and
is streamed into one ``COPY``; the ``DELETE`` of the partition runs first in the same
transaction. Reading the next batches and encoding their CSV run on a worker thread
(:func:`~sutro_providers.prefetch.prefetched`, :data:`PREFETCH_DEPTH` batches ahead)
while the caller's thread sends the previous one, so the client's work overlaps the
server's instead of adding to it (Arrow and libpq release the GIL). An error on the
worker (a Parquet read, the encoding) ends the ``COPY`` with a failure and rolls the
transaction back: nothing of the load stays, the error is a
:class:`~sutro_providers.errors.SutroDestinationError`. If the process dies
mid-``COPY`` the server aborts the transaction: the old rows of the partition stay.
Memory: the batch being encoded, its CSV, and up to :data:`PREFETCH_DEPTH` + 1 CSV
buffers of earlier batches (queued, or being sent).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv

from sutro_providers.database import Database, check_identifier, quote
from sutro_providers.landing.base import DbapiLoader, LoadRequest, flat, with_partition
from sutro_providers.prefetch import prefetched

PG_TYPES = {"int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN", "text": "TEXT", "date": "DATE",
            "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "decimal": "NUMERIC({p},{s})", "json": "JSONB",
            "binary": "BYTEA"}
_CSV = pcsv.WriteOptions(include_header=False, quoting_style="needed")
PREFETCH_DEPTH = 2
"""Encoded batches the worker may queue ahead of ``COPY`` (each one ``batch_size`` rows of CSV)."""


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

    def csv_batches(self, request: LoadRequest) -> Iterator[tuple[int, pa.Buffer]]:
        """(rows, CSV) of each non-empty batch of ``request``, the partition column last."""
        for batch in request.batches():
            if batch.num_rows:
                yield batch.num_rows, csv_bytes(with_partition(batch, request.partition_column, request.partition))

    def insert(self, conn: Any, cur: Any, request: LoadRequest) -> int:
        loaded = 0
        # closing: on a failed write the worker is stopped before the COPY is ended
        with cur.copy(self.copy_sql(request)) as copy, closing(
                prefetched(self.csv_batches(request), PREFETCH_DEPTH, name="sutro-copy-encode")) as encoded:
            for rows, data in encoded:
                copy.write(memoryview(data))
                loaded += rows
        return loaded


__all__ = ["PG_TYPES", "PREFETCH_DEPTH", "PostgresCopyLoader", "csv_bytes"]
