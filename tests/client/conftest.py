"""Fixtures for the Sutro client tests: every test that takes ``make_client`` (local
server) or ``make_mocked`` (respx) runs twice, with :class:`SutroClient` and with
:class:`AsyncSutroClient`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from sutro_providers import AsyncSutroClient, SutroClient
from tests.client.client_harness import FAST_RETRY, MOCK_KEY, MOCK_URL, BlockingAsync, MakeClient


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _factory(kind: str, defaults: dict[str, Any]) -> Iterator[MakeClient]:
    loop = asyncio.new_event_loop()
    closers: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs = {**defaults, "retry": FAST_RETRY, **kwargs}
        if kind == "sync":
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
def make_client(client_kind: str, sutro_server: Any) -> Iterator[MakeClient]:
    """``make_client(**config)`` against the local server (url/key/retry overridable).
    Tests that count jobs or requests, or set faults, also request ``sutro_clean``."""
    yield from _factory(client_kind, {"api_url": sutro_server.url, "api_key": sutro_server.api_key})


@pytest.fixture
def sutro(make_client: MakeClient) -> Any:
    """A client (sync or async-behind-a-proxy) on the local server."""
    return make_client()


@pytest.fixture
def make_mocked(client_kind: str) -> Iterator[MakeClient]:
    """``make_mocked(**config)``: a client for ``MOCK_URL`` (mock it with respx)."""
    yield from _factory(client_kind, {"api_url": MOCK_URL, "api_key": MOCK_KEY})
