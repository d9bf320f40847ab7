"""Every fault kind, observed from the client side."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from sutro_providers.local.server import LocalSutroServer
from tests.local.conftest import TICKETS, assert_error, results, status_of, submit, wait_for


def test_status_fault_with_count(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    job_id = submit(api, model="gpt-oss-20b", inputs=["a"])
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "job-status", "status": 524, "count": 2}])
    assert_error(api.get(f"/v1/job-status/{job_id}"), 524, "injected_fault")
    assert_error(api.get(f"/v1/job-status/{job_id}"), 524)
    assert api.get(f"/v1/job-status/{job_id}").status_code == 200
    assert api.get(f"/v1/jobs/{job_id}").status_code == 200  # other routes untouched
    stats = sutro_clean.admin.stats()
    assert stats["faults_injected"]["status"] == 2 and stats["requests"]["job-status"] == 3


def test_rate_limit_on_function_runs(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "functions-run", "status": 429, "retry_after": 1.5, "count": 1}])
    resp = api.post("/v1/functions/ticket-triage/run", json={"input": TICKETS[0]})
    assert_error(resp, 429)
    assert resp.headers["Retry-After"] == "1.5"
    assert api.post("/v1/functions/ticket-triage/run", json={"input": TICKETS[0]}).status_code == 200


def test_submit_fault_after_creates_the_job(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "batch-inference", "status": 524, "phase": "after", "count": 1}])
    assert_error(api.post("/v1/batch-inference", json={"model": "gpt-oss-20b", "inputs": ["a"], "name": "ambiguous"}), 524)
    jobs = api.get("/v1/list-jobs").json()["jobs"]
    assert [j["name"] for j in jobs] == ["ambiguous"]  # created although the client saw 524
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "batch-inference", "status": 524, "count": 1}])
    assert_error(api.post("/v1/batch-inference", json={"model": "gpt-oss-20b", "inputs": ["a"], "name": "never"}), 524)
    assert sutro_clean.admin.job_count() == 1


def test_drop_connection(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "drop_connection", "endpoint": "list-jobs", "count": 1}])
    with pytest.raises(httpx.TransportError):
        api.get("/v1/list-jobs")
    assert api.get("/v1/list-jobs").status_code == 200
    sutro_clean.admin.set_faults([{"kind": "drop_connection", "endpoint": "batch-inference", "phase": "after", "count": 1}])
    with pytest.raises(httpx.TransportError):
        api.post("/v1/batch-inference", json={"model": "gpt-oss-20b", "inputs": ["a"]})
    assert sutro_clean.admin.job_count() == 1


def test_latency_and_reads_glob(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    # 1 s of injected latency against a localhost call of a few ms: the
    # second call (count exhausted) stays well under it even on a loaded CI box.
    sutro_clean.admin.set_faults([{"kind": "latency", "endpoint": "reads", "latency_ms": 1000, "count": 1}])
    started = time.monotonic()
    assert api.get("/v1/get-quotas").status_code == 200
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    api.get("/v1/get-quotas")
    assert time.monotonic() - started < 1.0
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "reads", "status": 503}])
    assert_error(api.get("/v1/auth/check"), 503)
    assert_error(api.post("/v1/job-results", json={"job_id": "x"}), 503)
    assert api.post("/v1/batch-inference", json={"model": "gpt-oss-20b", "inputs": ["a"]}).status_code == 200


def test_rate_is_seeded(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    def pattern() -> list[int]:
        sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "get-quotas", "status": 502, "rate": 0.5, "seed": 7}])
        return [api.get("/v1/get-quotas").status_code for _ in range(20)]

    first = pattern()
    assert first == pattern() and 200 in first and 502 in first


def test_results_not_ready(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    job_id = submit(api, model="gpt-oss-20b", inputs=["a"])
    sutro_clean.admin.set_faults([{"kind": "results_not_ready", "count": 2}])
    assert_error(api.post("/v1/job-results", json={"job_id": job_id}), 409, "job_not_succeeded")
    wait_for(api, job_id)
    assert_error(api.post("/v1/job-results", json={"job_id": job_id}), 409, "results_not_ready")
    assert_error(api.get(f"/v1/jobs/{job_id}/results-url"), 409, "results_not_ready")
    assert results(api, job_id)["outputs"] == ["[gpt-oss-20b] a"]


def test_fail_job(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "GPU fell over"}])
    failed = submit(api, model="ticket-triage", inputs=TICKETS)
    fine = submit(api, model="ticket-triage", inputs=TICKETS)
    assert wait_for(api, failed)[0] == "FAILED"
    job = api.get(f"/v1/jobs/{failed}").json()["job"]
    assert job["failure_reason"]["message"] == "GPU fell over"
    assert "additional_context" in job["failure_reason"] and job["datetime_completed"]
    assert wait_for(api, fine)[0] == "SUCCEEDED"
    assert sutro_clean.admin.stats()["jobs"]["by_status"] == {"FAILED": 1, "SUCCEEDED": 1}


def test_hold_and_release(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job_id = submit(api, model="gpt-oss-20b", inputs=["a"], name="held")
    wait_for(api, job_id, {"RUNNING"})
    time.sleep(0.8)
    assert status_of(api, job_id) == "RUNNING"
    sutro_clean.admin.release(job_id)
    assert wait_for(api, job_id)[0] == "SUCCEEDED"
    assert sutro_clean.admin.stats()["jobs"]["by_name"] == {"held": 1}


def _post_in_thread(api: httpx.Client, body: dict[str, object]) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(api.post("/v1/batch-inference", json=body)), daemon=True)
    thread.start()
    return thread, answers


def _until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_hold_request_until_released(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_request", "endpoint": "batch-inference", "count": 1}])
    thread, answers = _post_in_thread(api, {"model": "gpt-oss-20b", "inputs": ["a"], "name": "held-call"})
    _until(lambda: sutro_clean.admin.held_requests() == {"batch-inference": 1})
    time.sleep(0.5)
    assert thread.is_alive() and not answers  # no answer while held
    assert sutro_clean.admin.job_count() == 0  # held before it is handled: no job yet
    assert api.get("/v1/list-jobs").status_code == 200  # other calls go on meanwhile
    assert sutro_clean.admin.release_requests("list-jobs") == 0  # only the named route's held calls
    assert sutro_clean.admin.release_requests("batch-inference") == 1
    thread.join(30)
    assert [a.status_code for a in answers] == [200]
    assert sutro_clean.admin.job_count() == 1 and sutro_clean.admin.held_requests() == {}
    submit(api, model="gpt-oss-20b", inputs=["b"])  # count 1: the next call is not held
    assert sutro_clean.admin.stats()["faults_injected"]["hold_request"] == 1


def test_hold_request_ends_at_latency_ms_or_when_the_rules_are_cleared(api: httpx.Client,
                                                                       sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_request", "endpoint": "batch-inference", "latency_ms": 700,
                                   "count": 1}])
    started = time.monotonic()
    submit(api, model="gpt-oss-20b", inputs=["a"])
    assert time.monotonic() - started >= 0.7
    sutro_clean.admin.set_faults([{"kind": "hold_request", "endpoint": "batch-inference"}])
    thread, answers = _post_in_thread(api, {"model": "gpt-oss-20b", "inputs": ["b"]})
    _until(lambda: sutro_clean.admin.held_requests() == {"batch-inference": 1})
    sutro_clean.admin.clear_faults()
    thread.join(30)
    assert [a.status_code for a in answers] == [200] and sutro_clean.admin.job_count() == 2


def test_stream_drop(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}, {"kind": "stream_drop", "count": 1}])
    job_id = submit(api, model="gpt-oss-20b", inputs=["a"])
    wait_for(api, job_id, {"RUNNING"})
    with api.stream("GET", f"/v1/stream-job-progress/{job_id}") as resp:
        lines = [json.loads(x) for x in resp.iter_lines() if x]
    assert lines == [{"update_type": "progress", "result": 0}]
    assert status_of(api, job_id) == "RUNNING"
    api.get(f"/v1/job-cancel/{job_id}")


def test_admin_rule_validation_and_listing(api: httpx.Client, sutro_clean: LocalSutroServer) -> None:
    assert_error(api.post("/_admin/faults", json=[{"kind": "explode"}]), 422, "invalid_fault_rule")
    rules = sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "jobs", "count": 3}])
    assert rules[0]["remaining"] == 3
    sutro_clean.admin.set_faults([{"kind": "latency", "latency_ms": 1}], append=True)
    assert [r["kind"] for r in sutro_clean.admin.faults()] == ["status", "latency"]
    sutro_clean.admin.clear_faults()
    assert sutro_clean.admin.faults() == []
