"""State machine, cancel, progress stream, SIGTERM + restart persistence, quotas."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sutro_providers.local.server import LocalSutroServer
from tests.local.conftest import TICKETS, assert_error, results, status_of, submit, wait_for

FUNCTIONS = Path(__file__).resolve().parents[2] / "example_dags" / "functions"


def test_states_in_order(api: httpx.Client) -> None:
    job_id = submit(api, model="ticket-triage", inputs=TICKETS)
    final, seen = wait_for(api, job_id)
    assert final == "SUCCEEDED"
    order = ["QUEUED", "STARTING", "RUNNING", "SUCCEEDED"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert "RUNNING" in seen


def test_cancel_running_job(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job_id = submit(api, model="ticket-triage", inputs=TICKETS)
    wait_for(api, job_id, {"RUNNING"})
    first = api.get(f"/v1/job-cancel/{job_id}").json()
    assert first["cancelled"] is True and first["message"]
    assert status_of(api, job_id) in ("CANCELLING", "CANCELLED")
    final, _ = wait_for(api, job_id)
    assert final == "CANCELLED"
    assert api.get(f"/v1/jobs/{job_id}").json()["job"]["datetime_completed"]
    again = api.post(f"/v1/job-cancel/{job_id}").json()
    assert again["cancelled"] is False
    assert_error(api.post("/v1/job-results", json={"job_id": job_id}), 409, "job_not_succeeded")
    assert_error(api.get("/v1/job-cancel/job-missing"), 404, "job_not_found")


def test_cancel_succeeded_job_is_refused(api: httpx.Client) -> None:
    job_id = submit(api, model="gpt-oss-20b", inputs=["hi"])
    wait_for(api, job_id)
    assert api.get(f"/v1/job-cancel/{job_id}").json()["cancelled"] is False
    assert status_of(api, job_id) == "SUCCEEDED"


def test_progress_stream_ndjson(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job_id = submit(api, model="ticket-triage", inputs=TICKETS)
    wait_for(api, job_id, {"RUNNING"})
    lines: list[dict] = []
    with api.stream("GET", f"/v1/stream-job-progress/{job_id}") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        released = False
        for raw in resp.iter_lines():
            if not raw:
                continue
            lines.append(json.loads(raw))
            if lines[-1]["update_type"] == "heartbeat" and not released:
                sutro_clean.admin.release(job_id)
                released = True
    kinds = [line["update_type"] for line in lines]
    assert "heartbeat" in kinds and kinds[0] == "progress"
    assert [ln["result"] for ln in lines if ln["update_type"] == "progress"][-1] == 3
    tokens = [ln["result"] for ln in lines if ln["update_type"] == "tokens"][-1]
    assert set(tokens) == {"input_tokens", "output_tokens", "total_tokens_processed_per_second"}
    assert tokens["input_tokens"] > 0
    assert status_of(api, job_id) == "SUCCEEDED"


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSutroServer]:
    """A dedicated server with long-running jobs, quotas and start-up faults."""
    faults = tmp_path_factory.mktemp("faults") / "faults.yaml"
    faults.write_text("- {kind: status, endpoint: get-quotas, status: 503, count: 1}\n")
    server = LocalSutroServer(
        FUNCTIONS,
        data_dir=tmp_path_factory.mktemp("slow-data"),
        min_run_seconds=2.5,
        extra_args=["--enforce-quotas", "--row-quota-p0", "3", "--faults", str(faults)],
    )
    with server:
        yield server


def _client(server: LocalSutroServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Key {server.api_key}"}, timeout=30)


def test_faults_file_and_quota_enforcement(slow_server: LocalSutroServer) -> None:
    with _client(slow_server) as api:
        assert_error(api.get("/v1/get-quotas"), 503, "injected_fault")
        assert api.get("/v1/get-quotas").json()["quotas"][0]["row_quota"] == 3
        err = assert_error(api.post("/v1/batch-inference", json={"model": "gpt-oss-20b", "inputs": ["a"] * 4}), 400, "quota_exceeded")
        assert "4 rows" in err["detail"]
        submit(api, model="gpt-oss-20b", inputs=["a"] * 4, job_priority=1)


def test_restart_mid_job_resumes(slow_server: LocalSutroServer) -> None:
    with _client(slow_server) as api:
        for earlier in api.get("/v1/list-jobs").json()["jobs"]:
            wait_for(api, earlier["job_id"])
        job_id = submit(api, model="ticket-triage", inputs=TICKETS, name="survivor")
        wait_for(api, job_id, {"RUNNING"})
        second = submit(api, model="gpt-oss-20b", inputs=["x"], job_priority=1)
        queued = submit(api, model="gpt-oss-20b", inputs=["y"], job_priority=1)
        wait_for(api, second, {"RUNNING"})
        assert status_of(api, job_id) == "RUNNING" and status_of(api, queued) == "QUEUED"
    proc, started = slow_server._proc, time.monotonic()
    slow_server.stop(cleanup=False)  # SIGTERM, as restart() does; timed apart from the start-up
    assert time.monotonic() - started < 10, "SIGTERM shutdown must be prompt"
    # uvicorn shuts down gracefully, then re-raises SIGTERM (exit status -15)
    assert proc is not None and proc.returncode in (0, -signal.SIGTERM)
    log = slow_server.log_path.read_text()
    assert "Application shutdown complete" in log and slow_server.api_key not in log
    slow_server.restart()
    with _client(slow_server) as api:
        assert status_of(api, job_id) in ("QUEUED", "STARTING", "RUNNING")
        assert wait_for(api, job_id)[0] == "SUCCEEDED"
        assert wait_for(api, second)[0] == "SUCCEEDED"
        assert wait_for(api, queued)[0] == "SUCCEEDED"
        out = results(api, job_id)
        assert len(out["outputs"]) == 3
        direct = api.post("/v1/functions/ticket-triage/run", json={"input": TICKETS[0]}).json()
        assert json.loads(out["outputs"][0]) == direct["output"]
        assert api.get(f"/v1/jobs/{job_id}").json()["job"]["name"] == "survivor"
