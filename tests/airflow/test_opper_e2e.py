"""An Opper run under a real Airflow (``airflow dags test``) against the local server:
every row once, usage and cost in the XCom manifest, tags and the parent span on
each call (the server's call log says so)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.airflow.conftest import conn_json
from tests.airflow.harness import (
    TEST_DAGS,
    all_log_text,
    base_env,
    prepare_home,
    query,
    run_cli,
    xcom_values,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
ROWS = 40


def test_airflow_dags_test_enriches_through_opper(migrated_home: Path, tmp_path: Path, sutro_clean: Any) -> None:
    httpx.post(f"{sutro_clean.url}/_opper/reset", timeout=10).raise_for_status()
    source, output = tmp_path / "tickets.parquet", tmp_path / "out" / "triaged.parquet"
    pq.write_table(pa.table({"ticket_id": [f"T-{i}" for i in range(ROWS)],
                             "subject": [f"subject {i}" for i in range(ROWS)],
                             "body": [f"body {i}" for i in range(ROWS)]}), source)
    home = prepare_home(migrated_home, tmp_path / "home", [TEST_DAGS / "opper_e2e.py"])
    env = base_env(home, home / "dags")
    env["AIRFLOW_CONN_OPPER_DEFAULT"] = conn_json(conn_type="opper", host=sutro_clean.url, password=sutro_clean.api_key,
                                                  extra={"staging_url": str(tmp_path / "staging")})
    env.update(OPPER_E2E_INPUT=str(source), OPPER_E2E_OUTPUT=str(output))

    proc = run_cli(["dags", "test", "opper_ticket_enrichment", "2026-11-21"], env, timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]

    table = pq.read_table(output)
    assert sorted(table["ticket_id"].to_pylist()) == sorted(f"T-{i}" for i in range(ROWS))
    assert table["label"].null_count == 0 and table.schema.field("urgent").type == pa.bool_()
    calls = httpx.get(f"{sutro_clean.url}/_opper/calls", timeout=10).json()["calls"]
    assert sorted(Counter(c["tags"]["sutro.row"] for c in calls).values()) == [1] * ROWS  # every row once
    run_id = query(home, "SELECT run_id FROM dag_run WHERE dag_id = 'opper_ticket_enrichment'")[0][0]
    manifest = xcom_values(home, "opper_ticket_enrichment", run_id)[("triage", "return_value")]
    assert manifest["backend"] == "opper" and manifest["rows_out"] == ROWS and manifest["cost_usd"] > 0
    assert manifest["usage_by_model"]["openai/gpt-4o-mini"]["calls"] == ROWS
    assert manifest["input_tokens"] > 0 and manifest["output_tokens"] > 0
    span = manifest["trace_span_id"]
    for call in calls:
        assert call["parent_span_id"] == span and call["examples"] == 1
        assert call["tags"]["sutro.dag_id"] == "opper_ticket_enrichment" and call["tags"]["sutro.task_id"] == "triage"
        assert call["tags"]["sutro.run_id"] == run_id and call["tags"]["team"] == "support"
    assert sutro_clean.api_key not in text and sutro_clean.api_key not in all_log_text(home)
    # the core's row progress lines, in the task log: the last count always gets one
    assert f"Opper ticket-triage: {ROWS:,} / {ROWS:,} rows answered (100.0%)" in text + all_log_text(home)
