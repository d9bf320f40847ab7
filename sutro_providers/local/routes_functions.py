"""Function routes: the local registry (an extension) and real-time runs.

``POST /v1/functions/{name}/run`` takes ``{"input": {...} | "text",
"confidence_scoring"?: bool}``. Every declared field must be present unless
it is optional, unknown fields are rejected (422 naming the field), and a
bare string is accepted only when the Function has exactly one required
input and it is a string. The answer for a row is exactly what a batch job
with that row would produce.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from sutro_providers.function_spec import FieldType, FunctionSpec
from sutro_providers.local.engine import DeterministicEngine, EngineRequest, InferenceEngine
from sutro_providers.local.engine_row import RowOutput, run_row
from sutro_providers.local.errors import (
    ApiError,
    api_error_response,
    new_request_id,
    unexpected_error_response,
)
from sutro_providers.local.inputs import parse_body
from sutro_providers.local.models import cost_usd
from sutro_providers.local.render import is_missing, render_object_row
from sutro_providers.local.state import LocalState, State, check_key

router = APIRouter()
legacy_router = APIRouter()


def _spec(state: LocalState, name: str) -> FunctionSpec:
    spec = state.functions.get(name)
    if spec is None:
        raise ApiError(404, "function_not_found", f"No published Function named {name!r}")
    return spec


@router.get("/functions")
def list_functions(state: State) -> dict[str, Any]:
    """Local extension: every published spec."""
    return {"functions": [s.model_dump(mode="json") for s in state.functions.values()]}


@router.get("/functions/{name}")
def get_function(name: str, state: State) -> dict[str, Any]:
    return {"function": _spec(state, name).model_dump(mode="json")}


def _invalid(detail: str) -> ApiError:
    return ApiError(422, "invalid_input", detail)


def validate_run_input(spec: FunctionSpec, value: Any) -> dict[str, Any]:
    """The input as an object row, or 422 naming the offending field."""
    if isinstance(value, str):
        required = spec.required_inputs
        if len(required) != 1 or required[0].type != FieldType.STRING:
            names = ", ".join(f.name for f in required)
            raise _invalid(f"input: a bare string needs a Function with exactly one required text input; {spec.name} requires: {names}")
        return {required[0].name: value}
    if not isinstance(value, dict):
        raise _invalid("input: must be an object of the Function's input fields (or a bare string)")
    unknown = [k for k in value if k not in spec.input_names]
    if unknown:
        raise _invalid(f"input.{unknown[0]}: unknown field (declared: {', '.join(spec.input_names)})")
    for field in spec.required_inputs:
        if is_missing(value.get(field.name)):
            raise _invalid(f"input.{field.name}: required field is missing or null")
    return value


def _has_one_row_path(engine: InferenceEngine) -> bool:
    """Whether ``engine`` is the built-in one (not a subclass): its answer for one row
    comes from the plain-Python path, cheap enough to run on the event loop."""
    return type(engine) is DeterministicEngine


def infer_row(engine: InferenceEngine, spec: FunctionSpec, prompt: str) -> RowOutput:
    """One prompt through the server's engine. The built-in engine takes its plain-Python
    one-row path (bit-identical to a batch row, ~20x cheaper than a 1-row vectorised
    call); any other engine gets a 1-element batch."""
    if _has_one_row_path(engine):
        return run_row(spec, prompt)
    out = engine.infer(EngineRequest(model=spec.name, function=spec), pa.array([prompt]))
    confidence = out.confidence[0].as_py() if out.confidence is not None else None
    probs = out.label_probs[0].tolist() if out.label_probs is not None else None
    return RowOutput(out.outputs[0].as_py(), int(out.input_tokens[0].as_py()), int(out.output_tokens[0].as_py()),
                     confidence, probs)


def run_function(state: LocalState, spec: FunctionSpec, row: dict[str, Any], scoring: bool) -> dict[str, Any]:
    """One real-time run (same prompt and engine answer as a batch row)."""
    result = infer_row(state.engine, spec, render_object_row(row, spec.input_names))
    output = json.loads(result.output)
    tokens_in, tokens_out = result.input_tokens, result.output_tokens
    prices = (spec.price_per_million_input_tokens, spec.price_per_million_output_tokens)
    confidence = float(result.confidence) if scoring and result.confidence is not None else None
    reply: dict[str, Any] = {
        "output": output,
        "confidence": confidence,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out, "estimated_cost_usd": cost_usd(tokens_in, tokens_out, prices)},
        "request_id": new_request_id(),
        "function": {"name": spec.name, "model": spec.default_model, "model_source": "local"},
    }
    if spec.kind == "classification" and result.label_probs is not None:
        ranked = sorted(zip(spec.labels or [], result.label_probs, strict=True), key=lambda p: -p[1])
        reply["response"] = output["label"]
        reply["predictions"] = [{"label": label, "confidence": float(p)} for label, p in ranked]
        reply["rationale"] = output.get("rationale", "")
    return reply


async def _run(state: LocalState, name: str, body: dict[str, Any], input_key: str) -> JSONResponse:
    spec = _spec(state, name)
    if input_key not in body:
        raise _invalid(f"{input_key}: field required")
    scoring = body.get("confidence_scoring", True)
    if scoring is None:
        scoring = True
    if not isinstance(scoring, bool):
        raise _invalid("confidence_scoring: must be a boolean")
    row = validate_run_input(spec, body[input_key])
    # The built-in engine answers one row in under a millisecond of CPU: run it on the
    # loop (a thread-pool hop costs more than that, bench B6); a pluggable engine may
    # be slow and runs in the thread pool. A ready JSONResponse skips FastAPI's encoding.
    if _has_one_row_path(state.engine):
        return JSONResponse(run_function(state, spec, row, scoring))
    return JSONResponse(await run_in_threadpool(run_function, state, spec, row, scoring))


@router.post("/functions/{name}/run")
async def run(name: str, request: Request, state: State) -> JSONResponse:
    """Run a Function on one input and answer at once."""
    return await _run(state, name, parse_body(await request.body()), "input")


async def serve_run(state: LocalState, name: str, scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/functions/{name}/run`` as a raw ASGI handler (``LocalSutroApp`` sends
    it here): the route above minus FastAPI's routing, dependency solving and middleware,
    ~0.3 ms of server CPU per call (bench B6). Same order of checks (key, JSON body,
    Function, input) and the same answers and error bodies."""
    request = Request(scope, receive)
    try:
        check_key(state.settings.api_key, request.headers.get("authorization", ""))
        response = await run(name, request, state)
    except ClientDisconnect:
        return  # the client went away: nobody to answer
    except ApiError as exc:
        response = api_error_response(exc)
    except Exception as exc:  # the same 500 as the app's catch-all handler
        response = unexpected_error_response(exc)
    await response(scope, receive, send)


@legacy_router.post("/functions/run")
async def legacy_run(request: Request, state: State) -> JSONResponse:
    """Legacy alias: ``{"name", "input_data"}``."""
    body = parse_body(await request.body())
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise _invalid("name: field required")
    return await _run(state, name, body, "input_data")
