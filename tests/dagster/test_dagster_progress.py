"""Progress lines of a materialization in the run's event log (the instance's own
records), for a job the local server holds RUNNING for 3 poll rounds."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
from sutro_example.tickets import DAILY, support_tickets, tickets_for_day

from dagster_sutro import SutroDuckDBIOManager, sutro_function_asset
from sutro_providers.client.sutro import SutroClient
from tests.dagster.conftest import DAY
from tests.dagster.test_dagster_assets import TRIAGED, assert_no_secrets, event_log_text

POLL = 0.4


def polls(server: Any) -> int:
    return int(server.admin.stats()["requests"].get("jobs", 0))


def hold_for_polls(server: Any, rounds: int, run: threading.Thread, timeout: float = 180) -> str:
    """Wait for the one job, let ``rounds`` more polls of it pass, release it; its id."""
    deadline = time.monotonic() + timeout
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        while not (jobs := list(client.iter_jobs())):
            assert time.monotonic() < deadline and run.is_alive(), "no job was submitted"
            time.sleep(0.1)
    (job,) = jobs
    start = polls(server)
    while polls(server) < start + rounds:
        assert time.monotonic() < deadline and run.is_alive(), f"fewer than {rounds} polls of {job.job_id}"
        time.sleep(0.1)
    server.admin.release(job.job_id)
    return job.job_id


def test_progress_lines_in_the_run_event_log(make_resource: Any, sutro_clean: Any, instance: Any,
                                             tmp_path: Path) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    asset = sutro_function_asset(function="ticket-triage", upstream=support_tickets, key=TRIAGED,
                                 partitions_def=DAILY, partition_expr="created_at", progress_interval=0.5)
    resources = {"sutro": make_resource(poll_interval=POLL, max_poll_interval=POLL, read_timeout=60),
                 "io_manager": SutroDuckDBIOManager(database=str(tmp_path / "w.duckdb"))}
    results: list[dg.ExecuteInProcessResult] = []
    run = threading.Thread(target=lambda: results.append(dg.materialize(
        [support_tickets, asset], instance=instance, partition_key=DAY, resources=resources)))
    run.start()
    try:
        job_id = hold_for_polls(sutro_clean, 3, run)
    finally:
        run.join(180)
    (result,) = results
    assert result.success

    entries = [e for e in instance.all_logs(result.run_id) if e.user_message.startswith(("Sutro progress", "Sutro job "))]
    lines = [e.user_message for e in entries]
    assert all(e.level == logging.INFO for e in entries)
    assert all(e.step_key == "support__tickets_triaged" for e in entries)
    rows = len(tickets_for_day(DAY))
    # the first status seen, then a line at least every 0.5 s while held (3 polls, 1.2 s or more)
    assert re.match(rf"Sutro job {job_id} (QUEUED|STARTING|RUNNING): ", lines[0]), lines
    held = [line for line in lines if line.startswith("Sutro progress: RUNNING")]
    assert len(held) >= 2, lines
    assert any(f"0 / {rows} rows (0.0%)" in line for line in held), lines  # rows done from the progress stream
    assert re.match(rf"Sutro job {job_id} RUNNING -> SUCCEEDED: {rows} / {rows} rows \(100\.0%\); elapsed \d+s; "
                    r"tokens [\d,]+ in / [\d,]+ out; cost \$[\d.]+$", lines[-1]), lines
    assert_no_secrets(event_log_text(instance, result.run_id), sutro_clean.api_key)
