"""SutroBatchFunctionOperator(incremental=True) against the local server and moto S3:
a re-triggered run (new run id) over unchanged rows submits nothing, does not defer,
and still writes its output; a changed row is the only row the next run submits
(deferred: the trigger waits for its job, execute_complete merges)."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq
import pytest

from sutro_providers.client.sutro import SutroClient
from tests.airflow.conftest import TICKETS, make_context
from tests.airflow.test_batch_operator import defer, fire, operator

pytestmark = pytest.mark.timeout(600)


def test_retriggered_run_pays_only_for_changed_rows(sutro_staged: Any) -> None:
    out = f"s3://{sutro_staged.bucket}/out"
    first = operator(input_data=TICKETS, output_uri=f"{out}/1.parquet", incremental=True).execute(make_context())
    assert first["rows_submitted"] == len(TICKETS) and first["rows_reused"] == 0

    again = operator(input_data=TICKETS, output_uri=f"{out}/2.parquet", incremental=True, deferrable=True
                     ).execute(make_context(run_id="manual__again"))  # no job: nothing to defer for
    assert again["job_ids"] == [] and again["rows_reused"] == len(TICKETS) and again["state"] == "succeeded"
    assert again["cost_avoided_usd"] == pytest.approx(first["cost_usd"])
    assert sutro_staged.server.admin.job_count() == 1
    table = pq.read_table(f"{out}/2.parquet".removeprefix("s3://"), filesystem=sutro_staged.s3.filesystem())
    assert table.num_rows == len(TICKETS) and all(table["sutro_reused"].to_pylist())

    edited = [dict(t) for t in TICKETS]
    edited[1]["body"] += " again and again"
    op = operator(input_data=edited, output_uri=f"{out}/3.parquet", incremental=True, deferrable=True)
    context = make_context(run_id="manual__edited")
    event = fire(defer(op, context))
    result = op.execute_complete(context, event)
    assert result["rows_submitted"] == 1 and result["rows_reused"] == len(TICKETS) - 1
    with SutroClient(sutro_staged.server.url, sutro_staged.server.api_key) as client:
        assert client.get_job(result["job_ids"][0]).num_rows == 1  # the server got one row
    table = pq.read_table(f"{out}/3.parquet".removeprefix("s3://"), filesystem=sutro_staged.s3.filesystem())
    assert table["sutro_reused"].to_pylist() == [i != 1 for i in range(len(TICKETS))]
    assert sutro_staged.server.admin.job_count() == 2
