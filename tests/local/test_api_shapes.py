"""Shapes and status codes of every /v1 endpoint, through plain httpx."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.local.conftest import TICKETS, assert_error, results, submit, wait_for

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")
RECORD_KEYS = {
    "job_id", "status", "model", "system_prompt", "job_priority", "datetime_created",
    "datetime_started", "datetime_completed", "json_schema", "sampling_params", "name",
    "description", "dataset_id", "input_tokens", "output_tokens", "job_cost", "num_rows",
    "failure_reason", "cost_estimate", "run_type",
}  # fmt: skip


def test_auth_required_and_json_errors_everywhere(api: httpx.Client) -> None:
    anon = httpx.Client(base_url=str(api.base_url))
    assert_error(anon.get("/v1/auth/check"), 401, "unauthorized")
    assert_error(anon.get("/v1/auth/check", headers={"Authorization": "Key wrong"}), 401)
    assert_error(anon.get("/v1/auth/check", headers={"Authorization": "Bearer " + api.headers["Authorization"][4:]}), 401)
    assert_error(anon.get("/_admin/stats"), 401)
    assert_error(api.get("/v1/no-such-route"), 404, "not_found")
    assert_error(api.get("/totally/unknown"), 404)
    assert_error(api.delete("/v1/batch-inference"), 405, "method_not_allowed")
    assert_error(api.get("/v1/list-jobs", params={"limit": 0}), 422, "validation_error")
    assert_error(api.get("/v1/jobs/job-nope"), 404, "job_not_found")
    assert_error(api.get("/v1/job-status/job-nope"), 404, "job_not_found")
    assert_error(api.post("/v1/batch-inference", content=b"{not json"), 400, "invalid_json")
    assert api.get("/v1/auth/check").json() == {"authenticated": True}


def test_quotas_and_no_gzip(api: httpx.Client) -> None:
    resp = api.get("/v1/get-quotas", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in resp.headers
    quotas = resp.json()["quotas"]
    assert len(quotas) == 2 and all(set(q) == {"row_quota", "token_quota"} for q in quotas)
    assert quotas[0]["row_quota"] < quotas[1]["row_quota"]


def test_create_job_and_full_record(api: httpx.Client) -> None:
    body = {
        "model": "ticket-triage", "inputs": TICKETS, "job_priority": 1, "json_schema": None,
        "system_prompt": None, "cost_estimate": False, "sampling_params": None,
        "random_seed_per_input": False, "truncate_rows": False, "name": "triage-1", "description": None,
    }  # fmt: skip
    resp = api.post("/v1/batch-inference", json=body)
    assert resp.status_code == 200
    data = resp.json()
    job_id = data["results"]
    assert re.fullmatch(r"job-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", job_id)
    assert data["metadata"]["job_id"] == job_id and data["metadata"]["message"]
    assert wait_for(api, job_id)[0] == "SUCCEEDED"
    job = api.get(f"/v1/jobs/{job_id}").json()["job"]
    assert set(job) == RECORD_KEYS
    assert job["num_rows"] == 3 and job["run_type"] == "FULL" and job["name"] == "triage-1"
    assert job["input_tokens"] > 0 and job["output_tokens"] > 0 and job["job_cost"] > 0
    for key in ("datetime_created", "datetime_started", "datetime_completed"):
        assert ISO.match(job[key]), job[key]
    cols = results(api, job_id, include_inputs=True, include_cumulative_logprobs=True)
    assert set(cols) == {"inputs", "outputs", "cumulative_logprobs", "confidence_score"}
    assert all(len(v) == 3 for v in cols.values())
    assert cols["inputs"][1] == "subject: App crashes\nbody: Crash on login since update 3.2\ncustomer_tier: "
    labels = {"billing", "bug", "feature_request", "account", "other"}
    assert all(json.loads(o)["label"] in labels for o in cols["outputs"])
    assert set(results(api, job_id)) == {"outputs", "confidence_score"}


def test_nan_and_nulls_accepted(api: httpx.Client) -> None:
    raw = b'{"model": "lead-extractor", "inputs": [{"message": "Hi from Acme", "employees": NaN}], "name": null, "job_priority": null, "sampling_params": {"temperature": 0.2, "custom_knob": true}}'
    resp = api.post("/v1/batch-inference", content=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    job_id = resp.json()["results"]
    assert wait_for(api, job_id)[0] == "SUCCEEDED"
    assert results(api, job_id, include_inputs=True)["inputs"] == ["message: Hi from Acme\nemployees: "]
    assert api.get(f"/v1/jobs/{job_id}").json()["job"]["sampling_params"]["custom_knob"] is True


@pytest.mark.parametrize(
    ("patch", "status", "code", "needle"),
    [
        ({"name": "x" * 46}, 400, "invalid_request", "name"),
        ({"description": "d" * 513}, 400, "invalid_request", "description"),
        ({"job_priority": 2}, 400, "invalid_request", "job_priority"),
        ({"inputs": []}, 400, "invalid_request", "inputs"),
        ({"inputs": "dataset-1234"}, 400, "invalid_request", "dataset"),
        ({"inputs": ["a", {"b": 1}]}, 400, "invalid_request", "inputs[1]"),
        ({"inputs": ["a"], "column_name": "c"}, 400, "invalid_request", "column_name"),
        ({"inputs": ["a"], "id_column_name": "c"}, 400, "invalid_request", "id_column_name"),
        ({"sampling_params": {"temperature": "hot"}}, 400, "invalid_request", "sampling_params.temperature"),
        ({"sampling_params": [1]}, 400, "invalid_request", "sampling_params"),
        ({"model": "no-such-function"}, 404, "function_not_found", "no-such-function"),
        ({"model": "ticket-triage", "inputs": [{"subject": "s", "body": "b"}, {"subject": "s", "body": None}]}, 422, "invalid_input", "inputs[1]"),
        ({"model": "ticket-triage", "inputs": [{"subject": "s"}]}, 422, "invalid_input", "'body'"),
    ],
)
def test_batch_validation(api: httpx.Client, patch: dict, status: int, code: str, needle: str) -> None:
    body = {"model": "gpt-oss-20b", "inputs": ["hello"], **patch}
    err = assert_error(api.post("/v1/batch-inference", json=body), status, code)
    assert needle in err["detail"]


def test_quota_enforced_only_when_on(api: httpx.Client) -> None:
    # The session server does not enforce: 1001 rows at priority 0 pass.
    submit(api, model="gpt-oss-20b", inputs=["x"] * 1001)


def test_list_jobs_newest_first_and_paging(api: httpx.Client) -> None:
    ids = [submit(api, model="gpt-oss-20b", inputs=[f"p{i}"], name=f"n{i}") for i in range(5)]
    listing = api.get("/v1/list-jobs").json()
    assert listing["message"] and [j["job_id"] for j in listing["jobs"]] == ids[::-1]
    assert all(set(j) == RECORD_KEYS for j in listing["jobs"])
    page1 = api.get("/v1/list-jobs", params={"limit": 2}).json()
    page2 = api.get("/v1/list-jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    page3 = api.get("/v1/list-jobs", params={"limit": 2, "cursor": page2["next_cursor"]}).json()
    got = [j["job_id"] for p in (page1, page2, page3) for j in p["jobs"]]
    assert got == ids[::-1] and page3["next_cursor"] is None
    assert_error(api.get("/v1/list-jobs", params={"cursor": "%%%"}), 400, "invalid_cursor")


def test_results_before_success_is_409(api: httpx.Client) -> None:
    job_id = submit(api, model="gpt-oss-20b", inputs=["a"])
    assert_error(api.post("/v1/job-results", json={"job_id": job_id}), 409, "job_not_succeeded")
    assert_error(api.get(f"/v1/jobs/{job_id}/results-url"), 409, "job_not_succeeded")
    assert_error(api.post("/v1/job-results", json={"job_id": "job-missing"}), 404, "job_not_found")


def test_standalone_models(api: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"sentiment": {"enum": ["pos", "neg"]}, "score": {"type": "integer", "minimum": 1, "maximum": 5}}}
    text_job = submit(api, model="qwen-3.5-2b", inputs=["Tell me about Paris"])
    json_job = submit(api, model="gpt-oss-120b", inputs=["Great product", "Awful"], json_schema=schema)
    wait_for(api, text_job)
    wait_for(api, json_job)
    text_out = results(api, text_job)
    assert text_out["outputs"] == ["[qwen-3.5-2b] Tell me about Paris"]
    assert "confidence_score" not in text_out
    for out in results(api, json_job)["outputs"]:
        obj = json.loads(out)
        assert obj["sentiment"] in ("pos", "neg") and 1 <= obj["score"] <= 5


def test_cost_estimate_job(api: httpx.Client) -> None:
    job_id = submit(api, model="ticket-triage", inputs=TICKETS, cost_estimate=True)
    assert wait_for(api, job_id, timeout=5)[0] == "SUCCEEDED"
    job = api.get(f"/v1/jobs/{job_id}").json()["job"]
    assert job["run_type"] == "COST_ESTIMATE" and job["job_cost"] == 0
    expected = job["input_tokens"] * 0.10 / 1e6 + job["output_tokens"] * 0.40 / 1e6
    assert job["cost_estimate"] == pytest.approx(expected)
    again = submit(api, model="ticket-triage", inputs=TICKETS, cost_estimate=True)
    wait_for(api, again)
    assert api.get(f"/v1/jobs/{again}").json()["job"]["cost_estimate"] == job["cost_estimate"]
    assert_error(api.post("/v1/job-results", json={"job_id": job_id}), 409, "no_results")


def test_functions_registry(api: httpx.Client) -> None:
    names = [f["name"] for f in api.get("/v1/functions").json()["functions"]]
    assert sorted(names) == ["lead-extractor", "ticket-sentiment", "ticket-triage"]
    spec = api.get("/v1/functions/ticket-triage").json()["function"]
    assert spec["labels"][0] == "billing" and spec["inputs"][0]["name"] == "subject"
    assert_error(api.get("/v1/functions/nope"), 404, "function_not_found")


def test_function_run_classification(api: httpx.Client) -> None:
    resp = api.post("/v1/functions/ticket-triage/run", json={"input": TICKETS[0]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {"output", "confidence", "usage", "request_id", "function", "response", "predictions", "rationale"} <= set(body)
    preds = body["predictions"]
    assert [p["confidence"] for p in preds] == sorted((p["confidence"] for p in preds), reverse=True)
    assert sum(p["confidence"] for p in preds) == pytest.approx(1.0)
    assert preds[0]["label"] == body["response"] == body["output"]["label"]
    assert body["confidence"] == preds[0]["confidence"]
    assert body["function"] == {"name": "ticket-triage", "model": "qwen-3.5-27b", "model_source": "local"}
    assert set(body["usage"]) == {"input_tokens", "output_tokens", "estimated_cost_usd"}
    off = api.post("/v1/functions/ticket-triage/run", json={"input": TICKETS[0], "confidence_scoring": False}).json()
    assert off["confidence"] is None and off["output"] == body["output"]


def test_function_run_extraction_and_validation(api: httpx.Client) -> None:
    body = api.post("/v1/functions/lead-extractor/run", json={"input": "Hello, I run procurement at Globex"}).json()
    out = body["output"]
    assert out["seniority"] in ("individual", "manager", "director", "executive")
    assert 0 <= out["intent_score"] <= 1 and isinstance(out["wants_demo"], bool)
    assert out["company"] in ("Hello", "Globex") and 0 < body["confidence"] <= 1
    run = "/v1/functions/ticket-triage/run"
    assert "input.priority" in assert_error(api.post(run, json={"input": {**TICKETS[0], "priority": 1}}), 422, "invalid_input")["detail"]
    assert "input.body" in assert_error(api.post(run, json={"input": {"subject": "s"}}), 422)["detail"]
    assert "bare string" in assert_error(api.post(run, json={"input": "just text"}), 422)["detail"]
    assert "input" in assert_error(api.post(run, json={"inputs": {}}), 422)["detail"]
    assert_error(api.post("/v1/functions/nope/run", json={"input": "x"}), 404, "function_not_found")
    legacy = api.post("/functions/run", json={"name": "ticket-triage", "input_data": TICKETS[0]})
    assert legacy.status_code == 200 and legacy.json()["output"] == api.post(run, json={"input": TICKETS[0]}).json()["output"]
