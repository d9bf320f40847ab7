"""Reading Parquet row group by row group (:func:`parquet_io.row_group_batches`) and
the results columns the collector reads (only ``__sutro_row_id``, ``outputs`` and
``confidence_score``: the results also carry the prompts)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.collection import collector as collection
from sutro_providers.collection.collector import Collector
from sutro_providers.columns import ROW_ID
from sutro_providers.errors import SutroResultsError
from sutro_providers.function_spec import FunctionSpec, InputField
from sutro_providers.options import EnrichmentOptions
from sutro_providers.parquet_io import row_group_batches


def _file(path: Path, rows: int, row_group: int) -> Path:
    table = pa.table({ROW_ID: pa.array(range(rows), pa.int64()), "text": [f"t{i}" for i in range(rows)]})
    pq.write_table(table, path, row_group_size=row_group)
    return path


def test_batches_keep_order_and_never_span_row_groups(tmp_path: Path) -> None:
    path = _file(tmp_path / "a.parquet", 100, 30)
    with fsspec.open(str(path), "rb") as handle:  # a Python file, as s3fs hands out
        batches = list(row_group_batches(handle, 8))
    assert [len(b) for b in batches] == [8, 8, 8, 6] * 3 + [8, 2]
    assert pa.Table.from_batches(batches)[ROW_ID].to_pylist() == list(range(100))


def test_columns_are_projected_and_an_empty_file_has_no_batches(tmp_path: Path) -> None:
    with pa.OSFile(str(_file(tmp_path / "a.parquet", 10, 4))) as handle:
        assert [b.schema.names for b in row_group_batches(handle, 100, ["text"])] == [["text"]] * 3
    with pa.OSFile(str(_file(tmp_path / "e.parquet", 0, 4))) as handle:
        assert list(row_group_batches(handle, 100)) == []


SPEC = FunctionSpec(name="triage", kind="classification", labels=["a", "b"], inputs=[InputField(name="text")])


def _collector(paths: list[Path]) -> Collector:
    collector = Collector(None, SimpleNamespace(), None, SimpleNamespace(shards=[]),  # type: ignore[arg-type]
                          EnrichmentOptions(function="triage", batch_size=7), SPEC)
    collector._paths = paths
    return collector


def test_results_are_read_without_the_prompt_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[list[str]] = []
    unpack = collection.unpack_outputs
    monkeypatch.setattr(collection, "unpack_outputs", lambda t, *a, **k: read.append(t.column_names) or unpack(t, *a, **k))
    rows = 50
    results = pa.table({
        ROW_ID: pa.array(range(rows), pa.int64()),
        "inputs": [f"prompt {i}" for i in range(rows)],
        "outputs": [json.dumps({"label": "ab"[i % 2], "rationale": f"r{i}"}) for i in range(rows)],
        "confidence_score": [i / rows for i in range(rows)],
    })
    path = tmp_path / "s0000.parquet"
    pq.write_table(results, path, row_group_size=20)
    tables = list(_collector([path])._results())
    assert read and all(names == [ROW_ID, "outputs", "confidence_score"] for names in read)
    assert max(t.num_rows for t in tables) <= 7
    out = pa.concat_tables(tables)
    assert out.column_names == [ROW_ID, "label", "confidence", "rationale"]
    assert out[ROW_ID].to_pylist() == list(range(rows))
    assert out["label"].to_pylist() == ["ab"[i % 2] for i in range(rows)]
    assert out["rationale"][49].as_py() == "r49"


def test_results_without_outputs_name_all_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "s0000.parquet"
    pq.write_table(pa.table({ROW_ID: [1], "inputs": ["p"], "answer": ["x"]}), path)
    with pytest.raises(SutroResultsError, match=r"no 'outputs' column .*'inputs', 'answer'"):
        list(_collector([path])._results())
