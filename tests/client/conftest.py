"""Fixtures for the Sutro client tests: every test that takes ``make_client`` runs
twice, with :class:`SutroClient` and with :class:`AsyncSutroClient`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from client_harness import FAST_RETRY, BlockingAsync, MakeClient

from sutro_providers import AsyncSutroClient, SutroClient


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(client_kind: str, sutro_server: Any) -> Iterator[MakeClient]:
    """``make_client(**config)`` against the local server (url/key/retry overridable).
    Tests that count jobs or requests, or set faults, also request ``sutro_clean``."""
    loop = asyncio.new_event_loop()
    closers: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("api_url", sutro_server.url)
        kwargs.setdefault("api_key", sutro_server.api_key)
        kwargs.setdefault("retry", FAST_RETRY)
        if client_kind == "sync":
            client: Any = SutroClient(**kwargs)
            closers.append(client.close)
            return client
        aclient = AsyncSutroClient(**kwargs)
        closers.append(lambda: loop.run_until_complete(aclient.aclose()))
        return BlockingAsync(aclient, loop)

    yield make
    for close in closers:
        close()
    loop.close()


@pytest.fixture
def sutro(make_client: MakeClient) -> Any:
    """A client (sync or async-behind-a-proxy) on the local server."""
    return make_client()
