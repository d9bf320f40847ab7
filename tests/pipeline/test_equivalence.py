"""The same table through every input type gives the same enriched table, and
the real-time runner gives the same table as the batch path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from sutro_providers.identity import RunIdentity
from sutro_providers.realtime import run_realtime
from tests.pipeline.conftest import options, tickets

ROWS = tickets(60)


def _sources(tmp_path: Path) -> dict[str, Any]:
    table = pa.Table.from_pylist(ROWS)
    csv_path, parquet_path = tmp_path / "t.csv", tmp_path / "t.parquet"
    pcsv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path)
    return {
        "list": ROWS,
        "pandas": pd.DataFrame(ROWS),
        "polars": pl.DataFrame(ROWS),
        "arrow": table,
        "reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=17)),
        "csv": str(csv_path),
        "parquet": str(parquet_path),
    }


def test_every_input_type_gives_the_same_enriched_table(pipeline: Any, sutro_clean: Any, tmp_path: Path) -> None:
    results = {}
    for name, source in _sources(tmp_path).items():
        result = pipeline.run(source, RunIdentity.of("test", kind=name, path=str(tmp_path)), options())
        assert result.manifest.state == "succeeded"
        assert result.manifest.rows_out == len(ROWS)
        results[name] = result.table
    reference = results.pop("list")
    assert reference.column_names[:4] == ["ticket_id", "subject", "body", "customer_tier"]
    assert {"label", "confidence", "rationale"} <= set(reference.column_names)
    assert reference["ticket_id"].to_pylist() == [r["ticket_id"] for r in ROWS]
    cols = ["ticket_id", "label", "confidence", "rationale"]
    for name, table in results.items():
        # carried columns keep their source type (pandas 3 strings are large_string)
        assert table.select(cols).cast(reference.select(cols).schema).equals(reference.select(cols)), name
    assert sutro_clean.admin.job_count() == 7


def test_realtime_runner_matches_batch(pipeline: Any, client: Any) -> None:
    batch = pipeline.run(ROWS, RunIdentity.of("test", kind="batch-vs-realtime"), options())
    live = run_realtime(client, ROWS, options(), concurrency=8)
    cols = ["ticket_id", "label", "confidence", "rationale"]
    assert live.table is not None and batch.table is not None
    assert live.table.select(cols).equals(batch.table.select(cols))
    assert live.manifest.rows_out == batch.manifest.rows_out == len(ROWS)
    assert live.manifest.input_tokens > 0


def test_extraction_function_unpacks_typed_columns(pipeline: Any) -> None:
    rows = [{"message": f"Hi, I'm the CTO of Acme{i}, we'd love a demo", "employees": 10 * i} for i in range(20)]
    result = pipeline.run(rows, RunIdentity.of("test", kind="extract"), options(function="lead-extractor"))
    table = result.table
    assert table is not None and table.num_rows == 20
    assert table.schema.field("intent_score").type == pa.float64()
    assert table.schema.field("wants_demo").type == pa.bool_()
    assert set(table["seniority"].to_pylist()) <= {"individual", "manager", "director", "executive"}


@pytest.mark.parametrize("empty", ["list", "arrow", "polars", "pandas"])
def test_empty_input_submits_nothing(pipeline: Any, sutro_clean: Any, empty: str, caplog: Any) -> None:
    full: Any = {"list": ROWS[:3], "arrow": pa.Table.from_pylist(ROWS[:3]), "polars": pl.DataFrame(ROWS[:3]),
                 "pandas": pd.DataFrame(ROWS[:3])}[empty]
    source = [] if empty == "list" else full.iloc[:0] if empty == "pandas" else full.slice(0, 0)
    with caplog.at_level("INFO", logger="sutro_providers"):
        result = pipeline.run(source, RunIdentity.of("test", kind="empty", source=empty), options())
    assert result.manifest.state == "noop"
    assert result.manifest.job_ids == []
    assert sutro_clean.admin.job_count() == 0
    assert any("empty" in r.getMessage() for r in caplog.records)
    # the enriched schema, as a run over rows of the same kind of input gives it
    assert result.table is not None and result.table.num_rows == 0
    assert len(result.to_pandas()) == 0 and result.to_polars().height == 0
    ran = pipeline.run(full, RunIdentity.of("test", kind="not-empty", source=empty), options()).table
    assert ran is not None
    if empty == "list":  # no columns of its own: the declared inputs stand for them
        assert result.table.column_names == ["subject", "body", "customer_tier", "label", "confidence",
                                             "rationale", "sutro_skip_reason"]
        assert result.table.schema.field("label") == ran.schema.field("label")
    else:
        assert result.table.schema == ran.schema
