"""v3 function management, examples and streaming calls of the local Opper
emulator (opper-api.md §4.1-§4.2), added to the router of
:func:`sutro_providers.local.opper_routes.create_opper_router`.

Routes (names may hold ``/``, sent percent-encoded as ``%2F``):

* ``GET /v3/functions``, ``GET|PUT|DELETE /v3/functions/{name}``;
* ``GET /v3/functions/{name}/revisions[/{id}]``, ``POST .../revisions/{id}/revert``
  (v3 revision ids are integers);
* ``POST /v3/functions/{name}/examples``, ``POST .../examples/batch``,
  ``GET .../examples?limit&offset&tag``, ``DELETE .../examples/{uuid}``;
* ``POST /v3/functions/{name}/stream``: SSE ``content`` deltas of the answer, a
  ``done`` event with usage, ``event: complete`` with ``{data, meta}``, ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from sutro_providers.local.opper_fake import OpperEmulator
from sutro_providers.local.opper_registry import OpperAPIError

Guarded = Callable[[Request, str, Callable[[], Awaitable[Any]]], Awaitable[Response]]
Body = Callable[[Request], Awaitable[Any]]
Handler = Callable[..., Awaitable[Any]]
Route = Callable[[str, str, str], Callable[[Handler], Handler]]


def guarded_routes(router: APIRouter, guarded: Guarded) -> Route:
    """``@route(method, path, endpoint)`` over ``async def handler(request, **path_params)``:
    registered on ``router`` in definition order, run through ``guarded`` (key check,
    faults, per-endpoint stats); the handler's value is the JSON reply (``None``: 204)."""
    def route(method: str, path: str, endpoint: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def run(request: Request) -> Response:
                return await guarded(request, endpoint, lambda: handler(request, **request.path_params))

            router.add_api_route(path, run, methods=[method], name=handler.__name__)
            return handler
        return register
    return route

STREAM_PIECE = 16


def _int(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise OpperAPIError(400, "invalid_request", f"{what} must be an integer") from None
    if number < 0:
        raise OpperAPIError(400, "invalid_request", f"{what} must not be negative")
    return number


def _sse(reply: dict[str, Any]) -> AsyncIterator[bytes]:
    async def events() -> AsyncIterator[bytes]:
        data = reply["data"]
        text = data if isinstance(data, str) else json.dumps(data)
        for start in range(0, len(text), STREAM_PIECE):
            yield f"data: {json.dumps({'type': 'content', 'delta': text[start:start + STREAM_PIECE]})}\n\n".encode()
        yield f"data: {json.dumps({'type': 'done', 'usage': reply['meta']['usage']})}\n\n".encode()
        yield f"event: complete\ndata: {json.dumps(reply)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return events()


def add_function_routes(router: APIRouter, state: OpperEmulator, guarded: Guarded, body: Body,
                        json_body: Body) -> None:
    """Register the routes above on ``router`` (before its catch-all 404 route).
    ``body`` reads a JSON object, ``json_body`` any JSON value (the batch array)."""
    registry = state.registry
    endpoint = "opper-functions"
    route = guarded_routes(router, guarded)

    @route("GET", "/v3/functions", endpoint)
    async def list_functions(request: Request) -> Any:
        return registry.list()

    @router.post("/v3/functions/{name:path}/stream")
    async def stream(name: str, request: Request) -> Response:
        async def run() -> Any:
            payload = await body(request)
            if "input" not in payload:
                raise OpperAPIError(400, "invalid_request", "input is required")
            return state.call_v3(name, payload)

        answered = await guarded(request, "opper-call", run)
        if answered.status_code != 200:
            return answered
        reply = json.loads(bytes(answered.body))
        return StreamingResponse(_sse(reply), media_type="text/event-stream")

    @route("POST", "/v3/functions/{name:path}/revisions/{revision_id}/revert", endpoint)
    async def revert(request: Request, name: str, revision_id: str) -> Any:
        return registry.revert(name, revision_id)

    @route("GET", "/v3/functions/{name:path}/revisions/{revision_id}", endpoint)
    async def get_revision(request: Request, name: str, revision_id: str) -> Any:
        return registry.revision(name, revision_id)

    @route("GET", "/v3/functions/{name:path}/revisions", endpoint)
    async def list_revisions(request: Request, name: str) -> Any:
        return registry.revisions(name)

    @route("POST", "/v3/functions/{name:path}/examples/batch", "opper-examples")
    async def add_examples(request: Request, name: str) -> Any:
        return registry.add_examples(name, await json_body(request))

    @route("DELETE", "/v3/functions/{name:path}/examples/{example_id}", "opper-examples")
    async def delete_example(request: Request, name: str, example_id: str) -> Any:
        registry.delete_example(name, example_id)

    @route("POST", "/v3/functions/{name:path}/examples", "opper-examples")
    async def add_example(request: Request, name: str) -> Any:
        return registry.add_example(name, await body(request))

    @route("GET", "/v3/functions/{name:path}/examples", "opper-examples")
    async def list_examples(request: Request, name: str) -> Any:
        query = request.query_params
        return registry.list_examples(name, _int(query.get("limit"), "limit"), _int(query.get("offset"), "offset"),
                                      query.get("tag"))

    @route("GET", "/v3/functions/{name:path}", endpoint)
    async def get_function(request: Request, name: str) -> Any:
        return registry.get(name)

    @route("PUT", "/v3/functions/{name:path}", endpoint)
    async def put_function(request: Request, name: str) -> Any:
        return registry.put_source(name, (await body(request)).get("source"))

    @route("DELETE", "/v3/functions/{name:path}", endpoint)
    async def delete_function(request: Request, name: str) -> Any:
        registry.delete(name)
