"""A local Opper emulator as a FastAPI :class:`APIRouter` (opper-api.md §6).

Mount it into any FastAPI app::

    from sutro_providers.local.opper_routes import create_opper_router
    app.include_router(create_opper_router(api_key="op-local"))              # at the root
    app.include_router(create_opper_router(api_key="op-local"), prefix="/opper")

and point the client at it (``OPPER_BASE_URL=http://127.0.0.1:PORT[/opper]``). Or run
it alone with :func:`create_opper_app`. Routes:

* ``POST /v3/functions/{name}/call``: validates ``input`` against ``input_schema``
  (400 ``invalid_input``), answers ``{"data", "meta"}`` with ``data`` fitting
  ``output_schema`` (a string without one);
* ``POST /v2/functions/{fid}/call/{rid}``, ``POST /v2/functions/{fid}/call``,
  ``POST /v2/call`` (get-or-create by name), ``POST|GET /v2/functions``,
  ``GET /v2/functions/{fid}/revisions/{rid}``: flat v2 replies, result cache;
* v3 function management, examples and ``/stream`` (see
  :mod:`sutro_providers.local.opper_functions`);
* ``POST|GET|PATCH|DELETE /v3/spans[/{id}]``, ``GET /v3/traces/{id}``;
* ``/_opper/faults`` (POST rules, DELETE), ``/_opper/stats``, ``/_opper/calls``
  (every answered call with its tags and parent span), ``/_opper/reset``
  (test controls, no auth).

Every call reply says ``cached`` (v2 top level, v3 ``meta.cached``): true when
the same input reached the same function before (the answer is the same either way).

Every route but ``/_opper/*`` needs ``Authorization: Bearer <api_key>``; every
error is ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sutro_providers.local.faults import REQUEST_KINDS, FaultRule
from sutro_providers.local.opper_fake import OpperEmulator, model_name
from sutro_providers.local.opper_functions import add_function_routes, guarded_routes
from sutro_providers.local.opper_registry import OpperAPIError

__all__ = ["create_opper_app", "create_opper_router"]

_V2_FIELDS = {"instructions", "input_schema", "output_schema", "description"}


def _error(exc: OpperAPIError) -> JSONResponse:
    headers = {"Retry-After": f"{exc.retry_after:g}"} if exc.retry_after is not None else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _abort(request: Request) -> None:
    """Close the client socket without an answer (fault ``drop_connection``), using
    uvicorn's transport behind ``receive``; a 502 error where that is not reachable."""
    transport = getattr(getattr(request.receive, "__self__", None), "transport", None)
    if transport is None:
        raise OpperAPIError(502, "injected_fault", "injected drop_connection (no transport to abort)")
    transport.abort()
    for _ in range(3):  # let the transport report the loss before the reply is attempted
        await asyncio.sleep(0)


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise OpperAPIError(400, "invalid_json", "the request body is not valid JSON") from None


async def _body(request: Request) -> dict[str, Any]:
    body = await _json(request)
    if not isinstance(body, dict):
        raise OpperAPIError(400, "invalid_request", "the request body must be a JSON object")
    return body


def _require_name(body: dict[str, Any]) -> str:
    if not isinstance(body.get("name"), str) or not body["name"]:
        raise OpperAPIError(400, "invalid_request", "name is required")
    return str(body["name"])


def _v2_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = {k: body[k] for k in _V2_FIELDS if body.get(k) is not None}
    if body.get("model") is not None:
        fields["model"] = model_name(body["model"])
    ttl = (body.get("configuration") or {}).get("invocation.cache.ttl")
    if ttl is not None:
        fields["cache_ttl"] = float(ttl)
    return fields


async def _inject(request: Request, rule: FaultRule) -> Response:
    if rule.kind == "drop_connection":
        await _abort(request)
        return Response(status_code=500)  # never reaches the client
    raise OpperAPIError(rule.status, "injected_fault", rule.message or f"injected HTTP {rule.status}",
                        retry_after=rule.retry_after)


def create_opper_router(api_key: str, emulator: OpperEmulator | None = None) -> APIRouter:
    """The emulator routes, checking ``Bearer <api_key>``. Pass ``emulator`` to share
    or inspect the state (it is also at ``router.emulator``)."""
    if not api_key:
        raise ValueError("an API key is required")
    state = emulator or OpperEmulator(api_key=api_key)
    router = APIRouter()

    async def guarded(request: Request, endpoint: str, handler: Any) -> Response:
        state.stats[endpoint] += 1
        try:
            delay = state.faults.latency_ms(endpoint, request.method)
            if delay:
                await asyncio.sleep(delay / 1000)
            sent = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(sent, f"Bearer {state.api_key}".encode()):
                raise OpperAPIError(401, "unauthorized", "missing or invalid API key")
            rule = state.faults.take(REQUEST_KINDS, endpoint, request.method, phase="before")
            if rule is not None:
                return await _inject(request, rule)
            result = await handler()
            state.stats[f"{endpoint}:ok"] += 1
            rule = state.faults.take(REQUEST_KINDS, endpoint, request.method, phase="after")
            if rule is not None:
                return await _inject(request, rule)
        except OpperAPIError as exc:
            return _error(exc)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result)

    route = guarded_routes(router, guarded)

    @route("POST", "/v3/functions/{name:path}/call", "opper-call")
    async def v3_call(request: Request, name: str) -> Any:
        body = await _body(request)
        if "input" not in body:
            raise OpperAPIError(400, "invalid_request", "input is required")
        return state.call_v3(name, body)

    add_function_routes(router, state, guarded, _body, _json)

    @route("POST", "/v2/functions/{function_id}/call/{revision_id}", "opper-call-revision")
    @route("POST", "/v2/functions/{function_id}/call", "opper-call-revision")
    async def v2_call(request: Request, function_id: str, revision_id: str | None = None) -> Any:
        return state.call_v2(state.revision(function_id, revision_id), await _body(request))

    @route("POST", "/v2/call", "opper-call-revision")
    async def v2_call_by_name(request: Request) -> Any:
        body = await _body(request)
        _require_name(body)
        fields = _v2_fields(body)
        current = next((r for r in state.revisions.values() if r.name == body["name"]
                        and state.latest.get(r.function_id) == r.revision_id), None)
        if current is None or any(getattr(current, k) != v for k, v in fields.items()):
            current = state.register_function(body["name"], **fields)
        return state.call_v2(current, body)

    @route("POST", "/v2/functions", "opper-functions")
    async def v2_create_function(request: Request) -> Any:
        body = await _body(request)
        _require_name(body)
        return state.register_function(body["name"], **_v2_fields(body)).record()

    @route("GET", "/v2/functions", "opper-functions")
    async def v2_list_functions(request: Request) -> Any:
        data = state.functions()
        return {"meta": {"total_count": len(data)}, "data": data}

    @route("GET", "/v2/functions/{function_id}/revisions/{revision_id}", "opper-functions")
    async def v2_get_revision(request: Request, function_id: str, revision_id: str) -> Any:
        return state.revision(function_id, revision_id).record()

    @route("POST", "/v3/spans", "opper-spans")
    async def create_span(request: Request) -> Any:
        body = await _body(request)
        _require_name(body)
        return {"data": state.create_span(body)}

    @route("GET", "/v3/spans/{span_id}", "opper-spans")
    async def get_span(request: Request, span_id: str) -> Any:
        return {"data": state.get_span(span_id)}

    @route("PATCH", "/v3/spans/{span_id}", "opper-spans")
    async def update_span(request: Request, span_id: str) -> Any:
        return state.update_span(span_id, await _body(request))

    @route("DELETE", "/v3/spans/{span_id}", "opper-spans")
    async def delete_span(request: Request, span_id: str) -> Any:
        state.delete_span(span_id)

    @route("GET", "/v3/traces/{trace_id}", "opper-traces")
    async def get_trace(request: Request, trace_id: str) -> Any:
        return state.trace(trace_id)

    @router.post("/_opper/faults")
    async def set_faults(request: Request) -> Response:
        payload = json.loads(await request.body() or b"[]")
        rules = payload.get("rules", []) if isinstance(payload, dict) else payload
        return JSONResponse({"rules": [r.public() for r in state.faults.set(rules)]})

    @router.delete("/_opper/faults")
    async def clear_faults() -> Response:
        state.faults.clear()
        return Response(status_code=204)

    @router.get("/_opper/stats")
    async def stats() -> Response:
        return JSONResponse({"requests": dict(state.stats), "spans": len(state.spans), "calls": len(state.calls)})

    @router.get("/_opper/calls")
    async def calls() -> Response:
        """Every answered call in order: api, name, input, tags, parent_span_id,
        examples (count), cached, span_id (what the tests count and check)."""
        return JSONResponse({"calls": list(state.calls)})

    @router.post("/_opper/reset")
    async def reset() -> Response:
        state.reset()
        return Response(status_code=204)

    @router.api_route("/v2/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    @router.api_route("/v3/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def unknown(rest: str, request: Request) -> Response:
        async def run() -> Any:
            raise OpperAPIError(404, "not_found", f"no route {request.method} {request.url.path}")

        return await guarded(request, "opper-unknown", run)

    router.emulator = state  # type: ignore[attr-defined]
    return router


def create_opper_app(api_key: str, emulator: OpperEmulator | None = None) -> FastAPI:
    """A standalone app serving only the Opper emulator."""
    app = FastAPI(title="Local Opper emulator", docs_url=None, redoc_url=None, openapi_url=None)
    router = create_opper_router(api_key, emulator)
    app.include_router(router)
    app.state.opper = router.emulator  # type: ignore[attr-defined]
    return app
