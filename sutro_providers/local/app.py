"""The FastAPI application: wiring, auth, request accounting and fault hooks.

``create_app(settings)`` returns a ready ASGI app; the job runner starts and
stops with the app's lifespan. Every Sutro route lives under ``/v1`` and needs
``Authorization: Key <key>``; ``/_admin/*`` needs the same key; pre-signed
artifact URLs (``/_presigned/*``) need none. Responses are never compressed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.types import Message, Receive, Scope, Send

from sutro_providers.function_spec import load_function_specs
from sutro_providers.local import admin, routes_functions, routes_jobs, routes_results
from sutro_providers.local.engine import InferenceEngine, load_engine
from sutro_providers.local.errors import install_error_handlers, json_error
from sutro_providers.local.faults import REQUEST_KINDS, FaultRegistry, FaultRule
from sutro_providers.local.jobs import JobManager
from sutro_providers.local.opper_routes import create_opper_router
from sutro_providers.local.presign import Presigner
from sutro_providers.local.settings import ServerSettings
from sutro_providers.local.state import LocalState, require_key
from sutro_providers.local.store import JobStore

log = logging.getLogger("sutro_providers.local")


def route_name(path: str, method: str) -> str:
    """The fault/stats name of a request path (see ``faults`` for the list)."""
    if path.startswith("/_admin"):
        return "admin"
    if path.startswith("/_presigned/"):
        return "presigned"
    if path.rstrip("/") == "/functions/run":
        return "functions-run"
    if not path.startswith("/v1/"):
        return "other"
    parts = path[4:].strip("/").split("/")
    head = parts[0]
    if head == "jobs":
        return "results-url" if parts[-1] == "results-url" and len(parts) == 3 else "jobs"
    if head == "functions":
        return "functions-run" if parts[-1] == "run" and len(parts) == 3 else "functions"
    if head == "auth":
        return "auth-check"
    return head


def _abort_connection(send: Send) -> bool:
    """Close the client socket without an answer (uvicorn's transport)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.abort()
    return True


RawRoute = Callable[[LocalState, str, Scope, Receive, Send], Awaitable[None]]
_RUN_PATH = re.compile(r"/v1/functions/([^/]+)/run")


class LocalSutroApp(FastAPI):
    """FastAPI with a raw-ASGI front door for request counting and faults.

    ``POST /v1/functions/{name}/run`` (the real-time hot path) is answered by
    :attr:`run_route` without FastAPI's routing, dependency solving and middleware
    stack, with the same checks, bodies and errors (bench B6).
    """

    run_route: RawRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: LocalState | None = getattr(self.state, "local", None)
        if scope["type"] != "http" or state is None:
            await super().__call__(scope, receive, send)
            return
        method = scope["method"]
        endpoint = route_name(scope["path"], method)
        state.count(endpoint)
        log.debug("%s %s", method, endpoint)  # never the query string (signed URLs)
        if endpoint in ("admin", "other"):
            await super().__call__(scope, receive, send)
            return
        app = self._dispatch(state, scope)
        if delay := state.faults.latency_ms(endpoint, method):
            await asyncio.sleep(delay / 1000)
        await state.faults.hold(endpoint, method)
        rule = state.faults.take(REQUEST_KINDS, endpoint, method, phase="before")
        if rule is None:
            rule = state.faults.take(REQUEST_KINDS, endpoint, method, phase="after")
            if rule is None:
                await app(scope, receive, send)
                return

            async def swallow(_: Message) -> None:
                return None

            await app(scope, receive, swallow)
        await self._inject(rule, endpoint, send)

    def _dispatch(self, state: LocalState, scope: Scope) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """The raw run route for ``POST /v1/functions/{name}/run``, FastAPI for the rest."""
        run_route = self.run_route
        if run_route is None or scope["method"] != "POST" or not (match := _RUN_PATH.fullmatch(scope["path"])):
            return super().__call__
        name = match[1]
        return lambda scope, receive, send: run_route(state, name, scope, receive, send)

    @staticmethod
    async def _inject(rule: FaultRule, endpoint: str, send: Send) -> None:
        if rule.kind == "drop_connection":
            if _abort_connection(send):
                for _ in range(3):  # let the transport report the loss before uvicorn reacts
                    await asyncio.sleep(0)
                return
            raise RuntimeError("injected drop_connection (no transport to abort)")
        headers = {"Retry-After": f"{rule.retry_after:g}"} if rule.retry_after is not None else None
        response = json_error(rule.status, "injected_fault", f"Injected {rule.status} on {endpoint}", headers)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(settings: ServerSettings, engine: InferenceEngine | None = None) -> FastAPI:
    """Build the app; jobs start running when the app's lifespan starts."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    functions = load_function_specs(settings.functions_dir) if settings.functions_dir else {}
    store = JobStore(settings.data_dir)
    faults = FaultRegistry()
    faults.set(settings.fault_rules)
    engine = engine or load_engine(settings.engine)
    manager = JobManager(settings, store, functions, engine, faults)
    state = LocalState(settings, store, functions, engine, faults, manager, Presigner(settings.data_dir))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        manager.start()
        log.info("local Sutro server ready: %d Function(s), data dir %s", len(functions), settings.data_dir)
        try:
            yield
        finally:
            await asyncio.to_thread(manager.shutdown)
            store.close()

    app = LocalSutroApp(
        title="sutro-local",
        description="Local Sutro-compatible batch-LLM server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/_admin/openapi.json",
    )
    app.state.local = state
    install_error_handlers(app)

    app.run_route = routes_functions.serve_run
    auth: Any = [Depends(require_key)]
    app.include_router(routes_jobs.router, prefix="/v1", dependencies=auth)
    app.include_router(routes_results.router, prefix="/v1", dependencies=auth)
    app.include_router(routes_functions.router, prefix="/v1", dependencies=auth)
    app.include_router(routes_functions.legacy_router, dependencies=auth)
    app.include_router(admin.router, prefix="/_admin", dependencies=auth)
    app.include_router(routes_results.presigned_router)
    # The Opper emulator (/v2, /v3) checks its own ``Authorization: Bearer <key>``.
    app.include_router(create_opper_router(api_key=settings.api_key))
    return app
