"""``POST /v1/functions/{name}/run`` is served by a raw ASGI handler (``serve_run``),
not FastAPI. It must answer exactly like the FastAPI route of the same code path (the
legacy ``/functions/run``, which goes through FastAPI's routing, dependencies and
exception handlers): same status, headers that matter and body, for answers and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.local.conftest import TICKETS

RUN_CASES: list[tuple[str, dict[str, Any]]] = [
    ("ticket-triage", {"input": TICKETS[0]}),
    ("ticket-triage", {"input": TICKETS[1], "confidence_scoring": False}),
    ("ticket-triage", {"input": TICKETS[2], "confidence_scoring": None}),
    ("ticket-triage", {"input": {"subject": "Zürich 🎉", "body": "", "customer_tier": None}}),
    ("lead-extractor", {"input": "Hello, I run procurement at Globex"}),
    ("lead-extractor", {"input": {"message": "Need pricing", "employees": 12000}}),
    ("nope", {"input": "x"}),
    ("ticket-triage", {"inputs": {}}),
    ("ticket-triage", {"input": TICKETS[0], "confidence_scoring": "yes"}),
    ("ticket-triage", {"input": {**TICKETS[0], "priority": 1}}),
    ("ticket-triage", {"input": {"subject": "s", "body": None}}),
    ("ticket-triage", {"input": "just text"}),
    ("ticket-triage", {"input": 3}),
    ("ticket-triage", {"input": float("nan")}),
    ("ticket-triage", {"input": {"subject": float("nan"), "body": "x"}}),
]


def comparable(resp: httpx.Response) -> tuple[int, str | None, str | None, Any]:
    body = resp.json()
    body.pop("request_id", None)
    if isinstance(body.get("detail"), str):
        body["detail"] = body["detail"].replace("input_data", "input")
    return resp.status_code, resp.headers.get("content-type"), resp.headers.get("www-authenticate"), body


@pytest.mark.parametrize(("name", "body"), RUN_CASES)
def test_raw_run_route_answers_like_the_fastapi_route(api: httpx.Client, name: str, body: dict[str, Any]) -> None:
    raw = api.post(f"/v1/functions/{name}/run", content=json.dumps(body))  # json.dumps: bare NaN allowed
    legacy_body = {"name": name, **{("input_data" if k == "input" else k): v for k, v in body.items()}}
    legacy = api.post("/functions/run", content=json.dumps(legacy_body))
    assert raw.json()["request_id"].startswith("req_")
    assert comparable(raw) == comparable(legacy)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Key wrong"}, {"Authorization": "Bearer x"}, {"Authorization": ""}])
@pytest.mark.parametrize("content", [b'{"input": "x"}', b"{not json"])
def test_raw_run_route_auth_comes_first(api: httpx.Client, headers: dict[str, str], content: bytes) -> None:
    anon = httpx.Client(base_url=str(api.base_url), headers=headers)
    raw = anon.post("/v1/functions/ticket-triage/run", content=content)
    legacy = anon.post("/functions/run", content=content)
    assert raw.status_code == 401 and raw.json()["code"] == "unauthorized"
    assert comparable(raw) == comparable(legacy)


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_raw_run_route_bad_bodies(api: httpx.Client, content: bytes) -> None:
    raw = api.post("/v1/functions/ticket-triage/run", content=content)
    legacy = api.post("/functions/run", content=content)
    assert raw.status_code in (400, 422)
    assert comparable(raw) == comparable(legacy)


def test_raw_run_route_chunked_body_and_other_methods(api: httpx.Client) -> None:
    payload = json.dumps({"input": TICKETS[0]}).encode()

    def chunks() -> Iterator[bytes]:
        yield from (payload[i : i + 7] for i in range(0, len(payload), 7))

    chunked = api.post("/v1/functions/ticket-triage/run", content=chunks())
    whole = api.post("/v1/functions/ticket-triage/run", content=payload)
    assert chunked.status_code == 200 and comparable(chunked) == comparable(whole)
    assert api.get("/v1/functions/ticket-triage/run").status_code == 405
    assert api.post("/v1/functions/ticket-triage/run/extra", json={"input": "x"}).status_code == 404
