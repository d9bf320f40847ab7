"""Streaming assets (``sutro_function_asset(stream=True)``): the upstream is read as a
stream (Parquet on a path, a DuckDB table), the enriched table reaches the IO manager
as the enriched Parquet file and is copied / inserted batch by batch, same metadata."""

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dagster_sutro import ConfigurableSutroParquetIOManager, SutroDuckDBIOManager, sutro_function_asset
from dagster_sutro.streams import ParquetTable
from sutro_providers.inputs.sources import SourceReader

ROWS = 300


def _tickets() -> pa.Table:
    return pa.table({
        "ticket_id": pa.array(range(ROWS), pa.int64()),
        "subject": [f"Refund request {i}" for i in range(ROWS)],
        "body": [f"Customer {i} was charged twice for the Acme plan" for i in range(ROWS)],
    })


@dg.asset(key=["support", "tickets"])
def tickets() -> pa.Table:
    return _tickets()


def _triaged(**kw: Any) -> dg.AssetsDefinition:
    return sutro_function_asset(function="ticket-triage", upstream=tickets, key=["support", "tickets_triaged"],
                                stream=True, options={"batch_size": 64, "id_column": "ticket_id"}, **kw)


def test_parquet_upstream_streams_into_duckdb(sutro_resource: Any, instance: Any, tmp_path: Path) -> None:
    database = str(tmp_path / "w.duckdb")
    parquet = ConfigurableSutroParquetIOManager(base_path=str(tmp_path / "lake"))
    result = dg.materialize(
        [tickets, _triaged(io_manager_key="warehouse")], instance=instance,
        resources={"sutro": sutro_resource, "io_manager": parquet, "warehouse": SutroDuckDBIOManager(database=database)},
    )
    assert result.success
    with duckdb.connect(database) as con:
        table = con.sql("select * from support.tickets_triaged order by ticket_id").to_arrow_table()
    assert table.column("ticket_id").to_pylist() == list(range(ROWS))
    assert table.column("body").to_pylist() == _tickets().column("body").to_pylist()
    assert None not in table.column("label").to_pylist()
    materialization = result.asset_materializations_for_node("support__tickets_triaged")[0]
    meta = materialization.metadata
    assert meta["dagster/row_count"].value == ROWS
    names = [c.name for c in meta["dagster/column_schema"].value.columns]
    assert names == table.column_names


def test_duckdb_upstream_streams_into_parquet(sutro_resource: Any, instance: Any, tmp_path: Path) -> None:
    database = str(tmp_path / "w.duckdb")
    lake = tmp_path / "lake"
    result = dg.materialize(
        [tickets, _triaged(io_manager_key="lake")], instance=instance,
        resources={"sutro": sutro_resource, "io_manager": SutroDuckDBIOManager(database=database),
                   "lake": ConfigurableSutroParquetIOManager(base_path=str(lake))},
    )
    assert result.success
    out = ParquetTable.open(str(lake / "support" / "tickets_triaged.parquet"))
    assert out.num_rows == ROWS
    rows = pa.Table.from_batches(list(out.batches()))
    assert rows.column("ticket_id").to_pylist() == list(range(ROWS))
    assert set(rows.column_names) >= {"ticket_id", "subject", "body", "label", "confidence", "sutro_skip_reason"}


def test_the_upstream_is_handed_over_as_a_stream(tmp_path: Path) -> None:
    """What the IO managers give a streaming asset: a SourceReader, not a table."""
    database = str(tmp_path / "w.duckdb")
    got: dict[str, Any] = {}

    @dg.asset(key=["support", "peek"], ins={"upstream": dg.AssetIn(key=["support", "tickets"])},
              io_manager_key="mem")
    def peek(upstream: SourceReader) -> int:
        got["type"] = type(upstream)
        got["rows"] = sum(b.num_rows for b in upstream.batches())
        return 0

    for io in (SutroDuckDBIOManager(database=database), ConfigurableSutroParquetIOManager(base_path=str(tmp_path))):
        got.clear()
        result = dg.materialize([tickets, peek], resources={"io_manager": io, "mem": dg.mem_io_manager})
        assert result.success and got == {"type": SourceReader, "rows": ROWS}, (io, got)



def test_streaming_asset_never_holds_the_enriched_table(sutro_resource: Any, instance: Any, tmp_path: Path) -> None:
    """The step's Arrow allocations peak at a few batches, not at the enriched table:
    measured on a proxy of Arrow's memory pool set as the default for the run (every
    Arrow allocation of the step, its reader and prefetch threads included). A step
    that gathers the enriched table (``materialize``) peaks above the table's size
    (bench B9 measures the process's RSS: ~5 GiB at 10M rows when it did). The label
    counts still reach the metadata, summarized batch by batch."""
    rows = 300_000  # the table (~44 MiB) then dwarfs the fixed working set (~11 MiB)
    lake = tmp_path / "lake"
    (lake / "support").mkdir(parents=True)
    ids = pa.array(range(rows), pa.int64())
    pq.write_table(pa.table({"ticket_id": ids,
                             "subject": pa.array([f"Refund request {i}" for i in range(rows)]),
                             "body": pa.array([f"Customer {i} was charged twice for the Acme plan" for i in range(rows)])}),
                   lake / "support" / "tickets.parquet", row_group_size=8192)
    database = str(tmp_path / "w.duckdb")
    triaged = sutro_function_asset(function="ticket-triage", upstream=dg.AssetSpec(key=["support", "tickets"]),
                                   key=["support", "tickets_triaged"], stream=True, io_manager_key="warehouse",
                                   options={"batch_size": 8192, "id_column": "ticket_id"})
    default = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(default)
    pa.set_memory_pool(pool)
    try:
        result = dg.materialize(
            [dg.AssetSpec(key=["support", "tickets"]), triaged], selection=[triaged.key], instance=instance,
            resources={"sutro": sutro_resource, "io_manager": ConfigurableSutroParquetIOManager(base_path=str(lake)),
                       "warehouse": SutroDuckDBIOManager(database=database)})
    finally:
        pa.set_memory_pool(default)
    assert result.success
    with duckdb.connect(database) as con:
        enriched = con.sql("select * from support.tickets_triaged").to_arrow_table()
    assert enriched.num_rows == rows
    meta = result.asset_materializations_for_node("support__tickets_triaged")[0].metadata
    assert "sutro/label_distribution" in meta, sorted(meta)
    print(f"Arrow peak {pool.max_memory() / 2**20:.1f} MiB, enriched table {enriched.nbytes / 2**20:.1f} MiB")
    assert pool.max_memory() < enriched.nbytes / 2, (pool.max_memory(), enriched.nbytes)
