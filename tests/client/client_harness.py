"""Shared pieces of the client tests: one blocking interface over both clients."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sutro_providers import AsyncSutroClient, JobStatus, RetryPolicy

MakeClient = Callable[..., Any]
FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_attempts=4)
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens, connect is refused
MOCK_URL = "https://sutro.example.com"  # answered by respx in the narrow unit tests
MOCK_API = MOCK_URL + "/v1"
MOCK_KEY = "sk_mock_Secret_4c7e1f0b9a"


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


class BlockingAsync:
    """Drives an :class:`AsyncSutroClient` from a sync test body on a private loop:
    coroutines are awaited, async generators collected into lists."""

    def __init__(self, client: AsyncSutroClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client, self._loop = client, loop
        self.config = client.config

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)
        if inspect.isasyncgenfunction(method):
            return lambda *a, **kw: self._loop.run_until_complete(_collect(method(*a, **kw)))
        return lambda *a, **kw: self._loop.run_until_complete(method(*a, **kw))


def wait_for(client: Any, job_id: str, timeout: float = 20.0) -> JobStatus:
    """Poll until the job is terminal; return its status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: JobStatus = client.job_status(job_id)
        if status.is_terminal:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not terminal after {timeout}s")


def requests_to(server: Any, route: str) -> int:
    """How many requests the local server counted for ``route``."""
    return int(server.admin.stats()["requests"].get(route, 0))
