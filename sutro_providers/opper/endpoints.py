"""Sans-IO Opper endpoint table, built on the same :class:`~sutro_providers.client.endpoints.Call`
as the Sutro client so both transports share reply handling and retries.

Function calls and span creation are not idempotent (calls are billed), so they
are built with ``retryable=False``; span reads and updates are retryable.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from sutro_providers.client.endpoints import Call, build
from sutro_providers.errors import SutroValidationError
from sutro_providers.opper.models import (
    OpperCallResult,
    RevisionCallResult,
    Span,
    SpanCreate,
    SpanUpdate,
    V2CallRequest,
    V2NamedCallRequest,
    V2Revision,
    V3CallRequest,
    check_uuid,
    unwrap_data,
)

Schema = dict[str, Any] | type[BaseModel]


def _seg(value: str) -> str:
    return quote(value, safe="")


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline local ``#/$defs/...`` references (as the Opper SDK does) and drop ``$defs``."""
    defs = schema.get("$defs") or schema.get("definitions") or {}

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
            name = ref.rsplit("/", 1)[-1]
            if name in seen or name not in defs:
                raise ValueError(f"cannot inline schema reference {ref!r}")
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return {**walk(defs[name], (*seen, name)), **walk(extra, seen)}
        return {k: walk(v, seen) for k, v in node.items() if k not in ("$defs", "definitions")}

    return walk(schema, ())


def as_schema(schema: Schema | None) -> dict[str, Any] | None:
    """A JSON Schema dict from a dict or a pydantic model class, refs inlined."""
    if schema is None:
        return None
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        schema = schema.model_json_schema()
    return inline_refs(dict(schema))


def _input_value(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _named(name: str, input_schema: Schema | None, output_schema: Schema | None) -> tuple[Any, Any]:
    """The (input, output) JSON Schemas of a call by name, once the name is checked."""
    if not name or not name.strip():
        raise build_error("function name is empty")
    try:
        return as_schema(input_schema), as_schema(output_schema)
    except ValueError as exc:
        raise build_error(str(exc)) from None


def _function_call(endpoint: str, path: str, parse: Any, body: Any, timeout: float | None) -> Call[Any]:
    """A paid function call: POSTed once, never retried automatically."""
    return Call(endpoint, "POST", path, parse, json=body.to_body(), retryable=False, read_timeout=timeout,
                runs_function=True)


def call(
    name: str,
    input: Any,
    input_schema: Schema | None = None,
    output_schema: Schema | None = None,
    instructions: str | None = None,
    model: Any = None,
    parent_span_id: str | None = None,
    timeout: float | None = None,
) -> Call[OpperCallResult]:
    """v3 call by name: ``POST /v3/functions/{name}/call``; never retried automatically.
    ``input`` may be a pydantic model; schemas may be model classes. ``timeout``
    (seconds) defaults to ``timeouts.function_read``."""
    schemas = _named(name, input_schema, output_schema)
    body = build(
        V3CallRequest,
        input=_input_value(input),
        input_schema=schemas[0],
        output_schema=schemas[1],
        instructions=instructions,
        model=model,
        parent_span_id=parent_span_id,
    )
    return _function_call("opper-call", f"v3/functions/{_seg(name)}/call", OpperCallResult.model_validate, body, timeout)


def call_revision(
    function_id: str,
    revision_id: str,
    input: Any,
    examples: list[dict[str, Any]] | None = None,
    tags: dict[str, str] | None = None,
    parent_span_id: str | None = None,
    timeout: float | None = None,
) -> Call[RevisionCallResult]:
    """v2 call of one function revision: ``POST /v2/functions/{function_id}/call/{revision_id}``
    (both ids are UUIDs); never retried. ``timeout`` as for :func:`call`."""
    try:
        fid, rid = check_uuid(function_id, "function_id"), check_uuid(revision_id, "revision_id")
    except ValueError as exc:
        raise build_error(str(exc)) from None
    body = build(
        V2CallRequest, input=_input_value(input), examples=examples, tags=tags, parent_span_id=parent_span_id
    )
    return _function_call("opper-call-revision", f"v2/functions/{fid}/call/{rid}", RevisionCallResult.model_validate,
                          body, timeout)


def call_by_name(
    name: str,
    input: Any,
    *,
    instructions: str | None = None,
    input_schema: Schema | None = None,
    output_schema: Schema | None = None,
    model: Any = None,
    examples: list[dict[str, Any]] | None = None,
    tags: dict[str, str] | None = None,
    parent_span_id: str | None = None,
    timeout: float | None = None,
) -> Call[RevisionCallResult]:
    """v2 call by name: ``POST /v2/call``, creating the function when it does not exist
    (``instructions``, schemas and ``model`` override the stored configuration), with
    few-shot ``examples`` and ``tags``; the flat v2 reply. Never retried automatically.
    ``timeout`` as for :func:`call`."""
    schemas = _named(name, input_schema, output_schema)
    body = build(
        V2NamedCallRequest,
        name=name,
        input=_input_value(input),
        instructions=instructions,
        input_schema=schemas[0],
        output_schema=schemas[1],
        model=model,
        examples=examples,
        tags=tags,
        parent_span_id=parent_span_id,
    )
    return _function_call("opper-call-by-name", "v2/call", RevisionCallResult.model_validate, body, timeout)


def get_revision(function_id: str, revision_id: str) -> Call[V2Revision]:
    """``GET /v2/functions/{function_id}/revisions/{revision_id}`` (UUIDs): one
    revision's configuration (its ``model_name`` names the model billed)."""
    try:
        fid, rid = check_uuid(function_id, "function_id"), check_uuid(revision_id, "revision_id")
    except ValueError as exc:
        raise build_error(str(exc)) from None
    return Call("opper-revision", "GET", f"v2/functions/{fid}/revisions/{rid}", V2Revision.model_validate)


def _functions(payload: Any) -> list[dict[str, Any]]:
    return list((payload or {}).get("functions") or [])


def list_functions() -> Call[list[dict[str, Any]]]:
    """``GET /v3/functions``: the v3 functions (name, schema_hash, hit_count...); a
    cheap authenticated read."""
    return Call("opper-functions", "GET", "v3/functions", _functions)


def _span(payload: Any) -> Span:
    return Span.model_validate(unwrap_data(payload))


def create_span(name: str, **fields: Any) -> Call[Span]:
    """``POST /v3/spans``; not idempotent, so not retried."""
    body = build(SpanCreate, name=name, **fields)
    return Call("opper-span-create", "POST", "v3/spans", _span, json=body.to_body(), retryable=False)


def get_span(span_id: str) -> Call[Span]:
    return Call("opper-span", "GET", f"v3/spans/{_seg(span_id)}", _span)


def update_span(span_id: str, **fields: Any) -> Call[Span]:
    """``PATCH /v3/spans/{id}``: idempotent (it sets values), so retried like a read."""
    body = build(SpanUpdate, **fields)
    return Call("opper-span-update", "PATCH", f"v3/spans/{_seg(span_id)}", _span, json=body.to_body())


def build_error(message: str) -> SutroValidationError:
    return SutroValidationError(f"invalid Opper request: {message}")
