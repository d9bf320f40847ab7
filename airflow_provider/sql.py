"""Airflow connections -> the core's SQL reads and loads (:mod:`sutro_providers.inputs.sql`,
:mod:`sutro_providers.landing`). This module only translates a connection id into a
:class:`~sutro_providers.database.Database`; the logic lives in the core.

* ``postgres`` connections: read with ADBC (``COPY`` binary), load with ``COPY``
  (psycopg 3); ``sqlite``: ADBC / sqlite3; ``duckdb``: DuckDB; any other common.sql
  connection: DB-API ``fetchmany`` / ``executemany`` through its ``DbApiHook``.
  A query with ``parameters`` is read through the hook's own driver (its placeholders).
* Destination writes are idempotent per partition: the rows whose
  ``partition_column`` equals the partition value (by default the Airflow run id;
  a daily DAG uses its data interval) are deleted and the enriched rows loaded in
  ONE transaction, so a retry, a cleared task or a new run of the same interval
  replaces its partition and never duplicates rows; readers (and a load killed
  half way) see the old rows of the partition or all the new ones.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import pyarrow as pa
from airflow.sdk import BaseHook

from sutro_providers.database import Database
from sutro_providers.inputs.sources import SourceReader
from sutro_providers.inputs.sql import open_sql
from sutro_providers.landing import Loader, check_destination, land, loader_for

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

_LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name", "options")


def db_hook(conn_id: str) -> DbApiHook:
    """The connection's ``DbApiHook`` (any common.sql database provider)."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook = BaseHook.get_connection(conn_id).get_hook()
    if not isinstance(hook, DbApiHook):
        raise TypeError(f"connection {conn_id!r} does not give a common.sql DbApiHook ({type(hook).__name__})")
    return hook


def database(conn_id: str) -> Database:
    """The :class:`Database` of an Airflow connection (see the module docstring)."""
    conn = BaseHook.get_connection(conn_id)
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "duckdb":
        return Database("duckdb", uri=conn.host or ":memory:")
    hook = db_hook(conn_id)
    connect, placeholder = hook.get_conn, str(getattr(hook, "placeholder", "%s"))
    if conn_type in ("postgres", "postgresql"):
        extra = conn.extra_dejson
        user = quote(conn.login or "", safe="")
        auth = f"{user}:{quote(conn.password, safe='')}@" if conn.password else (f"{user}@" if user else "")
        query = urlencode({k: extra[k] for k in _LIBPQ_EXTRAS if k in extra})
        uri = (f"postgresql://{auth}{conn.host or 'localhost'}:{conn.port or 5432}/{quote(conn.schema or '', safe='')}"
               + (f"?{query}" if query else ""))
        return Database("postgresql", uri=uri, connect=connect, placeholder=placeholder)
    if conn_type == "sqlite":
        return Database("sqlite", uri=conn.host, connect=connect, placeholder="?")
    return Database("generic", connect=connect, placeholder=placeholder)


def read_sql(conn_id: str, sql: str, parameters: Any = None, *, batch_size: int = 65_536) -> SourceReader:
    """Run ``sql`` and stream its rows as Arrow batches (the schema is known after the
    first batch; see :func:`sutro_providers.inputs.sql.open_sql`)."""
    return open_sql(database(conn_id), sql, parameters, batch_size=batch_size)


def destination_loader(conn_id: str) -> Loader:
    """The loader for a connection (:func:`sutro_providers.landing.loader_for`)."""
    return loader_for(database(conn_id))


def preflight(loader: Loader, table: str, schema: pa.Schema, *, partition_column: str, columns: list[str] | None,
              create: bool, complete: bool) -> list[str]:
    """:func:`sutro_providers.landing.check_destination` (raises before anything is paid)."""
    return check_destination(loader, table, schema=schema, partition_column=partition_column, columns=columns,
                             create=create, complete=complete)


def write_rows(loader: Loader, table_name: str, uri: str | None, *, partition: str,
               partition_column: str = "airflow_run_id", columns: list[str] | None = None,
               storage_options: dict[str, Any] | None = None, batch_size: int = 65_536) -> int:
    """Replace the rows of ``partition`` in ``table_name`` with the enriched Parquet at
    ``uri`` (``None``: no rows), batch by batch; returns the row count."""
    return land(loader, table_name, uri, partition=partition, partition_column=partition_column, columns=columns,
                storage_options=storage_options, batch_size=batch_size)


def land_partition(loader: Loader, table_name: str, uri: str | None, *, partition: str, partition_column: str,
                   columns: list[str] | None, storage_options: dict[str, Any], batch_size: int,
                   log: logging.Logger | Any) -> int:
    """:func:`write_rows`, logged as the operators log a landed partition."""
    rows = write_rows(loader, table_name, uri, partition=partition, partition_column=partition_column,
                      columns=columns, storage_options=storage_options, batch_size=batch_size)
    log.info("Replaced partition %s=%s of %s with %d enriched rows", partition_column, partition, table_name, rows)
    return rows
