"""The API key never leaks: not in messages, error attributes, pickles or log records,
not to pre-signed hosts, not through redirects."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from sutro_providers.errors import SutroError
from tests.client.client_harness import MOCK_API, MOCK_KEY, MakeClient

PRESIGNED = "https://bucket.s3.example.com/results/r.parquet?X-Amz-Signature=abc123sig"
ECHO = {"detail": f"bad key {MOCK_KEY} for Key {MOCK_KEY}", "code": "unauthorized", "request_id": "req_1"}


@pytest.fixture
def api() -> Any:
    with respx.mock(base_url=MOCK_API, assert_all_called=False) as router:
        yield router


def _assert_clean(err: SutroError) -> None:
    for text in (str(err), repr(err), repr(err.detail), repr(vars(err)), repr(pickle.loads(pickle.dumps(err)).__dict__)):
        assert MOCK_KEY not in text


@pytest.mark.parametrize("status", [401, 422, 429, 500, 503])
def test_key_echoed_by_the_server_is_redacted(
    make_mocked: MakeClient, api: Any, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    api.get("get-quotas").mock(return_value=httpx.Response(status, json=ECHO, headers={"Retry-After": "0"}))
    api.post("functions/f/run").mock(return_value=httpx.Response(status, json={"error": {"code": "x", "message": ECHO["detail"]}}))
    client = make_mocked()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SutroError) as read_err:
        client.get_quotas()  # retried for 429/5xx: the retry warnings are logged too
    with pytest.raises(SutroError) as run_err:
        client.run_function("f", "x")
    for err in (read_err.value, run_err.value):
        _assert_clean(err)
        assert "***" in str(err) and err.status_code == status
    assert MOCK_KEY not in caplog.text
    assert all(MOCK_KEY not in r.getMessage() for r in caplog.records)


def test_html_echo_is_never_quoted(make_mocked: MakeClient, api: Any) -> None:
    api.get("auth/check").mock(return_value=httpx.Response(500, text=f"<pre>Authorization: Key {MOCK_KEY}</pre>"))
    with pytest.raises(SutroError) as info:
        make_mocked().auth_check()
    _assert_clean(info.value)


def test_api_calls_send_the_key_and_presigned_downloads_do_not(make_mocked: MakeClient, api: Any, tmp_path: Path) -> None:
    url_route = api.get("jobs/job-1/results-url").mock(return_value=httpx.Response(200, json={
        "job_id": "job-1", "artifact": {"filename": "r.parquet", "size_bytes": 4}, "urls": {"get": PRESIGNED, "head": PRESIGNED}}))
    head = api.head(PRESIGNED).mock(return_value=httpx.Response(200, headers={"Content-Length": "4", "ETag": '"e"'}))
    get = api.get(PRESIGNED).mock(return_value=httpx.Response(200, content=b"PAR1"))
    path = make_mocked().download_results("job-1", tmp_path / "r.parquet")
    assert path.read_bytes() == b"PAR1"
    assert url_route.calls[0].request.headers["Authorization"] == f"Key {MOCK_KEY}"
    for call in (*head.calls, *get.calls):
        assert "authorization" not in call.request.headers
        assert MOCK_KEY.encode() not in call.request.content


def test_redirects_are_not_followed_for_api_calls(make_mocked: MakeClient, api: Any) -> None:
    api.get("job-status/job-1").mock(return_value=httpx.Response(307, headers={"Location": "https://evil.example.net/steal"}))
    evil = api.get("https://evil.example.net/steal").mock(return_value=httpx.Response(200, json={"job_status": "RUNNING"}))
    with pytest.raises(SutroError) as info:
        make_mocked().job_status("job-1")
    assert info.value.status_code == 307
    assert evil.call_count == 0


def test_key_is_not_in_config_or_client_reprs(make_mocked: MakeClient) -> None:
    client = make_mocked()
    assert MOCK_KEY not in repr(client.config) and MOCK_KEY not in str(client.config)


def test_wrong_key_against_the_real_server_is_not_logged(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk_wrong_but_secret_77aa"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SutroError) as info:
        make_client(api_key=wrong).job_status("job-1")
    assert info.value.status_code == 401
    assert wrong not in caplog.text and wrong not in repr(vars(info.value))
