"""Every endpoint of SutroClient and AsyncSutroClient against the local server, over real sockets."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers import FunctionSpec, JobStatus
from tests.client.client_harness import requests_to, wait_for

TRIAGE_LABELS = {"billing", "bug", "feature_request", "account", "other"}
TICKETS = [
    {"subject": "Refund", "body": "I was charged twice", "customer_tier": "pro"},
    {"subject": "Crash", "body": "The app crashes on login"},
]


def test_create_job_with_object_rows_then_record_and_results(sutro: Any) -> None:
    job_id = sutro.create_job(model="ticket-triage", inputs=TICKETS, name="triage-rows", description="two rows")
    assert job_id.startswith("job-")
    assert wait_for(sutro, job_id) is JobStatus.SUCCEEDED
    job = sutro.get_job(job_id)
    assert (job.job_id, job.status, job.num_rows, job.name) == (job_id, JobStatus.SUCCEEDED, 2, "triage-rows")
    assert job.model == "ticket-triage" and job.description == "two rows" and job.job_priority == 0
    assert job.input_tokens and job.output_tokens and job.datetime_completed is not None
    cols = sutro.job_results(job_id, include_inputs=True, include_cumulative_logprobs=True).results
    assert len(cols["outputs"]) == 2
    assert {json.loads(o)["label"] for o in cols["outputs"]} <= TRIAGE_LABELS
    assert cols["inputs"][0].startswith("subject: Refund\nbody: I was charged twice")
    assert len(cols["confidence_score"]) == len(cols["cumulative_logprobs"]) == 2
    plain = sutro.job_results(job_id).results
    assert "inputs" not in plain and "cumulative_logprobs" not in plain and plain["outputs"] == cols["outputs"]


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_presigned_parquet_url_with_id_column_and_download(sutro: Any, sutro_s3_server: Any, sutro_s3_bucket: str, tmp_path: Path) -> None:
    ids = ["t-3", "t-1", "t-2"]
    table = pa.table({
        "ticket_id": ids,
        "subject": ["Invoice", "Login", "Dark mode"],
        "body": ["Wrong VAT", "Cannot sign in", "Please add it"],
    })
    sutro_s3_server.put(f"{sutro_s3_bucket}/in/tickets.parquet", _parquet(table))
    url = sutro_s3_server.presigned_url(f"{sutro_s3_bucket}/in/tickets.parquet")
    job_id = sutro.create_job(model="ticket-triage", inputs=url, id_column_name="ticket_id", job_priority=1)
    assert wait_for(sutro, job_id) is JobStatus.SUCCEEDED
    cols = sutro.job_results(job_id).results
    assert cols["ticket_id"] == ids

    artifact = sutro.results_url(job_id, expires_in_seconds=60)
    assert artifact.format == "parquet" and artifact.artifact.filename.endswith(".parquet")
    assert "urls" in repr(artifact) and artifact.urls.get not in repr(artifact)
    path = sutro.download_results(job_id, tmp_path / "results.parquet")
    assert path.stat().st_size == artifact.artifact.size_bytes
    downloaded = pq.read_table(path)
    assert downloaded.column("ticket_id").to_pylist() == ids
    assert downloaded.column("outputs").to_pylist() == cols["outputs"]
    with_inputs = pq.read_table(sutro.download_results(job_id, tmp_path / "inputs.parquet", include_inputs=True))
    assert with_inputs.column("inputs").to_pylist()[0].startswith("subject: Invoice")


def test_list_jobs_paging_iter_and_find_by_name(sutro_clean: Any, sutro: Any) -> None:
    ids = [sutro.create_job(model="qwen-3.5-2b", inputs=[f"prompt {i}"], name=f"page-{i}") for i in range(3)]
    first = sutro.list_jobs(limit=2)
    assert [j.job_id for j in first.jobs] == [ids[2], ids[1]] and first.next_cursor
    second = sutro.list_jobs(limit=2, cursor=first.next_cursor)
    assert [j.job_id for j in second.jobs] == [ids[0]] and second.next_cursor is None
    before = requests_to(sutro_clean, "list-jobs")
    assert [j.job_id for j in sutro.iter_jobs(page_size=2)] == ids[::-1]
    assert requests_to(sutro_clean, "list-jobs") - before == 2
    assert [j.job_id for j in sutro.find_jobs_by_name("page-1")] == [ids[1]]
    assert sutro.find_jobs_by_name("page-9") == []
    assert [j.job_id for j in sutro.list_jobs().jobs] == ids[::-1]


def test_status_cancel_and_record_of_a_held_job(sutro_clean: Any, sutro: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job_id = sutro.create_job(model="qwen-3.5-2b", inputs=["a", "b"])
    deadline = time.monotonic() + 10
    while (status := sutro.job_status(job_id)) is not JobStatus.RUNNING:
        assert status in {JobStatus.QUEUED, JobStatus.STARTING} and time.monotonic() < deadline
        time.sleep(0.05)
    assert not status.is_terminal
    cancelled = sutro.cancel_job(job_id)
    assert cancelled.cancelled is True and cancelled.message
    assert wait_for(sutro, job_id) is JobStatus.CANCELLED
    assert sutro.get_job(job_id).status is JobStatus.CANCELLED
    again = sutro.cancel_job(job_id)
    assert again.cancelled is False


def test_failed_job_carries_its_failure_reason(sutro_clean: Any, sutro: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "GPU on fire"}])
    job_id = sutro.create_job(model="qwen-3.5-2b", inputs=["x"])
    assert wait_for(sutro, job_id) is JobStatus.FAILED
    job = sutro.get_job(job_id)
    assert job.failure_reason is not None and "GPU on fire" in (job.failure_reason.message or "")


def test_stream_progress_until_the_job_ends(sutro: Any) -> None:
    job_id = sutro.create_job(model="qwen-3.5-2b", inputs=[f"row {i}" for i in range(5)])
    updates = list(sutro.stream_progress(job_id))
    kinds = {u.update_type for u in updates}
    assert {"progress", "tokens"} <= kinds
    assert [u.rows_done for u in updates if u.update_type == "progress"][-1] == 5
    tokens = [u.tokens for u in updates if u.update_type == "tokens"][-1]
    assert tokens is not None and tokens[0] > 0 and tokens[1] > 0
    assert sutro.job_status(job_id) is JobStatus.SUCCEEDED


def test_stream_progress_dropped_early_ends_quietly(sutro_clean: Any, sutro: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}, {"kind": "stream_drop", "count": 1}])
    job_id = sutro.create_job(model="qwen-3.5-2b", inputs=["x"])
    updates = list(sutro.stream_progress(job_id))
    assert [u.update_type for u in updates] == ["progress"]
    sutro.cancel_job(job_id)


def test_run_function_classification_and_extraction(sutro: Any) -> None:
    triage = sutro.run_function("ticket-triage", {"subject": "Refund", "body": "Charged twice"})
    assert triage.kind == "classification" and triage.response in TRIAGE_LABELS
    assert triage.value["label"] == triage.response  # output wins over response
    assert triage.predictions and [p.confidence for p in triage.predictions] == sorted(
        (p.confidence for p in triage.predictions), reverse=True
    )
    assert triage.confidence is not None and triage.usage and triage.usage.input_tokens
    assert triage.function and triage.function.name == "ticket-triage"

    lead = sutro.run_function("lead-extractor", {"message": "Hi, I am CTO at Acme and want a demo"}, confidence_scoring=False)
    assert lead.kind == "extraction" and set(lead.value) == {"company", "seniority", "intent_score", "wants_demo"}
    assert lead.confidence is None
    again = sutro.run_function("lead-extractor", {"message": "Hi, I am CTO at Acme and want a demo"})
    assert again.value == lead.value  # deterministic engine


def test_functions_auth_and_quotas(sutro: Any) -> None:
    specs = sutro.list_functions()
    assert all(isinstance(s, FunctionSpec) for s in specs)
    assert {s.name for s in specs} == {"ticket-triage", "lead-extractor", "ticket-sentiment"}
    spec = sutro.get_function("ticket-triage")
    assert spec.kind == "classification" and set(spec.labels or []) == TRIAGE_LABELS
    assert sutro.auth_check() is True
    quotas = sutro.get_quotas()
    assert quotas.for_priority(0).row_quota == 1_000 and quotas.for_priority(1).row_quota == 10_000_000
    assert quotas.for_priority(5).row_quota is None


@pytest.mark.parametrize("model", ["qwen-3.5-2b", "ticket-triage"])
def test_cost_estimate_job(sutro: Any, model: str) -> None:
    inputs: list[Any] = ["hello"] if model == "qwen-3.5-2b" else TICKETS
    job_id = sutro.create_job(model=model, inputs=inputs, cost_estimate=True)
    assert wait_for(sutro, job_id) is JobStatus.SUCCEEDED
    job = sutro.get_job(job_id)
    assert job.cost_estimate is not None and job.cost_estimate > 0
