"""Replies a well-behaved server never sends (respx): HTML pages, malformed JSON,
unexpected shapes, legacy job_status forms, the retired-API 410."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
import respx

from sutro_providers import JobStatus
from sutro_providers.client.config import RETIRED_API_MESSAGE
from sutro_providers.errors import (
    SutroAuthenticationError,
    SutroConfigurationError,
    SutroRateLimitError,
    SutroServerError,
    SutroSubmissionOutcomeUnknownError,
)
from tests.client.client_harness import MOCK_API, MakeClient

HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.fixture
def api() -> Any:
    with respx.mock(base_url=MOCK_API, assert_all_called=False) as router:
        yield router


def _html(status: int) -> httpx.Response:
    return httpx.Response(status, text=HTML, headers={"Content-Type": "text/html; charset=utf-8"})


def test_html_200_is_a_server_error_and_not_retried(make_mocked: MakeClient, api: Any) -> None:
    route = api.get("job-status/job-1").mock(return_value=_html(200))
    with pytest.raises(SutroServerError, match=r"HTTP 200 with a non-JSON body \(text/html\); is the API URL right") as info:
        make_mocked().job_status("job-1")
    assert info.value.status_code == 200 and route.call_count == 1


def test_html_502_is_retried_then_raised(make_mocked: MakeClient, api: Any) -> None:
    route = api.get("get-quotas").mock(return_value=_html(502))
    with pytest.raises(SutroServerError) as info:
        make_mocked().get_quotas()
    assert info.value.status_code == 502 and route.call_count == 4  # FAST_RETRY.max_attempts
    assert "<html>" not in str(info.value)


@pytest.mark.parametrize("reply", [_html(200), _html(502), httpx.Response(200, json={"metadata": {}})],
                         ids=["html-200", "html-502", "no-job-id"])
def test_unreadable_submission_reply_is_outcome_unknown(make_mocked: MakeClient, api: Any, reply: httpx.Response) -> None:
    route = api.post("batch-inference").mock(return_value=reply)
    with pytest.raises(SutroSubmissionOutcomeUnknownError) as info:
        make_mocked().create_job(model="m", inputs=["x"], name="shard-1")
    assert route.call_count == 1
    assert info.value.job_name == "shard-1"  # what the pipeline reconciles by


def test_malformed_json_is_a_server_error(make_mocked: MakeClient, api: Any) -> None:
    api.get("jobs/job-1").mock(return_value=httpx.Response(200, content=b'{"job": {"job_id": ', headers={"Content-Type": "application/json"}))
    with pytest.raises(SutroServerError, match="non-JSON body"):
        make_mocked().get_job("job-1")


def test_unexpected_shape_is_a_server_error(make_mocked: MakeClient, api: Any) -> None:
    api.post("job-results").mock(return_value=httpx.Response(200, json={"results": {"outputs": ["a"], "inputs": ["a", "b"]}}))
    with pytest.raises(SutroServerError, match=r"unexpected reply shape \(ValidationError\)"):
        make_mocked().job_results("job-1")


@pytest.mark.parametrize(
    "payload, expected",
    [
        ({"job_status": {"job-1": "RUNNING"}}, JobStatus.RUNNING),
        ({"job_status": {"job-1": "succeeded"}}, JobStatus.SUCCEEDED),
        ({"job_status": "succeeded", "message": "ok", "metadata": {}}, JobStatus.SUCCEEDED),
        ({"job_status": "CANCELLING"}, JobStatus.CANCELLING),
        ({"job_status": "pending"}, JobStatus.UNKNOWN),
        ({"job_status": {"job-other": "FAILED"}}, JobStatus.FAILED),
        ({"job_status": None}, JobStatus.UNKNOWN),
    ],
)
def test_job_status_forms(make_mocked: MakeClient, api: Any, payload: dict[str, Any], expected: JobStatus) -> None:
    api.get("job-status/job-1").mock(return_value=httpx.Response(200, json=payload))
    status = make_mocked().job_status("job-1")
    assert status is expected
    assert status.is_terminal == (expected in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


def test_job_record_tolerates_legacy_and_extra_fields(make_mocked: MakeClient, api: Any) -> None:
    api.get("jobs/job-1").mock(return_value=httpx.Response(200, json={"job": {
        "job_id": "job-1", "status": "failed", "failure_reason": "boom", "new_field": 1, "num_rows": 3}}))
    job = make_mocked().get_job("job-1")
    assert job.status is JobStatus.FAILED and job.failure_reason and job.failure_reason.message == "boom"


def test_retired_api_410_is_a_configuration_error(make_mocked: MakeClient, api: Any) -> None:
    api.get("auth/check").mock(return_value=httpx.Response(410, json={"detail": RETIRED_API_MESSAGE}))
    with pytest.raises(SutroConfigurationError, match="no longer supported"):
        make_mocked().auth_check()


def test_403_and_http_date_retry_after(make_mocked: MakeClient, api: Any) -> None:
    api.get("auth/check").mock(return_value=httpx.Response(403, json={"detail": "forbidden"}))
    api.post("functions/f/run").mock(return_value=httpx.Response(
        429, json={"detail": "slow down"}, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    client = make_mocked()
    with pytest.raises(SutroAuthenticationError):
        client.auth_check()
    with pytest.raises(SutroRateLimitError) as info:
        client.run_function("f", "text")
    assert info.value.retry_after is None


def test_function_name_is_percent_encoded_and_nan_sent_as_null(make_mocked: MakeClient, api: Any) -> None:
    run = api.post("functions/team%2Ftriage%20v2/run").mock(return_value=httpx.Response(200, json={"output": {"a": 1}}))
    create = api.post("batch-inference").mock(return_value=httpx.Response(200, json={"results": "job-9", "metadata": {"job_id": "job-9"}}))
    client = make_mocked()
    assert client.run_function("team/triage v2", {"x": math.nan}).value == {"a": 1}
    assert json.loads(run.calls[0].request.content) == {"input": {"x": None}}
    assert client.create_job(model="m", inputs=[{"a": math.nan, "b": [math.inf]}]) == "job-9"
    assert json.loads(create.calls[0].request.content)["inputs"] == [{"a": None, "b": [None]}]
