"""Spans, retry policy (billed calls are never retried) and configuration."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from sutro_providers.errors import (
    SutroConfigurationError,
    SutroConnectionError,
    SutroNotFoundError,
    SutroRateLimitError,
    SutroServerError,
)
from sutro_providers.opper import OpperClient, OpperConfig
from tests.opper.opper_harness import MakeClient, OpperServer


def test_span_create_get_patch_and_trace_linkage(make_client: MakeClient, opper: OpperServer) -> None:
    client = make_client()
    root = client.create_span("nightly-enrichment", type="pipeline", input="batch 7", meta={"rows": 3})
    assert root.trace_id and root.parent_id is None
    child = client.create_span("step", parent_id=root.id)
    assert child.trace_id == root.trace_id and child.parent_id == root.id
    client.call("triage", "text", parent_span_id=child.id)
    ended = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    patched = client.update_span(root.id, output="done", end_time=ended, tags={"ok": True})
    assert patched.output == "done" and patched.end_time == ended and patched.tags == {"ok": True}
    fetched = client.get_span(root.id)
    assert fetched.output == "done" and fetched.meta == {"rows": 3} and fetched.name == "nightly-enrichment"
    trace = opper.emulator.trace(root.trace_id)
    names = sorted(s["name"] for s in trace["spans"])
    assert names == ["nightly-enrichment", "step", "triage"]


def test_unknown_span_is_not_found(make_client: MakeClient) -> None:
    with pytest.raises(SutroNotFoundError):
        make_client().get_span("no-such-span")


def test_rate_limit_is_not_retried_by_default(make_client: MakeClient, opper: OpperServer) -> None:
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-call", "status": 429, "count": 1, "retry_after": 0.01}])
    with pytest.raises(SutroRateLimitError) as info:
        make_client().call("triage", "text")
    assert info.value.retry_after == pytest.approx(0.01)
    assert opper.attempts("opper-call") == 1


def test_rate_limit_with_retry_after_is_retried_when_opted_in(make_client: MakeClient, opper: OpperServer) -> None:
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-call", "status": 429, "count": 2, "retry_after": 0.01}])
    result = make_client(retry_rate_limits=True).call("triage", "text")
    assert "text" in result.data
    assert opper.attempts("opper-call") == 3 and opper.attempts("opper-call:ok") == 1


def test_rate_limit_without_retry_after_is_not_retried_even_when_opted_in(
    make_client: MakeClient, opper: OpperServer
) -> None:
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-call", "status": 429, "count": 1}])
    with pytest.raises(SutroRateLimitError):
        make_client(retry_rate_limits=True).call("triage", "text")
    assert opper.attempts("opper-call") == 1


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_on_calls_are_never_retried(make_client: MakeClient, opper: OpperServer, status: int) -> None:
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-call*", "status": status, "count": 1}])
    with pytest.raises(SutroServerError) as info:
        make_client(retry_rate_limits=True).call("triage", "text")
    assert info.value.status_code == status and str(info.value).startswith("Opper ")
    assert opper.attempts("opper-call") == 1


def test_connection_dropped_after_a_billed_call_is_not_retried(make_client: MakeClient, opper: OpperServer) -> None:
    opper.emulator.faults.set([{"kind": "drop_connection", "endpoint": "opper-call", "count": 1, "phase": "after"}])
    with pytest.raises(SutroConnectionError):
        make_client(retry_rate_limits=True).call("triage", "text")
    assert opper.attempts("opper-call") == 1 and opper.attempts("opper-call:ok") == 1  # it ran once


def test_span_reads_are_retried(make_client: MakeClient, opper: OpperServer, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client()
    span = client.create_span("root")
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-spans", "status": 503, "count": 2}])
    with caplog.at_level(logging.WARNING, logger="sutro_providers.client.sutro"):
        assert client.get_span(span.id).id == span.id
    assert opper.attempts("opper-spans") == 4  # create + 2 failures + success
    assert opper.api_key not in caplog.text and "retrying" in caplog.text


def test_span_creation_is_not_retried(make_client: MakeClient, opper: OpperServer) -> None:
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-spans", "status": 503, "count": 1}])
    with pytest.raises(SutroServerError):
        make_client().create_span("root")
    assert opper.attempts("opper-spans") == 1 and not opper.emulator.spans


def test_closed_port_is_a_connection_error() -> None:
    with OpperClient(base_url="http://127.0.0.1:9", api_key="k-123456") as client:
        with pytest.raises(SutroConnectionError, match="^Opper opper-call: ConnectError"):
            client.call("x", "y")


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPPER_API_KEY", "op-env-key")
    monkeypatch.delenv("OPPER_BASE_URL", raising=False)
    config = OpperConfig.resolve()
    assert config.base_url == "https://api.opper.ai" and config.api_key.get_secret_value() == "op-env-key"
    assert "op-env-key" not in repr(config)
    monkeypatch.setenv("OPPER_BASE_URL", "http://localhost:8080/opper/")
    assert OpperConfig.resolve().base_url == "http://localhost:8080/opper"


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://opper.example.com", "https unless the host is loopback"),
        ("https://u:p@api.opper.ai", "credentials"),
        ("https://api.opper.ai?x=1", "query string"),
        ("ftp://api.opper.ai", "absolute http"),
    ],
)
def test_config_rejects_unsafe_base_urls(url: str, message: str) -> None:
    with pytest.raises(SutroConfigurationError, match=message):
        OpperConfig.resolve(url, "k")


def test_config_requires_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPPER_API_KEY", raising=False)
    with pytest.raises(SutroConfigurationError, match="OPPER_API_KEY"):
        OpperConfig.resolve()
