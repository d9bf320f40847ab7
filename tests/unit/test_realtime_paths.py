"""The cheap per-call paths of the real-time route and client (bench B6): each must
give exactly what the general path gives."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from sutro_providers import SutroClient
from sutro_providers.client.executor import URL_CACHE_SIZE, url_cache
from sutro_providers.local.engine import DeterministicEngine, EngineOutput, EngineRequest
from sutro_providers.local.render import build_prompts, render_object_row, render_value
from sutro_providers.local.server import LocalSutroServer
from sutro_providers.realtime import _new_event_loop

FUNCTIONS = Path(__file__).resolve().parents[2] / "example_dags" / "functions"
NAMES = ["subject", "body", "customer_tier"]


@pytest.mark.parametrize(
    "row",
    [
        {"subject": "Refund", "body": "Charged twice", "customer_tier": "pro"},
        {"subject": "line\nbreak", "body": None, "customer_tier": 3},
        {"subject": "é ü", "body": float("nan"), "customer_tier": {"a": [1, "ü"]}},
        {"subject": "", "body": True, "customer_tier": 1.5},
        {"subject": "only one"},
    ],
)
def test_one_row_prompt_is_the_batch_prompt(row: dict[str, Any]) -> None:
    columns = [pa.array([render_value(row.get(name))], type=pa.string()) for name in NAMES]
    assert render_object_row(row, NAMES) == build_prompts(NAMES, columns)[0].as_py()


class OffLoopEngine:
    """A pluggable engine that refuses to run on the event loop's thread."""

    def infer(self, request: EngineRequest, prompts: pa.Array) -> EngineOutput:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return DeterministicEngine().infer(request, prompts)
        raise RuntimeError("a pluggable engine ran on the event loop")


def off_loop_engine() -> OffLoopEngine:
    return OffLoopEngine()


def test_a_pluggable_engine_runs_off_the_event_loop(sutro_clean: Any) -> None:
    row = {"subject": "Refund please", "body": "I was charged twice for March"}
    with SutroClient(sutro_clean.url, sutro_clean.api_key) as client:
        expected = client.run_function("ticket-triage", row)
    engine = f"{__name__}:off_loop_engine"
    with LocalSutroServer(FUNCTIONS, extra_args=["--engine", engine]) as server, \
            SutroClient(server.url, server.api_key) as client:
        answer = client.run_function("ticket-triage", row)
    assert answer.response == expected.response and answer.confidence == expected.confidence
    assert answer.predictions == expected.predictions and answer.usage == expected.usage


def test_cached_urls_are_the_clients_own_and_bounded() -> None:
    with httpx.Client(base_url="http://127.0.0.1:9/v1/") as http:
        urls = url_cache(http)
        for path in ["functions/ticket-triage/run", "jobs/job%2Fa", "list-jobs", "functions/ticket-triage/run"]:
            assert urls(path) == http.build_request("GET", path).url
        assert str(urls("jobs/x")) == "http://127.0.0.1:9/v1/jobs/x"
        for i in range(URL_CACHE_SIZE + 10):
            urls(f"jobs/{i}")
        assert urls.cache_info().currsize <= URL_CACHE_SIZE  # type: ignore[attr-defined]


def test_run_realtime_loop_is_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = _new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails: asyncio's own loop
    loop = _new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop) and isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()
