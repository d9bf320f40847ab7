"""Warehouses that load Parquet from object storage: Snowflake ``COPY INTO``, Redshift
``COPY``, BigQuery ``LOAD DATA``. The rows never pass through this process: the
warehouse reads the enriched Parquet at ``request.uri`` (so it must live where the
warehouse can read it: ``output_uri`` on its bucket, or a staging location there).

Each loader is a :class:`~sutro_providers.landing.base.DbapiLoader` on the
warehouse's DB-API driver (``snowflake-connector-python``, ``redshift_connector``,
``google-cloud-bigquery``'s ``dbapi``) whose :meth:`statements` are the SQL of one
transaction; they are plain text, so tests check them without a warehouse.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sutro_providers.database import Database, quote
from sutro_providers.landing.base import DbapiLoader, LoadRequest, sql_type

Statement = tuple[str, Any]  # SQL and its parameters (a sequence, or a mapping for named markers)


def literal(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class ObjectStorageLoader(DbapiLoader):
    """Runs :meth:`statements` in order on one connection, then commits."""

    def statements(self, request: LoadRequest) -> list[Statement]:
        """The SQL of the load, in order (one transaction)."""
        raise NotImplementedError

    def delete_statement(self, request: LoadRequest) -> Statement:
        return self.delete_sql(request), (request.partition,)

    def replace(self, request: LoadRequest) -> int:
        if request.uri is None:  # nothing to load: empty the partition
            self.execute_all([self.delete_statement(request)], f"emptying {request.table}")
            return 0
        rows = request.num_rows()
        self.execute_all(self.statements(request), f"loading {request.uri} into {request.table}")
        return rows


SNOWFLAKE_TYPES = {"int": "NUMBER(38,0)", "float": "FLOAT", "bool": "BOOLEAN", "text": "VARCHAR", "date": "DATE",
                   "timestamp": "TIMESTAMP_NTZ", "timestamptz": "TIMESTAMP_TZ", "decimal": "NUMBER({p},{s})",
                   "json": "VARIANT", "binary": "BINARY"}


class SnowflakeCopyLoader(ObjectStorageLoader):
    """``COPY INTO`` from a stage (``stage="@my_stage"`` whose URL is ``stage_url``) or
    straight from the URL with a ``storage_integration``. ``FORCE = TRUE``: a retry
    loads the same file again (Snowflake would otherwise skip a file it has loaded)."""

    types = SNOWFLAKE_TYPES

    def __init__(self, database: Database, *, stage: str | None = None, stage_url: str | None = None,
                 storage_integration: str | None = None) -> None:
        super().__init__(database)
        if stage is None and storage_integration is None:
            raise ValueError("SnowflakeCopyLoader needs a stage (and its stage_url) or a storage_integration")
        self.stage, self.stage_url, self.storage_integration = stage, stage_url, storage_integration

    def location(self, uri: str) -> str:
        if self.stage is None:
            return literal(uri)
        root = (self.stage_url or "").rstrip("/") + "/"
        if not uri.startswith(root):
            raise ValueError(f"the enriched Parquet {uri!r} is not under the stage URL {root!r}")
        return f"{self.stage}/{uri[len(root):]}"

    def statements(self, request: LoadRequest) -> list[Statement]:
        assert request.uri is not None
        schema = request.schema()
        columns = ", ".join(quote(c) for c in [*request.columns, request.partition_column])
        picks = ", ".join(f'$1:{quote(f.name)}::{sql_type(f.type, self.types)}' for f in schema)
        picks = f"{picks}, {literal(request.partition)}" if picks else literal(request.partition)
        auth = f" STORAGE_INTEGRATION = {self.storage_integration}" if self.stage is None else ""
        copy = (f"COPY INTO {request.table} ({columns}) FROM (SELECT {picks} FROM {self.location(request.uri)})"
                f"{auth} FILE_FORMAT = (TYPE = PARQUET) FORCE = TRUE")
        return [("BEGIN", ()), (self.delete_sql(request), (request.partition,)), (copy, ()), ("COMMIT", ())]


REDSHIFT_TYPES = {"int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN", "text": "VARCHAR(65535)",
                  "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
                  "decimal": "DECIMAL({p},{s})", "json": "SUPER", "binary": "VARBYTE"}


class RedshiftCopyLoader(ObjectStorageLoader):
    """``COPY ... FORMAT AS PARQUET`` into a temporary table shaped like the whole
    file, then ``DELETE`` + ``INSERT ... SELECT`` (Parquet ``COPY`` maps every file
    column and cannot add the partition value), one transaction."""

    types = REDSHIFT_TYPES

    def __init__(self, database: Database, *, iam_role: str) -> None:
        super().__init__(database)
        self.iam_role = iam_role

    def statements(self, request: LoadRequest) -> list[Statement]:
        assert request.uri is not None
        request.schema()  # the chosen columns exist
        file_schema = request.file_schema()
        temp = "sutro_load"
        create = ", ".join(f"{quote(f.name)} {sql_type(f.type, self.types)}" for f in file_schema)
        names = ", ".join(quote(c) for c in [*request.columns, request.partition_column])
        selected = "".join(f"{quote(c)}, " for c in request.columns)
        return [
            ("BEGIN", ()),
            (f"CREATE TEMP TABLE {temp} ({create})", ()),
            (f"COPY {temp} FROM {literal(request.uri)} IAM_ROLE {literal(self.iam_role)} FORMAT AS PARQUET", ()),
            (self.delete_sql(request), (request.partition,)),
            (f"INSERT INTO {request.table} ({names}) SELECT {selected}%s FROM {temp}", (request.partition,)),
            (f"DROP TABLE {temp}", ()),
            ("COMMIT", ()),
        ]


BIGQUERY_TYPES = {"int": "INT64", "float": "FLOAT64", "bool": "BOOL", "text": "STRING", "date": "DATE",
                  "timestamp": "DATETIME", "timestamptz": "TIMESTAMP", "decimal": "BIGNUMERIC", "json": "JSON",
                  "binary": "BYTES"}


class BigQueryLoader(ObjectStorageLoader):
    """One multi-statement query: ``LOAD DATA INTO TEMP TABLE`` from the ``gs://``
    Parquet, then ``DELETE`` + ``INSERT ... SELECT`` in a ``BEGIN/COMMIT TRANSACTION``
    block (google-cloud-bigquery's DB-API, ``%(name)s`` parameters)."""

    types = BIGQUERY_TYPES

    @property
    def placeholder(self) -> str:
        return "%(partition)s"

    def statements(self, request: LoadRequest) -> list[Statement]:
        assert request.uri is not None
        request.schema()
        table = ".".join(f"`{p}`" for p in request.table.split("."))
        part = f"`{request.partition_column}`"
        names = ", ".join(f"`{c}`" for c in [*request.columns, request.partition_column])
        selected = "".join(f"`{c}`, " for c in request.columns)
        script = "\n".join([
            f"LOAD DATA INTO TEMP TABLE sutro_load FROM FILES (format = 'PARQUET', uris = [{literal(request.uri)}]);",
            "BEGIN TRANSACTION;",
            f"DELETE FROM {table} WHERE {part} = %(partition)s;",
            f"INSERT INTO {table} ({names}) SELECT {selected}%(partition)s FROM sutro_load;",
            "COMMIT TRANSACTION;",
        ])
        return [(script, {"partition": request.partition})]  # type: ignore[list-item]

    def delete_statement(self, request: LoadRequest) -> Statement:
        table = ".".join(f"`{p}`" for p in request.table.split("."))
        return f"DELETE FROM {table} WHERE `{request.partition_column}` = %(partition)s", {"partition": request.partition}

    def create_sql(self, table: str, schema: pa.Schema, partition_column: str) -> str:
        cols = [f"`{f.name}` {sql_type(f.type, self.types)}" for f in schema if f.name != partition_column]
        cols.append(f"`{partition_column}` STRING")
        return f"CREATE TABLE {'.'.join(f'`{p}`' for p in table.split('.'))} ({', '.join(cols)})"


__all__ = ["BigQueryLoader", "ObjectStorageLoader", "RedshiftCopyLoader", "SnowflakeCopyLoader", "literal"]
