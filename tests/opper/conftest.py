"""A real uvicorn server running the Opper emulator on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from sutro_providers.client.config import RetryPolicy
from sutro_providers.local.opper_fake import OpperEmulator
from sutro_providers.local.opper_routes import create_opper_router
from sutro_providers.opper import AsyncOpperClient, OpperClient
from tests.opper.opper_harness import Blocking, MakeClient, OpperServer

API_KEY = "op-test-key-0123456789"


@pytest.fixture(scope="session")
def opper_server() -> Iterator[OpperServer]:
    emulator = OpperEmulator(api_key=API_KEY)
    app = FastAPI()
    router = create_opper_router(API_KEY, emulator)
    app.include_router(router)
    app.include_router(router, prefix="/opper")  # as when mounted into another server
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the Opper emulator did not start")
        time.sleep(0.01)
    yield OpperServer(f"http://127.0.0.1:{port}", API_KEY, emulator)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def opper(opper_server: OpperServer) -> Iterator[OpperServer]:
    """The session server with fresh state for each test."""
    opper_server.emulator.reset()
    yield opper_server
    opper_server.emulator.reset()


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest, opper: OpperServer) -> Iterator[MakeClient]:
    """``make_client(**config)``: an OpperClient, or an AsyncOpperClient behind a
    blocking proxy, pointed at the emulator (``base_url``/``api_key`` overridable)."""
    loop = asyncio.new_event_loop()
    opened: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("base_url", opper.url)
        kwargs.setdefault("api_key", opper.api_key)
        kwargs.setdefault("retry", RetryPolicy(initial_backoff=0.01, max_backoff=0.05))
        if request.param == "sync":
            client: Any = OpperClient(**kwargs)
            opened.append(client.close)
            return client
        aclient = AsyncOpperClient(**kwargs)
        opened.append(lambda: loop.run_until_complete(aclient.aclose()))
        return Blocking(aclient, loop)

    yield make
    for close in opened:
        close()
    loop.close()
