"""IO managers: Parquet on local disk and on a moto S3 server, and DuckDB; polars,
pandas and Arrow; single partitions and single-run backfills over several days."""


import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from dagster_sutro import ConfigurableSutroParquetIOManager, SutroDuckDBIOManager

DAILY = dg.DailyPartitionsDefinition(start_date="2026-11-01")


def _rows(context: dg.AssetExecutionContext) -> pl.DataFrame:
    window = context.partition_time_window
    days = (window.end - window.start).days
    start = window.start.replace(tzinfo=None)
    return pl.DataFrame({
        "id": [f"{d}-{i}" for d in range(days) for i in range(3)],
        "created_at": [start + dt.timedelta(days=d, hours=i * 5) for d in range(days) for i in range(3)],
    })


@dg.asset(partitions_def=DAILY, metadata={"partition_expr": "created_at"}, key_prefix=["s"],
          backfill_policy=dg.BackfillPolicy.single_run())
def events(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return _rows(context)


@dg.asset(partitions_def=DAILY, metadata={"partition_expr": "created_at"}, key_prefix=["s"],
          backfill_policy=dg.BackfillPolicy.single_run())
def as_pandas(events: pd.DataFrame) -> pd.DataFrame:
    assert isinstance(events, pd.DataFrame)
    return events.assign(n=range(len(events)))


@dg.asset(partitions_def=DAILY, metadata={"partition_expr": "created_at"}, key_prefix=["s"],
          backfill_policy=dg.BackfillPolicy.single_run())
def as_arrow(as_pandas: pa.Table) -> pa.Table:
    assert isinstance(as_pandas, pa.Table)
    return as_pandas


@dg.asset(partitions_def=DAILY, key_prefix=["s"], ins={"as_arrow": dg.AssetIn(key=["s", "as_arrow"])},
          io_manager_key="mem")
def summary(as_arrow) -> int:  # unannotated: loaded as the default (polars)
    assert isinstance(as_arrow, pl.DataFrame)
    return as_arrow.height


ASSETS = [events, as_pandas, as_arrow, summary]


def _materialize(io_manager: Any, instance: Any, **kw: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(ASSETS, resources={"io_manager": io_manager, "mem": dg.InMemoryIOManager()},
                          instance=instance, **kw)


def _check_days(result: dg.ExecuteInProcessResult, expected_rows: int) -> None:
    assert result.success
    assert result.output_for_node("s__summary") == expected_rows
    mats = result.asset_materializations_for_node("s__as_arrow")
    assert mats[-1].metadata["dagster/row_count"].value == expected_rows


def test_parquet_on_local_disk(tmp_path: Path, instance: Any) -> None:
    io = ConfigurableSutroParquetIOManager(base_path=str(tmp_path))
    _check_days(_materialize(io, instance, partition_key="2026-11-02"), 3)
    assert (tmp_path / "s" / "as_arrow" / "2026-11-02.parquet").exists()


def test_parquet_on_s3_single_run_backfill(sutro_s3_server: Any, sutro_s3_bucket: str, instance: Any) -> None:
    io = ConfigurableSutroParquetIOManager(base_path=f"s3://{sutro_s3_bucket}/warehouse",
                                           storage_options=sutro_s3_server.storage_options)
    keys = dg.PartitionKeyRange("2026-11-03", "2026-11-05")
    # summary is not single-run: materialize the three backfilled assets over the range
    result = dg.materialize(ASSETS[:3], resources={"io_manager": io}, instance=instance,
                            tags={"dagster/asset_partition_range_start": keys.start,
                                  "dagster/asset_partition_range_end": keys.end})
    assert result.success
    fs = sutro_s3_server.filesystem()
    files = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{sutro_s3_bucket}/warehouse/s/as_arrow"))
    assert files == ["2026-11-03.parquet", "2026-11-04.parquet", "2026-11-05.parquet"]
    # each file holds its own day only
    import pyarrow.parquet as pq

    with fs.open(f"{sutro_s3_bucket}/warehouse/s/as_arrow/2026-11-04.parquet", "rb") as handle:
        day = pq.read_table(handle)
    assert day.num_rows == 3
    assert {d.date() for d in day.column("created_at").to_pylist()} == {dt.date(2026, 11, 4)}
    # one partition loads back as one table
    _check_days(_materialize(io, instance, partition_key="2026-11-04"), 3)


def test_parquet_split_rejects_rows_outside_the_range(tmp_path: Path, instance: Any) -> None:
    @dg.asset(partitions_def=DAILY, metadata={"partition_expr": "created_at"},
              backfill_policy=dg.BackfillPolicy.single_run())
    def stray() -> pl.DataFrame:
        return pl.DataFrame({"created_at": [dt.datetime(2026, 11, 3), dt.datetime(2027, 1, 1)]})

    io = ConfigurableSutroParquetIOManager(base_path=str(tmp_path))
    result = dg.materialize([stray], resources={"io_manager": io}, instance=instance, raise_on_error=False,
                            tags={"dagster/asset_partition_range_start": "2026-11-03",
                                  "dagster/asset_partition_range_end": "2026-11-04"})
    assert not result.success
    assert not list(tmp_path.rglob("*.parquet"))


def test_duckdb_partitions_and_types(tmp_path: Path, instance: Any) -> None:
    database = str(tmp_path / "w.duckdb")
    io = SutroDuckDBIOManager(database=database)
    for day in ("2026-11-02", "2026-11-03", "2026-11-02"):  # re-materializing a day replaces it
        _check_days(_materialize(io, instance, partition_key=day), 3)
    with duckdb.connect(database) as con:
        rows = con.execute("select count(*), count(distinct id), min(n), max(n) from s.as_arrow").fetchone()
    assert rows == (6, 3, 0, 2)


def test_duckdb_range_loads_as_one_table(tmp_path: Path, instance: Any) -> None:
    io = SutroDuckDBIOManager(database=str(tmp_path / "w.duckdb"), default_format="arrow")
    result = dg.materialize(ASSETS[:3], resources={"io_manager": io}, instance=instance,
                            tags={"dagster/asset_partition_range_start": "2026-11-03",
                                  "dagster/asset_partition_range_end": "2026-11-06"})
    assert result.success
    mats = result.asset_materializations_for_node("s__as_arrow")
    assert mats[0].metadata["dagster/row_count"].value == 12


def test_unpartitioned_round_trip_every_type(tmp_path: Path, instance: Any) -> None:
    """Each input annotation gets its type back; unannotated inputs get default_format."""

    @dg.asset
    def table() -> pa.Table:
        return pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]})

    @dg.asset(io_manager_key="mem")
    def loaded(context: dg.AssetExecutionContext, table) -> dict[str, str]:
        return {"default": type(table).__module__.split(".")[0]}

    @dg.asset(io_manager_key="mem")
    def as_polars(table: pl.DataFrame) -> int:
        assert isinstance(table, pl.DataFrame) and table["b"].null_count() == 1
        return len(table)

    @dg.asset(io_manager_key="mem")
    def as_pandas(table: pd.DataFrame) -> int:
        assert isinstance(table, pd.DataFrame) and table["b"].isna().sum() == 1
        return len(table)

    @dg.asset(io_manager_key="mem")
    def as_arrow(table: pa.Table) -> int:
        assert isinstance(table, pa.Table) and table.column("a").to_pylist() == [1, 2, 3]
        return len(table)

    for io in (ConfigurableSutroParquetIOManager(base_path=str(tmp_path / "pq"), default_format="pandas"),
               SutroDuckDBIOManager(database=str(tmp_path / "w.duckdb"), default_format="pandas")):
        result = dg.materialize([table, loaded, as_polars, as_pandas, as_arrow], instance=instance,
                                resources={"io_manager": io, "mem": dg.InMemoryIOManager()})
        assert [result.output_for_node(n) for n in ("as_polars", "as_pandas", "as_arrow")] == [3, 3, 3]
        assert result.output_for_node("loaded") == {"default": "pandas"}


class _Recording:
    """A real DuckDB connection that also records what the handler executes, and the
    memory limit in force when the insert runs."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.limit_at_insert: str | None = None

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("insert into"):
            self.limit_at_insert = self.connection.execute("select current_setting('memory_limit')").fetchone()[0]
        return self.connection.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


@pytest.mark.parametrize("configured", [None, "3GB"])
def test_duckdb_insert_runs_under_the_insert_memory_limit_and_restores_it(tmp_path: Path,
                                                                         configured: str | None) -> None:
    from dagster._core.storage.db_io_manager import TableSlice

    from dagster_sutro.io_managers import SutroDuckDBTypeHandler

    with duckdb.connect(str(tmp_path / "w.duckdb"), config={"memory_limit": configured} if configured else {}) as con:
        before = con.execute("select current_setting('memory_limit')").fetchone()[0]
        recording = _Recording(con)
        handler = SutroDuckDBTypeHandler("arrow", "64MB", configured)
        handler.handle_output(None, TableSlice(table="t", schema="s"), pa.table({"n": [1, 2, 3]}), recording)  # type: ignore[arg-type]
        assert recording.limit_at_insert == "61.0 MiB"  # DuckDB shows 64 MB in MiB
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == before
        assert con.execute("select count(*) from s.t").fetchone() == (3,)
