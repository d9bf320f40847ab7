"""``@task.sutro`` mapping, run-time asset events and OpenLineage under a real Airflow.

``airflow dags test`` of the mapped example DAG, and ``airflow standalone``
(scheduler, LocalExecutor, triggerer, dag-processor, api-server; the session's shared
instance, ``tests/airflow/shared_standalone.py``) for a mapped task
whose map index 1 is killed after submitting, an asset-scheduled consumer and the
OpenLineage provider's listener writing its events through the file transport.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sutro_providers.client.sutro import SutroClient
from sutro_providers.identity import RunIdentity
from tests.airflow.conftest import TICKETS
from tests.airflow.harness import (
    REPO,
    all_log_text,
    prepare_home,
    query,
    run_cli,
    run_cli_parallel,
    wait_for,
    xcom_values,
)
from tests.airflow.shared_standalone import XDIST_GROUP, SharedStandalone
from tests.airflow.test_dags_e2e import airflow_env, assert_no_secrets

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

EXAMPLE = REPO / "example_dags" / "airflow" / "sutro_taskflow_tiers.py"
TIERS = ["free", "pro", "enterprise"]


def jobs_by_prefix(server: Any, dag_id: str, task_id: str, run_id: str, map_indexes: range) -> list[int]:
    """How many jobs of the server's job list (``list-jobs``) each map index's run made."""
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        names = [job.name or "" for job in client.iter_jobs()]
    return [sum(n.startswith("sp-" + RunIdentity.airflow(dag_id, task_id, run_id, i).short) for n in names)
            for i in map_indexes]


def openlineage_events(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*")) if p.is_file()]


def test_dags_test_mapped_example_makes_one_job_per_tier(migrated_home: Path, tmp_path: Path, sutro_clean: Any,
                                                         sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    warehouse = tmp_path / "warehouse.db"
    with sqlite3.connect(warehouse) as db:
        db.execute("CREATE TABLE support_tickets (id INTEGER PRIMARY KEY, subject TEXT, body TEXT, "
                   "customer_tier TEXT, created_at TEXT)")
        rows = [(day + timedelta(hours=h), t["subject"], t["body"], tier)
                for h, (t, tier) in enumerate(zip(TICKETS, [*TIERS, "pro"], strict=True))]
        rows.append((day + timedelta(days=1, hours=1), "Tomorrow", "Not in the interval", "free"))
        db.executemany("INSERT INTO support_tickets (created_at, subject, body, customer_tier) VALUES (?, ?, ?, ?)",
                       [(t.strftime("%Y-%m-%d %H:%M:%S"), *rest) for t, *rest in rows])
    home = prepare_home(migrated_home, tmp_path / "home", [EXAMPLE])
    env = airflow_env(home, sutro_clean, sutro_s3_server, sutro_s3_bucket, warehouse)

    proc = run_cli(["dags", "test", "sutro_taskflow_tiers", "2026-11-21"], env, timeout=1200)
    (run_id,) = query(home, "SELECT run_id FROM dag_run WHERE dag_id = 'sutro_taskflow_tiers'")[0]
    states = query(home, "SELECT map_index, state FROM task_instance WHERE dag_id = 'sutro_taskflow_tiers' "
                         "ORDER BY map_index")
    assert states == [(0, "success"), (1, "success"), (2, "success")], (states, proc.stdout[-3000:])
    assert jobs_by_prefix(sutro_clean, "sutro_taskflow_tiers", "tickets_of_tier", run_id, range(3)) == [1, 1, 1]
    assert sutro_clean.admin.job_count() == 3
    fs = sutro_s3_server.filesystem()
    for index, tier in enumerate(TIERS):
        table = pq.read_table(f"{sutro_s3_bucket}/staging/enriched/tiers/2026-11-20/{index}.parquet", filesystem=fs)
        assert set(table.column("customer_tier").to_pylist()) == {tier}
        assert table.column("label").null_count == 0
    assert pq.read_table(f"{sutro_s3_bucket}/staging/enriched/tiers/2026-11-20/1.parquet",
                         filesystem=fs).num_rows == 2  # the two pro tickets of the day
    # Each map index's file is an asset event through the alias.
    events = query(home, "SELECT a.uri, e.source_map_index, al.name FROM asset_event e "
                         "JOIN asset a ON a.id = e.asset_id JOIN asset_alias_asset_event ae ON ae.event_id = e.id "
                         "JOIN asset_alias al ON al.id = ae.alias_id WHERE e.source_dag_id = 'sutro_taskflow_tiers' "
                         "ORDER BY e.source_map_index")
    alias = "sutro/sutro_taskflow_tiers/tickets_of_tier"
    assert events == [(f"s3://{sutro_s3_bucket}/staging/enriched/tiers/2026-11-20/{i}.parquet", i, alias)
                      for i in range(3)], events
    # The report DAG is scheduled on that alias (paused at creation here, so nothing is queued for it).
    assert query(home, "SELECT r.dag_id FROM dag_schedule_asset_alias_reference r JOIN asset_alias al "
                       "ON al.id = r.alias_id WHERE al.name = ?", (alias,)) == [("sutro_triage_report",)]
    assert_no_secrets(proc.stdout + proc.stderr, sutro_clean.api_key, "the `airflow dags test` output")


@pytest.mark.xdist_group(XDIST_GROUP)
def test_standalone_mapped_retry_asset_consumer_and_openlineage(airflow_standalone: SharedStandalone,
                                                                sutro_clean: Any, sutro_s3_server: Any) -> None:
    """On the session's shared ``airflow standalone`` (``tests/airflow/shared_standalone.py``:
    tickets with tiers free, pro, free, none, enterprise; the real-time input; the
    OpenLineage file transport)."""
    shared = airflow_standalone
    airflow, home, env, warehouse = shared.airflow, shared.home, shared.env, shared.warehouse
    sutro_s3_bucket, ol = shared.bucket, shared.openlineage
    dags = ["sutro_e2e_mapped", "sutro_e2e_assets_producer", "sutro_e2e_assets_consumer"]

    run_cli_parallel([["dags", "unpause", d] for d in dags], env)
    run_cli_parallel([["dags", "trigger", "sutro_e2e_mapped", "--run-id", "mapped_1"],
                      ["dags", "trigger", "sutro_e2e_assets_producer", "--run-id", "assets_1",
                       "--logical-date", "2026-11-21T00:00:00+00:00"]], env)

    def finished() -> dict[str, str] | None:
        runs = dict(query(home, "SELECT dag_id, state FROM dag_run WHERE dag_id IN (?, ?, ?)", tuple(dags)))
        done = len(runs) == 3 and all(state in {"success", "failed"} for state in runs.values())
        return runs if done else None

    runs = wait_for("the three runs to finish", finished, timeout=1200, interval=2, alive=airflow.check_alive)
    tries = query(home, "SELECT dag_id, task_id, map_index, state, try_number FROM task_instance "
                        "WHERE dag_id IN (?, ?, ?) ORDER BY dag_id, task_id, map_index", tuple(dags))
    assert runs == dict.fromkeys(dags, "success"), (tries, airflow.tail())

    # A mapped @task.sutro over 3 tiers: 3 jobs; map index 1 killed after submitting on
    # its first try that reached the submit, succeeded on the next one reattached to its
    # job (no 4th job).
    mapped = [t for t in tries if t[0] == "sutro_e2e_mapped"]
    assert [(m[2], m[3]) for m in mapped] == [(0, "success"), (1, "success"), (2, "success")], mapped
    assert mapped[1][4] >= 2, mapped  # map index 1 was retried
    logs = home / "logs" / "dag_id=sutro_e2e_mapped" / "run_id=mapped_1" / "task_id=tickets" / "map_index=1"
    killed = [p.name for p in sorted(logs.glob("attempt=*.log")) if "e2e: killing map index 1" in p.read_text()]
    assert len(killed) == 1 and killed[0] != f"attempt={mapped[1][4]}.log", (killed, mapped)
    assert jobs_by_prefix(sutro_clean, "sutro_e2e_mapped", "tickets", "mapped_1", range(3)) == [1, 1, 1]
    assert sutro_clean.admin.job_count() == 4  # 3 mapped + the producer's (the real-time task makes none)
    fs = sutro_s3_server.filesystem()
    for index, ids in enumerate([[1, 3], [2], [5]]):
        out = pq.read_table(f"{sutro_s3_bucket}/staging/mapped/mapped_1/{index}.parquet", filesystem=fs)
        assert sorted(out.column("id").to_pylist()) == ids and out.column("label").null_count == 0

    # The templated output_uri and the destination table: asset events through the alias,
    # and the consumer scheduled on the alias ran.
    output = f"s3://{sutro_s3_bucket}/staging/assets/2026-11-21.parquet"
    table_uri = f"sqlite://localhost/{str(warehouse).lstrip('/')}/tickets_triaged"
    events = query(home, "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                         "WHERE e.source_dag_id = 'sutro_e2e_assets_producer'")
    assert sorted(uri for uri, _ in events) == sorted([output, table_uri]), events
    assert all(json.loads(extra)["rows"] == 5 for _, extra in events)
    (run_type,) = query(home, "SELECT run_type FROM dag_run WHERE dag_id = 'sutro_e2e_assets_consumer'")[0]
    assert run_type == "asset_triggered"
    consumed = [v for (t, k), v in xcom_values(home, "sutro_e2e_assets_consumer",
                                               query(home, "SELECT run_id FROM dag_run WHERE dag_id = "
                                                           "'sutro_e2e_assets_consumer'")[0][0]).items()
                if k == "return_value"]
    assert consumed and output in consumed[0], consumed

    # OpenLineage: the provider's listener sent START and COMPLETE of each task, the
    # complete events with schema and column lineage facets.
    sent = openlineage_events(ol)
    by_job = {(e["job"]["name"], e["eventType"]): e for e in sent}
    for job in ("sutro_e2e_assets_producer.triage", "sutro_e2e_assets_producer.realtime"):
        assert (job, "START") in by_job and (job, "COMPLETE") in by_job, sorted(by_job)
    triage = by_job["sutro_e2e_assets_producer.triage", "COMPLETE"]
    (source,) = triage["inputs"]
    assert source["name"] == "support_tickets"
    assert [f["name"] for f in source["facets"]["schema"]["fields"]] == ["id", "subject", "body", "customer_tier"]
    outputs = {o["name"]: o for o in triage["outputs"]}
    assert set(outputs) == {"staging/assets/2026-11-21.parquet", "tickets_triaged"}
    parquet = outputs["staging/assets/2026-11-21.parquet"]["facets"]
    assert [f["name"] for f in parquet["schema"]["fields"]] == [
        "id", "subject", "body", "customer_tier", "label", "confidence", "rationale", "sutro_skip_reason"]
    label = parquet["columnLineage"]["fields"]["label"]["inputFields"]
    assert [(f["name"], f["field"]) for f in label] == [("support_tickets", c) for c in ("subject", "body",
                                                                                          "customer_tier")]
    assert parquet["columnLineage"]["fields"]["id"]["inputFields"][0]["transformations"][0]["subtype"] == "IDENTITY"
    table = outputs["tickets_triaged"]["facets"]
    assert [f["name"] for f in table["schema"]["fields"]] == ["id", "subject", "label", "confidence", "day"]
    assert set(table["columnLineage"]["fields"]) == {"id", "subject", "label", "confidence"}
    realtime = by_job["sutro_e2e_assets_producer.realtime", "COMPLETE"]
    assert realtime["inputs"][0]["name"] == "in/realtime.parquet"
    rt_label = realtime["outputs"][0]["facets"]["columnLineage"]["fields"]["label"]["inputFields"]
    assert {f["field"] for f in rt_label} == {"subject", "body", "customer_tier"}
    assert_no_secrets(json.dumps(sent), sutro_clean.api_key, "the OpenLineage events")
    assert_no_secrets(all_log_text(home), sutro_clean.api_key, "the Airflow logs")
