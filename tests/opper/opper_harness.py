"""Shared pieces of the Opper tests (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sutro_providers.local.opper_fake import OpperEmulator
from sutro_providers.opper import AsyncOpperClient


@dataclass
class OpperServer:
    url: str
    api_key: str
    emulator: OpperEmulator

    def attempts(self, endpoint: str) -> int:
        return self.emulator.stats[endpoint]


class Blocking:
    """Runs an AsyncOpperClient's coroutines on a private loop, so one test body
    drives both clients."""

    def __init__(self, client: AsyncOpperClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client, self._loop = client, loop
        self.config = client.config

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)
        return lambda *args, **kwargs: self._loop.run_until_complete(method(*args, **kwargs))


MakeClient = Callable[..., Any]
