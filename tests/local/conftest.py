"""Shared helpers for the local-server tests (real sockets, no mocks)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from sutro_providers.local.server import LocalSutroServer

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
TICKETS = [
    {"subject": "Refund please", "body": "I was charged twice for March", "customer_tier": "pro"},
    {"subject": "App crashes", "body": "Crash on login since update 3.2", "customer_tier": None},
    {"subject": "Dark mode", "body": "Would love a dark theme"},
]


@pytest.fixture
def api(sutro_clean: LocalSutroServer) -> Iterator[httpx.Client]:
    """An authenticated client of the (reset) session server."""
    with httpx.Client(
        base_url=sutro_clean.url, headers={"Authorization": f"Key {sutro_clean.api_key}"}, timeout=30
    ) as client:
        yield client


def submit(client: httpx.Client, **body: Any) -> str:
    resp = client.post("/v1/batch-inference", json=body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["results"])


def status_of(client: httpx.Client, job_id: str) -> str:
    resp = client.get(f"/v1/job-status/{job_id}")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["job_status"][job_id])


def wait_for(client: httpx.Client, job_id: str, wanted: set[str] | None = None, timeout: float = 60) -> tuple[str, list[str]]:
    """Poll until the status is in ``wanted`` (default terminal); returns it and all seen."""
    wanted = wanted or TERMINAL
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = status_of(client, job_id)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in wanted:
            return status, seen
        time.sleep(0.03)
    raise AssertionError(f"{job_id} stuck; saw {seen}")


def results(client: httpx.Client, job_id: str, **flags: bool) -> dict[str, list[Any]]:
    resp = client.post("/v1/job-results", json={"job_id": job_id, **flags})
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["results"])


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """JSON error body ``{"detail", "code", "request_id"}`` with the given status."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"detail", "code", "request_id"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return dict(body)
