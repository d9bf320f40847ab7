"""Client-side validation: bad requests raise SutroValidationError before anything is sent.

Two proofs that nothing is sent: a client pointed at a closed port raises the
validation error (a request would have raised SutroConnectionError), and the real
server counts no request and no job.
"""

from __future__ import annotations

from typing import Any

import pytest

from sutro_providers.errors import SutroValidationError
from tests.client.client_harness import CLOSED_PORT_URL, MakeClient, requests_to

SIGNATURE = "X-Amz-Signature=c0ffee5ecret"
URL = f"https://bucket.s3.amazonaws.com/in/rows.parquet?X-Amz-Expires=600&{SIGNATURE}"
ROWS = [{"subject": "s", "body": "b"}]

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "name-too-long": ({"model": "m", "inputs": URL, "name": "n" * 46}, "name: String should have at most 45 characters"),
    "description-too-long": ({"model": "m", "inputs": URL, "description": "d" * 513}, "description: String should have at most 512"),
    "priority-2": ({"model": "m", "inputs": URL, "job_priority": 2}, "job_priority must be 0 or 1, got 2"),
    "priority-negative": ({"model": "m", "inputs": ROWS, "job_priority": -1}, "job_priority must be 0 or 1"),
    "id-column-with-rows": ({"model": "m", "inputs": ROWS, "id_column_name": "id"}, "id_column_name works only with a URL input"),
    "column-with-rows": ({"model": "m", "inputs": ["p"], "column_name": "text"}, "column_name works only with a URL input"),
    "dataset-id": ({"model": "m", "inputs": "dataset-4f9c"}, "dataset ids are not supported"),
    "not-a-url": ({"model": "m", "inputs": "s3://bucket/rows.parquet"}, "a string input must be an http(s) URL"),
    "empty-inputs": ({"model": "m", "inputs": []}, "inputs is empty"),
    "bad-sampling": ({"model": "m", "inputs": URL, "sampling_params": {"temperature": "hot"}}, "sampling_params['temperature'] must be a number"),
    "empty-model": ({"model": "", "inputs": URL}, "model: String should have at least 1 character"),
    "unknown-field": ({"model": "m", "inputs": URL, "priority": 1}, "priority: Extra inputs are not permitted"),
}


@pytest.mark.parametrize("request_fields, message", list(CASES.values()), ids=list(CASES))
def test_invalid_job_is_refused_before_sending(make_client: MakeClient, request_fields: dict[str, Any], message: str) -> None:
    client = make_client(api_url=CLOSED_PORT_URL)
    with pytest.raises(SutroValidationError) as info:
        client.create_job(**request_fields)
    text = str(info.value)
    assert text.startswith("invalid BatchInferenceRequest: ") and message in text
    assert SIGNATURE not in text and "c0ffee5ecret" not in text and "X-Amz" not in text
    assert info.value.status_code is None  # client-side: no HTTP exchange happened


def test_invalid_other_calls_are_refused_before_sending(make_client: MakeClient) -> None:
    client = make_client(api_url=CLOSED_PORT_URL)
    with pytest.raises(SutroValidationError, match="expires_in_seconds must be between 1 and 604800"):
        client.results_url("job-1", expires_in_seconds=0)
    with pytest.raises(SutroValidationError, match="invalid FunctionRunRequest: input"):
        client.run_function("ticket-triage", ["not", "an", "object"])


def test_the_server_sees_no_request_and_no_job(sutro_clean: Any, sutro: Any) -> None:
    for request_fields, _ in CASES.values():
        with pytest.raises(SutroValidationError):
            sutro.create_job(**request_fields)
    assert sutro_clean.admin.job_count() == 0
    assert requests_to(sutro_clean, "batch-inference") == 0
    sutro.create_job(model="qwen-3.5-2b", inputs=["a valid request is counted"])  # the counters do work
    assert requests_to(sutro_clean, "batch-inference") == 1 and sutro_clean.admin.job_count() == 1
