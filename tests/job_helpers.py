"""Async helpers shared by the job-poller tests (tests/unit) and the trigger tests (tests/airflow)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sutro_providers.client.sutro import SutroClient


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds (the test's own timeout bounds it)."""
    while not condition():
        await asyncio.sleep(0.02)


async def cancel_and_release(server: Any, cancel: list[str], release: list[str]) -> None:
    """Cancel some held jobs and let others finish, without blocking the loop."""
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        for job in cancel:
            await asyncio.to_thread(client.cancel_job, job)
    for job in release:
        await asyncio.to_thread(server.admin.release, job)
