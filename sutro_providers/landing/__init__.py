"""Step 5 of the run: the enriched Parquet into a warehouse table, one partition at a time.

Every loader implements one interface, :class:`~sutro_providers.landing.base.Loader`
(``columns``, ``create``, ``replace``): replace the rows of one partition with the
enriched rows in ONE transaction, reading the results Parquet batch by batch (never
the whole table in memory). A load killed half way leaves the old partition.

=========================  ================================================================
``loader_for(database)``   picks the loader
=========================  ================================================================
PostgreSQL                 :class:`PostgresCopyLoader` (psycopg 3 ``COPY FROM STDIN``)
SQLite / DuckDB            :class:`SqliteLoader` / :class:`DuckDBLoader` (their own drivers)
an ADBC driver             :class:`AdbcLoader` (ingest to a temp table, ``INSERT ... SELECT``)
any other DB-API driver    :class:`DbapiLoader` (``executemany``: the generic fallback)
Snowflake/Redshift/BigQuery  :mod:`~sutro_providers.landing.object_storage` (the warehouse
                           loads ``output_uri`` itself); build them yourself
=========================  ================================================================

Adding a warehouse: subclass :class:`DbapiLoader` and override ``insert`` (feed
``request.batches()`` to its bulk path on the open cursor; the delete already ran
in the same transaction) or, for loads from object storage, subclass
:class:`ObjectStorageLoader` and return the SQL from ``statements``::

    from sutro_providers.landing import Database, ObjectStorageLoader, literal

    class ClickHouseS3Loader(ObjectStorageLoader):
        def statements(self, request):
            cols = ", ".join([*request.columns, request.partition_column])
            picks = ", ".join([*request.columns, literal(request.partition)])
            return [(self.delete_sql(request), (request.partition,)),
                    (f"INSERT INTO {request.table} ({cols}) SELECT {picks} "
                     f"FROM s3({literal(request.uri)}, 'Parquet')", ())]

    loader = ClickHouseS3Loader(Database("generic", connect=clickhouse_connect.dbapi.connect))

and pass it to the adapters (Airflow: ``destination_loader=``).
"""

from __future__ import annotations

from typing import Any

from sutro_providers.database import Database
from sutro_providers.identity import RunIdentity
from sutro_providers.landing.adbc import AdbcLoader
from sutro_providers.landing.base import DbapiLoader, Loader, LoadRequest
from sutro_providers.landing.embedded import DuckDBLoader, SqliteLoader
from sutro_providers.landing.object_storage import (
    BigQueryLoader,
    ObjectStorageLoader,
    RedshiftCopyLoader,
    SnowflakeCopyLoader,
    literal,
)
from sutro_providers.landing.postgres import PostgresCopyLoader
from sutro_providers.landing.preflight import check_destination, enriched_schema
from sutro_providers.staging.area import StagingArea


def loader_for(database: Database) -> Loader:
    """The fastest loader for ``database`` (see the table above)."""
    if database.uri is not None:
        if database.dialect == "postgresql":
            return PostgresCopyLoader(database)
        if database.dialect == "sqlite":
            return SqliteLoader(database)
        if database.dialect == "duckdb":
            return DuckDBLoader(database)
        if database.adbc_driver:
            return AdbcLoader(database)
    return DbapiLoader(database)


def staged_output(area: StagingArea, identity: RunIdentity) -> tuple[str, dict[str, Any]]:
    """(URI, storage options) of the enriched Parquet in the run's staging folder: the
    output when a destination table is the only one asked for."""
    return area.display(area.output_path(identity)), dict(area.location.storage_options)


def land(loader: Loader, table: str, uri: str | None, *, partition: str, partition_column: str,
         columns: list[str] | None = None, storage_options: dict[str, Any] | None = None,
         batch_size: int = 65_536) -> int:
    """Replace ``partition`` of ``table`` with the rows of the enriched Parquet at ``uri``
    (``None``: no rows; the partition is emptied). ``columns``: the columns to insert
    (default: all of the file). Returns the rows loaded."""
    request = LoadRequest(table, [], partition_column, partition, uri, dict(storage_options or {}), batch_size)
    names = columns if columns is not None else request.file_schema().names
    request.columns = [c for c in names if c != partition_column]
    return loader.replace(request)


__all__ = [
    "AdbcLoader", "BigQueryLoader", "Database", "DbapiLoader", "DuckDBLoader", "LoadRequest", "Loader",
    "ObjectStorageLoader", "PostgresCopyLoader", "RedshiftCopyLoader", "SnowflakeCopyLoader", "SqliteLoader",
    "check_destination", "enriched_schema", "land", "literal", "loader_for", "staged_output",
]
