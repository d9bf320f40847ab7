"""IO managers for enriched tables: Parquet on any fsspec path, and DuckDB.

* :class:`SutroParquetIOManager` is a :class:`dagster.UPathIOManager`: one Parquet
  file per asset (``<base>/<key path>.parquet``) or per partition
  (``<base>/<key path>/<partition>.parquet``), on local disk, S3 (s3fs) or any
  fsspec filesystem. It stores polars, pandas and Arrow tables and loads whichever
  the input annotation asks for. A run that covers several time partitions at
  once (``BackfillPolicy.single_run()``) is split into one file per partition by
  the asset's ``partition_expr`` metadata column; several partitions are loaded
  back as one table (or as a ``dict`` when the input is annotated ``dict``).
  :class:`ConfigurableSutroParquetIOManager` is its configurable form.
* :class:`SutroDuckDBIOManager` is a :class:`dagster_duckdb.DuckDBIOManager` with
  an Arrow-based type handler for polars, pandas and Arrow tables (the published
  polars handler calls a method DuckDB 2 removed, and the pandas one does not
  install next to pandas 3). Partitions use the standard ``partition_expr``
  metadata.

Example::

    import dagster as dg
    from dagster_sutro import ConfigurableSutroParquetIOManager, SutroDuckDBIOManager

    defs = dg.Definitions(
        assets=[],
        resources={
            "io_manager": SutroDuckDBIOManager(database="warehouse.duckdb"),
            "parquet_io_manager": ConfigurableSutroParquetIOManager(
                base_path="s3://my-bucket/enriched",
                storage_options={"client_kwargs": {"endpoint_url": "http://127.0.0.1:5000"}},
            ),
        },
    )
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBIOManager
from dagster_duckdb.io_manager import DuckDbClient
from pydantic import Field

from dagster_sutro.frames import OutputFormat, concat, format_for_type, from_arrow, to_arrow
from dagster_sutro.streams import ParquetTable, chained, upath_source
from sutro_providers.database import Database
from sutro_providers.inputs.sources import SourceReader
from sutro_providers.inputs.sql import open_sql

if TYPE_CHECKING:
    from upath import UPath

COLUMN_SCHEMA_KEY = "dagster/column_schema"


def table_metadata(table: pa.Table | ParquetTable, descriptions: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Row count and column schema of ``table`` as standard Dagster table metadata;
    ``descriptions``: column name -> description (see :func:`column_descriptions`)."""
    described = descriptions or {}
    schema = dg.TableSchema(columns=[dg.TableColumn(name=f.name, type=str(f.type), description=described.get(f.name))
                                     for f in table.schema])
    return dict(TableMetadataSet(row_count=table.num_rows, column_schema=schema))


def column_descriptions(context: dg.OutputContext | None) -> dict[str, str | None]:
    """The column descriptions the asset gave its ``dagster/column_schema`` (on its
    ``Output``, else on its definition), so the schema an IO manager writes from the
    stored table keeps them (an IO manager's metadata replaces the output's). None
    without a context."""
    if context is None:
        return {}
    for metadata in (context.output_metadata, context.definition_metadata):
        value = (metadata or {}).get(COLUMN_SCHEMA_KEY)
        schema = getattr(value, "schema", value)
        if isinstance(schema, dg.TableSchema):
            return {c.name: c.description for c in schema.columns if c.description}
    return {}


def _wants_stream(context: dg.InputContext) -> bool:
    return context.dagster_type.typing_type is SourceReader


def _supported_types() -> list[type]:
    types: list[type] = [pa.Table, ParquetTable, SourceReader]
    for module, name in (("polars", "DataFrame"), ("pandas", "DataFrame")):
        try:
            types.append(getattr(__import__(module), name))
        except ImportError:  # pragma: no cover - optional dependency
            pass
    return types


# -- Parquet on any fsspec path


def _boundary(value: dt.datetime, column_type: pa.DataType) -> pa.Scalar:
    if pa.types.is_timestamp(column_type):
        if column_type.tz is None:
            value = value.replace(tzinfo=None)
        return pa.scalar(value, type=column_type)
    if pa.types.is_date(column_type):
        return pa.scalar(value.date(), type=column_type)
    if pa.types.is_string(column_type) or pa.types.is_large_string(column_type):
        return pa.scalar(value.strftime("%Y-%m-%d %H:%M:%S"), type=column_type)
    raise TypeError(f"partition column of type {column_type} cannot be compared with a time window")


def split_by_partition(
    table: pa.Table, partition_keys: Sequence[str], partitions_def: dg.PartitionsDefinition, column: str
) -> dict[str, pa.Table]:
    """Split ``table`` into one table per partition key by the values of ``column``.

    Time-window partitions select ``start <= column < end``; other partitions
    select ``column == key``. Every row must land in exactly one of the keys.
    """
    if column not in table.column_names:
        raise dg.Failure(f"partition_expr column {column!r} is not in the output table")
    values = table.column(column)
    parts: dict[str, pa.Table] = {}
    for key in partition_keys:
        if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            window = partitions_def.time_window_for_partition_key(key)
            lo, hi = _boundary(window.start, values.type), _boundary(window.end, values.type)
            mask = pc.and_(pc.greater_equal(values, lo), pc.less(values, hi))
        else:
            mask = pc.equal(pc.cast(values, pa.string()), key)
        parts[key] = table.filter(pc.fill_null(mask, False))
    placed = sum(p.num_rows for p in parts.values())
    if placed != table.num_rows:
        raise dg.Failure(
            f"{table.num_rows - placed} of {table.num_rows} rows have a {column!r} value outside "
            f"the partitions {partition_keys[0]}..{partition_keys[-1]}"
        )
    return parts


class SutroParquetIOManager(dg.UPathIOManager):
    """Parquet files on any fsspec path, one per asset or partition.

    Args:
        base_path: where files go (a :class:`upath.UPath`, e.g.
            ``UPath("s3://bucket/prefix", **storage_options)``); default ``.``.
        default_format: what unannotated inputs load as.

    Example::

        import dagster as dg
        import polars as pl
        from upath import UPath
        from dagster_sutro import SutroParquetIOManager

        @dg.io_manager
        def parquet(_):
            return SutroParquetIOManager(UPath("/tmp/warehouse"))

        @dg.asset(io_manager_key="parquet")
        def tickets() -> pl.DataFrame:
            return pl.DataFrame({"subject": ["Refund"]})
    """

    extension: str = ".parquet"

    def __init__(self, base_path: UPath | None = None, default_format: OutputFormat = "polars") -> None:
        super().__init__(base_path=base_path)
        self.default_format: OutputFormat = default_format

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        with path.open("wb") as handle:
            if isinstance(obj, ParquetTable):  # a streaming asset's output: copied batch by batch
                with pq.ParquetWriter(handle, obj.schema) as writer:
                    for batch in obj.batches():
                        writer.write_batch(batch)
                return
            pq.write_table(to_arrow(obj), handle)

    def _read(self, path: UPath) -> pa.Table:
        with path.open("rb") as handle:
            return pq.read_table(handle)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        if _wants_stream(context):  # a streaming asset: row group by row group
            return upath_source(path)
        fmt = format_for_type(context.dagster_type.typing_type, self.default_format)
        return from_arrow(self._read(path), fmt)

    def load_partitions(self, context: dg.InputContext) -> Any:
        typing_type = context.dagster_type.typing_type
        if len(context.asset_partition_keys) <= 1 or typing_type is dict or getattr(typing_type, "__origin__", None) is dict:
            return super().load_partitions(context)
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
        tables, paths = [], []
        for key, path in self._get_paths_for_partitions(context).items():
            if not self.path_exists(path):
                if allow_missing:
                    continue
                raise FileNotFoundError(f"partition {key} of {context.asset_key.to_user_string()} is missing: {path}")
            if _wants_stream(context):
                paths.append(path)
                continue
            tables.append(self._read(path))
        if _wants_stream(context):
            return chained([upath_source(p) for p in paths])
        return from_arrow(concat(tables), format_for_type(typing_type, self.default_format))

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not context.has_asset_partitions or len(context.asset_partition_keys) <= 1:
            super().handle_output(context, obj)
            return
        column = (context.definition_metadata or {}).get("partition_expr")
        if not column:
            raise dg.Failure(
                "an output covering several partitions needs a 'partition_expr' column in the "
                "asset's metadata to be split into one Parquet file per partition"
            )
        paths = self._get_paths_for_partitions(context)
        if isinstance(obj, ParquetTable):
            self._split_stream(obj, paths, context.asset_partitions_def, str(column))
            context.add_output_metadata(
                {"path": dg.MetadataValue.path(str(next(iter(paths.values())).parent)),
                 **table_metadata(obj, column_descriptions(context))})
            return
        table = to_arrow(obj)
        parts = split_by_partition(table, list(paths), context.asset_partitions_def, str(column))
        for key, part in parts.items():
            self.make_directory(paths[key].parent)
            self.dump_to_path(context, part, paths[key])
        context.add_output_metadata(
            {"path": dg.MetadataValue.path(str(next(iter(paths.values())).parent)), **self.get_metadata(context, table)}
        )

    def _split_stream(self, obj: ParquetTable, paths: dict[str, UPath], partitions_def: Any, column: str) -> None:
        """One Parquet file per partition, written batch by batch from ``obj``."""
        from contextlib import ExitStack

        with ExitStack() as stack:
            writers: dict[str, pq.ParquetWriter] = {}
            for key, path in paths.items():
                self.make_directory(path.parent)
                writers[key] = stack.enter_context(pq.ParquetWriter(stack.enter_context(path.open("wb")), obj.schema))
            for batch in obj.batches():
                for key, part in split_by_partition(pa.Table.from_batches([batch]), list(paths), partitions_def,
                                                    column).items():
                    if part.num_rows:
                        writers[key].write_table(part)

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, Any]:
        if obj is None:
            return {}
        try:
            return table_metadata(obj if isinstance(obj, ParquetTable) else to_arrow(obj), column_descriptions(context))
        except Exception as exc:  # metadata must never fail the output
            context.log.warning(f"could not describe the output table: {exc}")
            return {}


class ConfigurableSutroParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Configurable :class:`SutroParquetIOManager`.

    Example::

        import dagster as dg
        from dagster_sutro import ConfigurableSutroParquetIOManager

        io = ConfigurableSutroParquetIOManager(
            base_path="s3://bucket/enriched",  # credentials: the AWS chain, or storage_options
            storage_options={"client_kwargs": {"region_name": "eu-west-1"}},
        )
        defs = dg.Definitions(assets=[], resources={"io_manager": io})
    """

    base_path: str = Field(description="Root fsspec URL or local directory for the Parquet files.")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options (for s3fs: key, secret, client_kwargs={'endpoint_url': ...}).",
    )
    default_format: OutputFormat = Field(
        default="polars", description="How unannotated inputs are loaded: polars, pandas or arrow."
    )
    def create_io_manager(self, context: dg.InitResourceContext) -> SutroParquetIOManager:
        from upath import UPath

        return SutroParquetIOManager(UPath(self.base_path, **self.storage_options), self.default_format)


# -- DuckDB


class SutroDuckDBTypeHandler(DbTypeHandler):
    """Stores polars, pandas and Arrow tables in DuckDB through Arrow, and loads them
    as the input annotation asks (``default_format`` when unannotated). Empty
    outputs still create the table, so downstream reads never miss it."""

    def __init__(self, default_format: OutputFormat = "polars", insert_memory_limit: str | None = None,
                 configured_memory_limit: str | None = None) -> None:
        self.default_format: OutputFormat = default_format
        self.insert_memory_limit = insert_memory_limit
        self.configured_memory_limit = configured_memory_limit  # connection_config's, restored after the insert

    def handle_output(self, context: dg.OutputContext, table_slice: TableSlice, obj: Any, connection: Any) -> dict[str, Any]:
        # a streaming asset's ParquetTable is inserted batch by batch (DuckDB reads the Arrow stream)
        table = obj if isinstance(obj, ParquetTable) else to_arrow(obj)
        name = f"{table_slice.schema}.{table_slice.table}"
        if self.insert_memory_limit is not None:
            connection.execute("set memory_limit = ?", [self.insert_memory_limit])
        try:
            connection.execute(f"create schema if not exists {table_slice.schema}")
            connection.register("__sutro_output", table.schema.empty_table())
            connection.execute(f"create table if not exists {name} as select * from __sutro_output limit 0")
            connection.unregister("__sutro_output")
            connection.register("__sutro_output", table.reader() if isinstance(table, ParquetTable) else table)
            connection.execute(f"insert into {name} by name select * from __sutro_output")
        finally:
            connection.unregister("__sutro_output")
            if self.insert_memory_limit is not None and self.configured_memory_limit is not None:
                connection.execute("set memory_limit = ?", [self.configured_memory_limit])
            elif self.insert_memory_limit is not None:
                connection.execute("reset memory_limit")
        return table_metadata(table, column_descriptions(context))

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection: Any) -> Any:
        if _wants_stream(context):  # a streaming asset: Arrow batches from DuckDB, on a cursor of this connection
            held = connection.cursor()  # stays open after the IO manager closes ``connection``
            return open_sql(Database("duckdb", connect=held.cursor), DuckDbClient.get_select_statement(table_slice))
        fmt = format_for_type(context.dagster_type.typing_type, self.default_format)
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return from_arrow(pa.table({}), fmt)
        table = connection.sql(DuckDbClient.get_select_statement(table_slice)).to_arrow_table()
        return from_arrow(table, fmt)

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return _supported_types()


class SutroDuckDBIOManager(DuckDBIOManager):
    """DuckDB tables (``schema.table`` from the asset key) for polars, pandas and Arrow.

    Example::

        import dagster as dg
        import polars as pl
        from dagster_sutro import SutroDuckDBIOManager

        @dg.asset(key_prefix=["support"])
        def tickets() -> pl.DataFrame:
            return pl.DataFrame({"subject": ["Refund"], "body": ["Charged twice"]})

        defs = dg.Definitions(assets=[tickets], resources={"io_manager": SutroDuckDBIOManager(database="w.duckdb")})
    """

    default_format: OutputFormat = Field(
        default="polars", description="How unannotated inputs are loaded: polars, pandas or arrow."
    )
    insert_memory_limit: str | None = Field(
        default="256MB",
        description=(
            "DuckDB memory_limit while an output is inserted (restored afterwards); DuckDB spills "
            "beyond it to its temp directory. Bounds a 10M-row streaming insert (DuckDB's own default "
            "is 80% of RAM: +620 MiB for 10M enriched rows). None keeps the connection's setting."
        ),
    )

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [SutroDuckDBTypeHandler()]

    def create_io_manager(self, context: Any) -> DbIOManager:
        return DbIOManager(
            db_client=DuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=[SutroDuckDBTypeHandler(
                self.default_format, self.insert_memory_limit, (self.connection_config or {}).get("memory_limit"))],
            default_load_type=pa.Table,  # unannotated inputs: the handler converts to default_format
            io_manager_name="SutroDuckDBIOManager",
        )
