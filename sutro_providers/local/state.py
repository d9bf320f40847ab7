"""What the routes of the local server share: its state and the request dependencies.

:class:`LocalState` is built by :func:`sutro_providers.local.app.create_app` and hung
on ``app.state.local``; a route takes it as a ``state: State`` parameter. Auth is
``Authorization: Key <key>`` (:func:`require_key`, :func:`check_key`). The routes and
the app import this module; it imports neither, so the imports go one way:
``app -> routes_* / admin -> state``.
"""

from __future__ import annotations

import hmac
from collections import Counter
from dataclasses import dataclass, field
from threading import Lock
from typing import Annotated

from fastapi import Depends, Request

from sutro_providers.function_spec import FunctionSpec
from sutro_providers.local.engine import InferenceEngine
from sutro_providers.local.errors import ApiError
from sutro_providers.local.faults import FaultRegistry
from sutro_providers.local.jobs import JobManager
from sutro_providers.local.presign import Presigner
from sutro_providers.local.settings import ServerSettings
from sutro_providers.local.store import JobStore


@dataclass
class LocalState:
    """Everything the routes share (``request.app.state.local``)."""

    settings: ServerSettings
    store: JobStore
    functions: dict[str, FunctionSpec]
    engine: InferenceEngine
    faults: FaultRegistry
    manager: JobManager
    presigner: Presigner
    requests: Counter[str] = field(default_factory=Counter)
    lock: Lock = field(default_factory=Lock)

    def count(self, endpoint: str) -> None:
        with self.lock:
            self.requests[endpoint] += 1


def get_state(request: Request) -> LocalState:
    """The server state of a request."""
    state: LocalState = request.app.state.local
    return state


async def _state_dependency(request: Request) -> LocalState:
    # ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    # hop per request for a single attribute lookup.
    return get_state(request)


State = Annotated[LocalState, Depends(_state_dependency)]
"""Route parameter type: the server state (``state: State``)."""


async def require_key(request: Request) -> None:
    """FastAPI dependency: ``Authorization: Key <key>`` must carry the server key
    (``async`` so that it runs on the loop, not in the thread pool)."""
    check_key(get_state(request).settings.api_key, request.headers.get("authorization", ""))


def check_key(expected: str, authorization: str) -> None:
    """401 unless the ``Authorization`` header value is ``Key <expected>``."""
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "key" or not hmac.compare_digest(key.strip().encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "Missing or invalid API key (send 'Authorization: Key <api key>')",
            headers={"WWW-Authenticate": "Key"},
        )
