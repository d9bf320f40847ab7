"""Drive the official, unmodified ``sutro`` SDK 0.1.67 against a local server.

Run with the SDK's own venv (``.venv-sdk/bin/python``), never the project venv.
Environment:

* ``SUTRO_API_URL`` / ``SUTRO_API_KEY``: the local server (loopback http).
* ``SDK_COMPAT_PARQUET_URL``: a pre-signed URL of a Parquet file with columns
  ``ticket_id``, ``subject``, ``body`` (rows listed in ``SDK_COMPAT_TICKET_IDS``,
  a JSON list).

The SDK prints and returns ``None`` on HTTP errors instead of raising, so
every call's return value is checked. Exits non-zero on the first mismatch.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time

import polars as pl
import requests
from sutro import Sutro, SutroValidationError

LABELS = {"billing", "bug", "feature_request", "account", "other"}
ROWS = [
    {"subject": "Refund please", "body": "I was charged twice", "customer_tier": "pro"},
    {"subject": "App crashes", "body": "Crash on login", "customer_tier": None},
    {"subject": "Dark mode", "body": "Please add a dark theme", "customer_tier": "free"},
]
URL = os.environ["SUTRO_API_URL"]
KEY = os.environ["SUTRO_API_KEY"]
ADMIN = {"Authorization": f"Key {KEY}"}


def check(condition: object, message: str) -> None:
    if not condition:
        print(f"SDK COMPAT FAILURE: {message}", file=sys.stderr, flush=True)
        sys.exit(1)


def wait_terminal(so: Sutro, job_id: str, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = so.get_job_status(job_id)
        check(status is not None, f"get_job_status({job_id}) returned None")
        if status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return str(status)
        time.sleep(0.2)
    check(False, f"{job_id} did not finish")
    return ""


def admin(method: str, path: str, **kwargs: object) -> None:
    requests.request(method, f"{URL}/_admin{path}", headers=ADMIN, timeout=10, **kwargs).raise_for_status()


def main() -> None:
    so = Sutro()
    check(so.try_authentication(KEY) == {"authenticated": True}, "try_authentication")
    quotas = so.get_quotas()
    check(isinstance(quotas, list) and len(quotas) == 2 and "row_quota" in quotas[0], f"get_quotas: {quotas}")

    # --- real-time Function run --------------------------------------------
    direct = [so.run_function("ticket-triage", {k: v for k, v in r.items() if v is not None}) for r in ROWS]
    for res in direct:
        check(res.output["label"] in LABELS and 0 < res.confidence <= 1, f"run_function: {dict(res)}")
        check(res.usage["input_tokens"] > 0 and res.request_id and res.function["name"] == "ticket-triage", "run_function attrs")
    check(so.run_function("ticket-triage", ROWS[0], confidence_scoring=False).confidence is None, "confidence_scoring=False")
    check(so.run_function("lead-extractor", "Hello from Initech").output["seniority"] in {"individual", "manager", "director", "executive"}, "bare string run")
    try:
        so.run_function("ticket-triage", {"subject": "only subject"})
        check(False, "missing field must raise SutroValidationError")
    except SutroValidationError as exc:
        check(getattr(exc, "code", None) == "invalid_input" and "body" in str(getattr(exc, "detail", exc)), f"validation error: {exc!r}")

    # --- batch over a list of dicts -------------------------------------------
    job = so.batch_run_function("ticket-triage", ROWS, job_name="compat-rows")
    check(isinstance(job, str) and job.startswith("job-"), f"batch_run_function returned {job!r}")
    check(so.get_job_status(job) in {"QUEUED", "STARTING", "RUNNING", "SUCCEEDED"}, "get_job_status")
    wait_terminal(so, job)  # so await_job_completion does not sit in its 5 s poll sleep
    df = so.await_job_completion(job)
    check(isinstance(df, pl.DataFrame) and df.height == 3, f"await_job_completion: {df}")
    check(df["label"].to_list() == [r.output["label"] for r in direct], f"batch labels {df['label'].to_list()} != run_function")
    check(df["confidence_score"].to_list() == [r.confidence for r in direct], "batch confidence != run_function")
    full = so.get_job_results(job, include_inputs=True, include_cumulative_logprobs=True, disable_cache=True)
    check(full is not None and full["inputs"][1] == "subject: App crashes\nbody: Crash on login\ncustomer_tier: ", f"inputs column: {full}")
    check("cumulative_logprobs" in full.columns and "rationale" in full.columns, f"columns: {full.columns}")
    joined = so.get_job_results(job, with_original_df=pl.DataFrame(ROWS))
    check(joined is not None and joined.columns[:3] == ["subject", "body", "customer_tier"] and "label" in joined.columns, "with_original_df")

    # --- batch over a pre-signed Parquet URL with an id column ------------------
    ids = json.loads(os.environ["SDK_COMPAT_TICKET_IDS"])
    url_job = so.batch_run_function("ticket-triage", os.environ["SDK_COMPAT_PARQUET_URL"], id_column="ticket_id", job_priority=1)
    check(isinstance(url_job, str), f"URL batch_run_function returned {url_job!r}")
    check(wait_terminal(so, url_job) == "SUCCEEDED", "URL job did not succeed")
    url_df = so.get_job_results(url_job)
    check(url_df is not None and url_df["ticket_id"].to_list() == ids, f"id column: {url_df}")
    check(set(url_df["label"].to_list()) <= LABELS, "URL job labels")
    with tempfile.TemporaryDirectory() as tmp:
        path = so.download_job_results(url_job, output_path=os.path.join(tmp, "r.parquet"))
        check(path is not None and os.path.exists(path), f"download_job_results returned {path!r}")
        downloaded = pl.read_parquet(path)
        check(downloaded["ticket_id"].to_list() == ids and "outputs" in downloaded.columns, f"artifact: {downloaded}")
        again = so.download_job_results(url_job, output_path=os.path.join(tmp, "r.parquet"))
        check(again == path, "second download_job_results (resume/reuse)")

    # --- standalone model, attached (streams stream-job-progress) ---------------
    attached = so.infer(["Tell me about Paris", "And Rome"], model="qwen-3.5-2b", stay_attached=True)
    check(isinstance(attached, str) and so.get_job_status(attached) == "SUCCEEDED", f"attached infer: {attached!r}")
    texts = so.get_job_results(attached)
    check(texts["inference_result"].to_list() == ["[qwen-3.5-2b] Tell me about Paris", "[qwen-3.5-2b] And Rome"], f"infer outputs: {texts}")

    # --- cancel a running job, attach to a running job ---------------------------
    admin("POST", "/faults", json=[{"kind": "hold_job", "count": 2}])
    held = so.infer(["to be cancelled"], model="gpt-oss-20b", stay_attached=False)
    check(isinstance(held, str), "detached infer")
    while so.get_job_status(held) != "RUNNING":
        time.sleep(0.1)
    cancelled = so.cancel_job(held)
    check(isinstance(cancelled, dict) and cancelled.get("cancelled") is True, f"cancel_job: {cancelled}")
    check(wait_terminal(so, held) == "CANCELLED", "cancelled job status")
    check(so.cancel_job(held)["cancelled"] is False, "cancelling a terminal job")
    followed = so.infer(["attach to me"], model="gpt-oss-20b", stay_attached=False)
    while so.get_job_status(followed) != "RUNNING":
        time.sleep(0.1)
    threading.Timer(1.5, admin, args=("POST", f"/jobs/{followed}/release")).start()
    so.attach(followed)
    check(wait_terminal(so, followed) == "SUCCEEDED", "attached job finished")

    # --- cost estimate and list_jobs -------------------------------------------
    estimate = so.batch_run_function("ticket-triage", ROWS, dry_run=True)
    check(isinstance(estimate, str), f"dry run returned {estimate!r}")
    jobs = so.list_jobs()
    check(isinstance(jobs, list) and jobs[0]["job_id"] == estimate, "list_jobs newest first")
    check(jobs[0]["cost_estimate"] and jobs[0]["cost_estimate"] > 0, f"cost estimate: {jobs[0]}")
    names = {j["job_id"]: j["name"] for j in jobs}
    check(names.get(job) == "compat-rows" and {url_job, attached, held, followed} <= set(names), "list_jobs contents")
    print("SDK COMPAT OK", flush=True)


if __name__ == "__main__":
    main()
