"""UUID id columns (``uuid.UUID`` values, an Arrow ``pa.uuid()`` column, a pandas
column of UUIDs) go through validation, the source snapshot, the row-id check and
the join, and come back as UUIDs in the table and in the output Parquet."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.errors import SutroInputError
from sutro_providers.identity import RunIdentity
from sutro_providers.realtime import run_realtime
from tests.pipeline.conftest import options, tickets

ROWS = [{"uid": uuid.UUID(int=(i + 1) * 7919), **{k: r[k] for k in ("subject", "body")}}
        for i, r in enumerate(tickets(30))]
IDS = [r["uid"] for r in ROWS]


def _sources() -> dict[str, Any]:
    arrow = pa.table({"uid": pa.array([u.bytes for u in IDS], pa.uuid()),
                      "subject": [r["subject"] for r in ROWS], "body": [r["body"] for r in ROWS]})
    return {"list": ROWS, "arrow": arrow, "pandas": pd.DataFrame(ROWS)}


@pytest.mark.parametrize("kind", ["list", "arrow", "pandas"])
def test_uuid_ids_round_trip(pipeline: Any, sutro_s3_server: Any, sutro_s3_bucket: str, kind: str) -> None:
    uri = f"s3://{sutro_s3_bucket}/out/{kind}.parquet"
    result = pipeline.run(_sources()[kind], RunIdentity.of("test", kind="uuid", source=kind),
                          options(id_column="uid", batch_size=7, max_rows_per_job=12, output_uri=uri,
                                  output_storage_options=sutro_s3_server.storage_options))
    assert result.manifest.rows_out == len(ROWS) and len(result.manifest.job_ids) == 3
    assert result.table is not None and result.table.schema.field("uid").type == pa.uuid()
    assert result.table["uid"].to_pylist() == IDS
    assert result.table["label"].null_count == 0
    landed = pq.read_table(uri.removeprefix("s3://"), filesystem=sutro_s3_server.filesystem())
    assert landed.schema.field("uid").type == pa.uuid() and landed["uid"].to_pylist() == IDS


def test_uuid_ids_with_skipped_rows(pipeline: Any) -> None:
    rows = [dict(r) for r in ROWS]
    rows[4]["body"] = None
    result = pipeline.run(rows, RunIdentity.of("test", kind="uuid-skip"),
                          options(id_column="uid", on_invalid_rows="skip", batch_size=8))
    assert result.table is not None and result.table["uid"].to_pylist() == IDS
    assert result.table["label"].null_count == 1 and result.table["label"][4].as_py() is None


def test_uuid_ids_in_real_time(client: Any) -> None:
    result = run_realtime(client, ROWS, options(id_column="uid"), concurrency=4)
    assert result.table is not None and result.table["uid"].to_pylist() == IDS


def test_duplicate_uuid_ids_named(pipeline: Any, sutro_clean: Any) -> None:
    rows = [dict(r) for r in ROWS]
    rows[9]["uid"] = rows[2]["uid"]
    with pytest.raises(SutroInputError, match=rf"id_column 'uid' has duplicate values: UUID\('{IDS[2]}'\) \(rows 2, 9\)"):
        pipeline.run(rows, RunIdentity.of("test", kind="uuid-dup"), options(id_column="uid", batch_size=4))
    assert sutro_clean.admin.job_count() == 0
