"""Inputs by http(s) URL: moto S3 pre-signed Parquet and CSV, id columns, errors."""

from __future__ import annotations

import json

import httpx
import pyarrow as pa

from sutro_providers.local.pytest_plugin import MotoS3
from tests.local.conftest import assert_error, csv_bytes, parquet_bytes, results, submit, wait_for

LEADS = pa.table({
    "lead_id": pa.array([101, 102, 103], pa.int64()),
    "message": ["Hi, I lead ops at Initech", "We at Hooli want a demo", "hello there"],
    "employees": pa.array([250, None, 3], pa.int64()),
    "ignored": ["x", "y", "z"],
})  # fmt: skip


def _stage(s3: MotoS3, bucket: str, name: str, data: bytes) -> str:
    s3.put(f"{bucket}/{name}", data)
    return s3.presigned_url(f"{bucket}/{name}", expires=600)


def test_parquet_url_with_id_column(api: httpx.Client, sutro_s3_server: MotoS3, sutro_s3_bucket: str) -> None:
    url = _stage(sutro_s3_server, sutro_s3_bucket, "leads.parquet", parquet_bytes(LEADS))
    job_id = submit(api, model="lead-extractor", inputs=url, id_column_name="lead_id", job_priority=1)
    assert wait_for(api, job_id)[0] == "SUCCEEDED"
    cols = results(api, job_id, include_inputs=True)
    assert cols["lead_id"] == [101, 102, 103]
    assert cols["inputs"] == ["message: Hi, I lead ops at Initech\nemployees: 250", "message: We at Hooli want a demo\nemployees: ", "message: hello there\nemployees: 3"]
    assert json.loads(cols["outputs"][1])["company"] == "Hooli" or json.loads(cols["outputs"][1])["company"] == "We"
    assert len(cols["confidence_score"]) == 3
    # the same rows sent as JSON give the same outputs
    rows = [{"message": m, "employees": e} for m, e in zip(LEADS["message"].to_pylist(), LEADS["employees"].to_pylist(), strict=True)]
    json_job = submit(api, model="lead-extractor", inputs=rows)
    wait_for(api, json_job)
    assert results(api, json_job)["outputs"] == cols["outputs"]


def test_csv_url_with_id_column(api: httpx.Client, sutro_s3_server: MotoS3, sutro_s3_bucket: str) -> None:
    tickets = pa.table({"ticket": ["T-1", "T-2"], "subject": ["Refund", "Login broken"], "body": ["charged twice", "cannot sign in"]})
    url = _stage(sutro_s3_server, sutro_s3_bucket, "tickets.csv", csv_bytes(tickets))
    job_id = submit(api, model="ticket-triage", inputs=url, id_column_name="ticket")
    wait_for(api, job_id)
    cols = results(api, job_id)
    assert cols["ticket"] == ["T-1", "T-2"] and len(cols["outputs"]) == 2
    direct = api.post("/v1/functions/ticket-triage/run", json={"input": {"subject": "Login broken", "body": "cannot sign in"}}).json()
    assert json.loads(cols["outputs"][1]) == direct["output"]


def test_standalone_model_column_name(api: httpx.Client, sutro_s3_server: MotoS3, sutro_s3_bucket: str) -> None:
    table = pa.table({"a": ["first col"], "prompt": ["Summarise Rome"]})
    url = _stage(sutro_s3_server, sutro_s3_bucket, "prompts.parquet", parquet_bytes(table))
    chosen = submit(api, model="gpt-oss-20b", inputs=url, column_name="prompt")
    default = submit(api, model="gpt-oss-20b", inputs=url)
    wait_for(api, chosen)
    wait_for(api, default)
    assert results(api, chosen)["outputs"] == ["[gpt-oss-20b] Summarise Rome"]
    assert results(api, default)["outputs"] == ["[gpt-oss-20b] first col"]


def test_url_input_errors(api: httpx.Client, sutro_s3_server: MotoS3, sutro_s3_bucket: str) -> None:
    url = _stage(sutro_s3_server, sutro_s3_bucket, "leads.parquet", parquet_bytes(LEADS))
    body = {"model": "ticket-triage", "inputs": url}
    assert "'subject'" in assert_error(api.post("/v1/batch-inference", json=body), 422, "missing_column")["detail"]
    body = {"model": "lead-extractor", "inputs": url, "id_column_name": "nope"}
    assert "nope" in assert_error(api.post("/v1/batch-inference", json=body), 422, "missing_column")["detail"]
    body = {"model": "gpt-oss-20b", "inputs": url, "column_name": "nope"}
    assert_error(api.post("/v1/batch-inference", json=body), 422, "missing_column")
    nulls = pa.table({"message": ["ok", None]})
    null_url = _stage(sutro_s3_server, sutro_s3_bucket, "nulls.parquet", parquet_bytes(nulls))
    err = assert_error(api.post("/v1/batch-inference", json={"model": "lead-extractor", "inputs": null_url}), 422, "invalid_input")
    assert "inputs[1]" in err["detail"] and "message" in err["detail"]
    assert api.get("/v1/list-jobs").json()["jobs"] == []


def test_download_failures_do_not_leak_the_signature(api: httpx.Client, sutro_s3_server: MotoS3, sutro_s3_bucket: str, sutro_clean) -> None:
    missing = sutro_s3_server.presigned_url(f"{sutro_s3_bucket}/missing.parquet")
    err = assert_error(api.post("/v1/batch-inference", json={"model": "lead-extractor", "inputs": missing}), 400, "input_download_failed")
    assert "404" in err["detail"] and f"/{sutro_s3_bucket}/missing.parquet" in err["detail"]
    assert "?" not in err["detail"] and "Signature" not in err["detail"]
    # moto does not check signatures, so use one of our own pre-signed URLs, tampered
    source = submit(api, model="gpt-oss-20b", inputs=["a"])
    wait_for(api, source)
    url = api.get(f"/v1/jobs/{source}/results-url").json()["urls"]["get"]
    tampered = url.replace("Signature=", "Signature=00")
    err = assert_error(api.post("/v1/batch-inference", json={"model": "lead-extractor", "inputs": tampered}), 400, "input_download_failed")
    assert "403" in err["detail"] and "Signature" not in err["detail"]
    refused = assert_error(api.post("/v1/batch-inference", json={"model": "lead-extractor", "inputs": "http://127.0.0.1:9/x.csv?token=secret"}), 400, "input_download_failed")
    assert "secret" not in refused["detail"]
    log = sutro_clean.log_path.read_text()
    assert "Signature" not in log and "secret" not in log and sutro_clean.api_key not in log, [ln for ln in log.splitlines() if "Signature" in ln or "secret" in ln][:3]
