"""``@task.sutro``: registration, what the function may return, one run per map index
(against the local server and moto S3; no Airflow DB)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import DAG, task

from airflow_provider.decorators.sutro import SutroDecoratedOperator, sutro_task
from sutro_providers.identity import RunIdentity
from tests.airflow.conftest import TICKETS, make_context

pytestmark = pytest.mark.timeout(120)

FAST = {"function_name": "ticket-triage", "poll_interval": 0.1, "max_poll_interval": 0.3, "deferrable": False}


def decorated(fn: Any, *args: Any, **kwargs: Any) -> SutroDecoratedOperator:
    """The operator of ``@task.sutro(**FAST, **kwargs)`` over ``fn(*args)`` in a fresh DAG."""
    with DAG(dag_id="taskflow", schedule=None, start_date=datetime(2026, 1, 1)):
        out = task.sutro(task_id="tickets", **{**FAST, **kwargs})(fn)(*args)
    op = out.operator
    assert isinstance(op, SutroDecoratedOperator)
    return op


def read(s3: Any, uri: str) -> pa.Table:
    return pq.read_table(uri.removeprefix("s3://"), filesystem=s3.filesystem())


def test_task_sutro_is_registered_with_the_providers_manager() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    decorators = ProvidersManagerTaskRuntime().taskflow_decorators
    assert decorators["sutro"] is sutro_task
    assert task.sutro is sutro_task  # what DAG authors write
    op = decorated(lambda: TICKETS)
    assert op.task_type == "SutroDecoratedOperator" and op.custom_operator_name == "@task.sutro"


@pytest.mark.parametrize("kind", ["rows", "pandas", "arrow"])
def test_the_returned_rows_are_enriched(kind: str, sutro_staged: Any) -> None:
    output = f"s3://{sutro_staged.bucket}/out/{kind}.parquet"

    def tickets(n: int) -> Any:
        rows = TICKETS[:n]
        return {"rows": rows, "pandas": pd.DataFrame(rows), "arrow": pa.Table.from_pylist(rows)}[kind]

    result = decorated(tickets, 3, output_uri=output).execute(make_context())
    assert result["state"] == "succeeded" and result["rows_out"] == 3  # the manifest, not the rows
    table = read(sutro_staged.s3, output)
    assert table.column("subject").to_pylist() == [t["subject"] for t in TICKETS[:3]]
    assert table.column("label").null_count == 0
    assert sutro_staged.server.admin.job_count() == 1


def test_a_returned_query_runs_on_conn_id_with_jinja_rendered(sutro_staged: Any, sqlite_db: Path) -> None:
    with sqlite3.connect(sqlite_db) as db:
        db.execute("CREATE TABLE tickets (id INTEGER, subject TEXT, body TEXT, customer_tier TEXT, day TEXT)")
        db.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?, ?)",
                       [(i, t["subject"], t["body"], t["customer_tier"], "manual__1" if i < 3 else "other")
                        for i, t in enumerate(TICKETS)])
    output = f"s3://{sutro_staged.bucket}/out/sql.parquet"

    def query() -> str:
        return "SELECT id, subject, body, customer_tier FROM tickets WHERE day = '{{ ti.run_id }}' ORDER BY id"

    op = decorated(query, conn_id="warehouse", output_uri=output, id_column="id")
    assert op.execute(make_context())["rows_out"] == 3
    assert op.sql == "SELECT id, subject, body, customer_tier FROM tickets WHERE day = 'manual__1' ORDER BY id"
    assert read(sutro_staged.s3, output).column("id").to_pylist() == [0, 1, 2]


@pytest.mark.parametrize(("returned", "kwargs", "message"), [
    (42, {}, "must return a list of row dicts"),
    ([{"subject": "a"}, "not a row"], {}, "must return a list of row dicts"),
    ("SELECT 1", {}, "has no conn_id"),
    ("  ", {"conn_id": "warehouse"}, "empty SQL query"),
])
def test_a_wrong_return_value_fails_before_any_job(returned: Any, kwargs: dict[str, Any], message: str,
                                                   sutro_staged: Any) -> None:
    op = decorated(lambda: returned, **kwargs)
    with pytest.raises(TypeError, match=message):
        op.execute(make_context())
    assert sutro_staged.server.admin.job_count() == 0


def test_input_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="not input_uri="):
        decorated(lambda: TICKETS, input_uri="s3://b/x.parquet")


def test_each_map_index_is_its_own_run_and_a_retry_reattaches(sutro_staged: Any) -> None:
    """What ``.expand()`` gives each mapped task instance: its map index. Three map
    indexes make three jobs; map index 1 run again (its retry) makes none."""
    server = sutro_staged.server

    def tickets(i: int) -> list[dict[str, Any]]:
        return [TICKETS[i], TICKETS[(i + 1) % len(TICKETS)]]

    def run(i: int) -> dict[str, Any]:
        op = decorated(tickets, i, output_uri=f"s3://{sutro_staged.bucket}/out/{i}.parquet")
        return op.execute(make_context(dag_id="taskflow", task_id="tickets", map_index=i))

    first = [run(i) for i in range(3)]
    assert server.admin.job_count() == 3
    assert len({tuple(m["job_ids"]) for m in first}) == 3
    names = server.admin.stats()["jobs"]["by_name"]
    for i in range(3):
        prefix = "sp-" + RunIdentity.airflow("taskflow", "tickets", "manual__1", i).short
        assert sum(c for n, c in names.items() if n.startswith(prefix)) == 1, names
    again = run(1)
    assert server.admin.job_count() == 3  # reattached to map index 1's job
    assert again["job_ids"] == first[1]["job_ids"] and again["rows_out"] == 2
