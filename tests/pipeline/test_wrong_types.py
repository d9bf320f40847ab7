"""One rule for wrong types, on every input type (dicts, pandas, polars, Arrow, CSV,
Parquet): numbers, booleans and dates are rendered as text into string fields (a
column that mixes text and numbers is a text column), and text is never converted
into a number. What is checked is what was staged for Sutro (the signed shard file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.errors import SutroInputError
from sutro_providers.identity import RunIdentity
from tests.pipeline.conftest import options

MIXED = ["pro", 7, 2.5, True, "slow page"]  # text mixed with numbers and a boolean
RENDERED = ["pro", "7", "2.5", "true", "slow page"]
SUBJECTS = [1, 2, 3, 4, 5]  # an all-integer column for a string field


def _sources(tmp_path: Path, **columns: list[Any]) -> dict[str, Any]:
    """The same columns as every input type. Arrow and Parquet columns have one type,
    so a mixed column reaches them already as text (as a CSV file reads it)."""
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    mixed = {n for n, v in columns.items() if len({type(x) for x in v}) > 1}
    arrow = pa.table({n: pa.array([_text(x) for x in v] if n in mixed else v) for n, v in columns.items()})
    csv, parquet = tmp_path / "t.csv", tmp_path / "t.parquet"
    csv.write_text(",".join(columns) + "\n" + "".join(",".join(_text(x) for x in r.values()) + "\n" for r in rows))
    pq.write_table(arrow, parquet)
    frame = pd.DataFrame({n: pd.Series(v, dtype=object if n in mixed else None) for n, v in columns.items()})
    return {"list": rows, "pandas": frame, "polars": pl.DataFrame(rows, strict=False), "arrow": arrow,
            "csv": str(csv), "parquet": str(parquet)}


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _staged(pipeline: Any, identity: RunIdentity) -> pa.Table:
    stage_id = pipeline._ledger(identity).load().stage_id  # the folder this staging of the run wrote
    with pipeline.area.fs.open(pipeline.area.shard_path(identity, 0, stage_id), "rb") as f:
        return pq.read_table(f)


@pytest.mark.parametrize("kind", ["list", "pandas", "polars", "arrow", "csv", "parquet"])
def test_numbers_are_sent_as_text_into_string_fields(pipeline: Any, tmp_path: Path, kind: str) -> None:
    source = _sources(tmp_path, subject=SUBJECTS, body=MIXED)[kind]
    identity = RunIdentity.of("test", kind="types-as-text", source=kind)
    result = pipeline.run(source, identity, options(keep_staged=True))
    assert result.manifest.rows_out == 5
    staged = _staged(pipeline, identity)
    assert staged.schema.field("subject").type == pa.string() and staged.schema.field("body").type == pa.string()
    assert staged["subject"].to_pylist() == ["1", "2", "3", "4", "5"]
    assert staged["body"].to_pylist() == RENDERED


@pytest.mark.parametrize("kind", ["list", "pandas", "polars", "arrow", "csv", "parquet"])
def test_text_is_never_converted_into_numbers(pipeline: Any, sutro_clean: Any, tmp_path: Path, kind: str) -> None:
    # "40" beside 40: a CSV reads a column of digits as numbers, so its text is "forty"
    employees: list[Any] = [40, "forty" if kind == "csv" else "40", 12, 7, 3]
    messages = ["hello", "demo please", "pricing?", "hi", "bye"]
    source = _sources(tmp_path, message=messages, employees=employees)[kind]
    with pytest.raises(SutroInputError, match=r"column 'employees' has type (large_)?string.*declares 'employees' "
                                              r"as integer.*text is never converted into a number"):
        pipeline.run(source, RunIdentity.of("test", kind="text-not-number", source=kind),
                     options(function="lead-extractor"))
    assert sutro_clean.admin.job_count() == 0
