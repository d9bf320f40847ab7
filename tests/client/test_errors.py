"""Every error class a real server can produce, and the retry policy, over real sockets.

Attempts are counted by the local server (``/_admin/stats``), so nothing here
depends on timing except lower bounds on sleeps that must happen.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sutro_providers import JobStatus, RetryPolicy
from sutro_providers.errors import (
    SutroAuthenticationError,
    SutroConnectionError,
    SutroError,
    SutroNotFoundError,
    SutroRateLimitError,
    SutroResultsNotReadyError,
    SutroServerError,
    SutroSubmissionOutcomeUnknownError,
    SutroValidationError,
)
from tests.client.client_harness import CLOSED_PORT_URL, MakeClient, requests_to, wait_for

ROWS = [{"subject": "Refund", "body": "Charged twice"}]


def test_wrong_key_is_an_authentication_error(make_client: MakeClient) -> None:
    client = make_client(api_key="sk_wrong_key_0000000000")
    with pytest.raises(SutroAuthenticationError) as info:
        client.auth_check()
    assert info.value.status_code == 401 and info.value.code == "unauthorized" and info.value.request_id
    assert "sk_wrong_key_0000000000" not in str(info.value)


def test_unknown_job_and_function_are_not_found(sutro: Any) -> None:
    with pytest.raises(SutroNotFoundError) as info:
        sutro.job_status("job-00000000-0000-4000-8000-000000000000")
    assert info.value.code == "job_not_found" and info.value.endpoint == "job-status"
    with pytest.raises(SutroNotFoundError):
        sutro.get_job("job-nope")
    with pytest.raises(SutroNotFoundError):
        sutro.get_function("no-such-function")
    with pytest.raises(SutroNotFoundError):
        sutro.create_job(model="no-such-function", inputs=["x"])


def test_server_side_validation_400_and_422(sutro: Any) -> None:
    with pytest.raises(SutroValidationError) as bad_cursor:
        sutro.list_jobs(limit=2, cursor="not-a-cursor")
    assert bad_cursor.value.status_code == 400 and bad_cursor.value.code == "invalid_cursor"
    with pytest.raises(SutroValidationError) as too_many:
        sutro.list_jobs(limit=1000)
    assert too_many.value.status_code == 422
    with pytest.raises(SutroValidationError) as unknown_field:
        sutro.run_function("ticket-triage", {"subject": "s", "body": "b", "colour": "red"})
    assert unknown_field.value.status_code == 422 and "colour" in str(unknown_field.value)
    with pytest.raises(SutroValidationError) as missing:
        sutro.create_job(model="ticket-triage", inputs=[{"subject": "only"}])
    assert missing.value.status_code in (400, 422)


def test_job_results_before_success_is_an_error(sutro_clean: Any, sutro: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job_id = sutro.create_job(model="qwen-3.5-2b", inputs=["x"])
    with pytest.raises(SutroError) as info:
        sutro.job_results(job_id)
    assert info.value.status_code == 409 and info.value.code == "job_not_succeeded"
    assert requests_to(sutro_clean, "job-results") == 1  # a plain 409 is not transient
    sutro.cancel_job(job_id)


def test_rate_limit_on_function_run_is_raised_with_retry_after(sutro_clean: Any, sutro: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "functions-run", "status": 429, "retry_after": 1, "count": 1}])
    with pytest.raises(SutroRateLimitError) as info:
        sutro.run_function("ticket-triage", ROWS[0])
    assert info.value.retry_after == 1.0 and info.value.status_code == 429
    assert requests_to(sutro_clean, "functions-run") == 1  # billed: never retried


def test_rate_limited_reads_are_retried_honouring_retry_after(sutro_clean: Any, sutro: Any) -> None:
    job_id = sutro.create_job(model="qwen-3.5-2b", inputs=["x"])
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "job-status", "status": 429, "retry_after": 0.2, "count": 2}])
    started = time.monotonic()
    assert isinstance(sutro.job_status(job_id), JobStatus)
    assert time.monotonic() - started >= 0.4  # two waits, each at least Retry-After (backoff alone ≤ 0.05)
    assert requests_to(sutro_clean, "job-status") == 3


def test_server_errors_exhaust_the_retry_budget(sutro_clean: Any, make_client: MakeClient) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02))
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "get-quotas", "status": 503}])
    with pytest.raises(SutroServerError) as info:
        client.get_quotas()
    assert info.value.status_code == 503
    assert requests_to(sutro_clean, "get-quotas") == 3


def test_524_and_dropped_connections_on_reads_are_retried(sutro_clean: Any, sutro: Any) -> None:
    sutro_clean.admin.set_faults([
        {"kind": "status", "endpoint": "get-quotas", "status": 524, "count": 1},
        {"kind": "drop_connection", "endpoint": "get-quotas", "count": 1},
    ])
    assert sutro.get_quotas().for_priority(0).row_quota
    assert requests_to(sutro_clean, "get-quotas") == 3


def test_results_not_ready_then_success(sutro_clean: Any, sutro: Any) -> None:
    job_id = sutro.create_job(model="qwen-3.5-2b", inputs=["a", "b"])
    assert wait_for(sutro, job_id) is JobStatus.SUCCEEDED
    sutro_clean.admin.set_faults([{"kind": "results_not_ready", "endpoint": "job-results", "count": 2}])
    assert len(sutro.job_results(job_id).results["outputs"]) == 2
    assert requests_to(sutro_clean, "job-results") == 3


def test_results_not_ready_forever_raises_its_own_class(sutro_clean: Any, sutro: Any) -> None:
    job_id = sutro.create_job(model="qwen-3.5-2b", inputs=["a"])
    assert wait_for(sutro, job_id) is JobStatus.SUCCEEDED
    sutro_clean.admin.set_faults([{"kind": "results_not_ready", "endpoint": "results-url"}])
    with pytest.raises(SutroResultsNotReadyError):
        sutro.results_url(job_id)
    assert requests_to(sutro_clean, "results-url") == 4  # FAST_RETRY.max_attempts


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "status", "endpoint": "batch-inference", "status": 524, "count": 1, "phase": "after"},
        {"kind": "drop_connection", "endpoint": "batch-inference", "count": 1, "phase": "after"},
    ],
    ids=["524-after", "drop-after"],
)
def test_submission_outcome_unknown_is_not_retried(sutro_clean: Any, sutro: Any, rule: dict[str, Any]) -> None:
    sutro_clean.admin.set_faults([rule])
    with pytest.raises(SutroSubmissionOutcomeUnknownError) as info:
        sutro.create_job(model="ticket-triage", inputs=ROWS, name="nightly-shard-7")
    assert info.value.job_name == "nightly-shard-7"
    assert requests_to(sutro_clean, "batch-inference") == 1  # not retried
    assert sutro_clean.admin.job_count() == 1  # ...and the job WAS created
    found = sutro.find_jobs_by_name("nightly-shard-7")
    assert len(found) == 1 and found[0].model == "ticket-triage"


def test_submission_rejected_before_handling_is_outcome_unknown_too(sutro_clean: Any, sutro: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "batch-inference", "status": 502, "count": 1}])
    with pytest.raises(SutroSubmissionOutcomeUnknownError):
        sutro.create_job(model="qwen-3.5-2b", inputs=["x"], name="maybe")
    assert requests_to(sutro_clean, "batch-inference") == 1 and sutro_clean.admin.job_count() == 0


@pytest.mark.parametrize("call", ["auth_check", "create_job"])
def test_closed_port_is_a_connection_error(make_client: MakeClient, call: str) -> None:
    client = make_client(api_url=CLOSED_PORT_URL, retry=RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01))
    with pytest.raises(SutroConnectionError) as info:  # a refused connect proves nothing was sent
        client.auth_check() if call == "auth_check" else client.create_job(model="m", inputs=["x"])
    assert not isinstance(info.value, SutroSubmissionOutcomeUnknownError)
    assert "ConnectError" in str(info.value)


def test_failure_reason_echoing_the_key_is_redacted() -> None:
    """A FAILED job whose server-supplied reason repeats the API key: the key never
    reaches the parsed record (and so no exception message or log)."""
    import httpx

    from sutro_providers.client import endpoints
    from sutro_providers.client.config import SutroConfig
    from sutro_providers.client.transport import parse_response

    config = SutroConfig.resolve("http://127.0.0.1:9", "sk_secret_key_123")
    body = {"job": {"job_id": "job-1", "status": "FAILED",
                    "failure_reason": {"message": "auth sk_secret_key_123 rejected by the model host"}}}
    job = parse_response(config, endpoints.get_job("job-1"), httpx.Response(200, json=body))
    assert job.failure_reason is not None and "sk_secret_key_123" not in str(job.failure_reason.message)
    assert "rejected by the model host" in str(job.failure_reason.message)
