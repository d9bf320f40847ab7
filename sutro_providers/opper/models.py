"""Pydantic v2 models for the Opper function-call API (v2 revision calls, v3 calls
by name, spans). See ``opper-api.md`` §3-§4.

Responses are parsed tolerantly (unknown keys kept); requests are strict and are
validated client-side before anything is sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator

from sutro_providers.client.wire import WireRequest, WireResponse

M = TypeVar("M", bound=BaseModel)


class _Request(WireRequest):
    """An Opper request body (strict, see :mod:`sutro_providers.client.wire`)."""

    def to_body(self) -> dict[str, Any]:
        """Only the fields that are set (``input`` always), as the Opper SDK sends."""
        body = self.model_dump(mode="json", exclude_none=True)
        if "input" in type(self).model_fields:
            body["input"] = self.model_dump(mode="json")["input"]
        return body


def _uuid_text(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{what} must be a UUID (v2 ids are UUIDs; v3 revision ids are integers)") from None


# ----------------------------------------------------------------------- v3


class ModelOptions(_Request):
    """A model with provider options: ``{"name", "options", "extra_headers"}``."""

    name: str = Field(min_length=1)
    options: dict[str, Any] | None = None
    extra_headers: dict[str, str] | None = None


ModelSpec = str | ModelOptions | list[str | ModelOptions]


class V3CallRequest(_Request):
    """Body of ``POST /v3/functions/{name}/call``."""

    input: Any
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    instructions: str | None = None
    model: ModelSpec | None = None
    parent_span_id: str | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    reasoning_summary: str | None = None


class V3Usage(WireResponse):
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cache_creation_1h_tokens: int | None = None


class V3CallMeta(WireResponse):
    function_name: str | None = None
    script_cached: bool | None = None
    execution_ms: int | None = None
    generation_ms: int | None = None
    llm_calls: int | None = None
    cost: float | None = None
    usage: V3Usage | None = None
    models_used: list[str] = Field(default_factory=list)
    model_warnings: list[Any] = Field(default_factory=list)
    status: str | None = None


class OpperCallResult(WireResponse):
    """``POST /v3/functions/{name}/call``: ``data`` (a string, or an object matching
    the output schema) and ``meta`` (usage, USD cost as one float, timings)."""

    data: Any = None
    meta: V3CallMeta = Field(default_factory=V3CallMeta)

    @property
    def usage(self) -> V3Usage:
        return self.meta.usage or V3Usage()

    @property
    def cost(self) -> float | None:
        return self.meta.cost

    def data_as(self, model: type[M]) -> M:
        """``data`` validated into ``model`` (e.g. the class given as ``output_schema``)."""
        return model.model_validate(self.data)


# ----------------------------------------------------------------------- v2


class Example(_Request):
    """A few-shot example for a v2 call."""

    input: Any
    output: Any
    comment: str | None = None


class V2CallRequest(_Request):
    """Body of ``POST /v2/functions/{function_id}/call/{revision_id}``."""

    input: Any = None
    parent_span_id: str | None = None
    examples: list[Example] | None = None
    tags: dict[str, str] | None = None

    @field_validator("parent_span_id")
    @classmethod
    def _span(cls, value: str | None) -> str | None:
        return None if value is None else _uuid_text(value, "parent_span_id")


class OutputTokensDetails(WireResponse):
    reasoning_tokens: int | None = None


class V2Usage(WireResponse):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    output_tokens_details: OutputTokensDetails | None = None


class V2Cost(WireResponse):
    """USD; ``total = generation + platform``."""

    generation: float | None = None
    platform: float | None = None
    total: float | None = None


class RevisionCallResult(WireResponse):
    """The flat v2 reply: ``message`` (no output schema) or ``json_payload`` (schema)."""

    span_id: str
    message: str | None = None
    json_payload: Any = None
    cached: bool = False
    images: list[str] | None = None
    usage: V2Usage | None = None
    cost: V2Cost | None = None

    @property
    def value(self) -> Any:
        """The answer: ``json_payload``, falling back to ``message``."""
        return self.json_payload if self.json_payload is not None else self.message


# --------------------------------------------------------------------- spans


class SpanCreate(_Request):
    name: str = Field(min_length=1)
    trace_id: str | None = None
    parent_id: str | None = None
    type: str | None = None
    input: str | None = None
    output: str | None = None
    error: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    meta: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None


class SpanUpdate(_Request):
    output: str | None = None
    error: str | None = None
    end_time: datetime | None = None
    meta: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None


class Span(WireResponse):
    id: str
    name: str | None = None
    trace_id: str | None = None
    parent_id: str | None = None
    type: str | None = None
    input: Any = None
    output: Any = None
    error: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    meta: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None


def unwrap_data(payload: Any) -> Any:
    """Span replies come as ``{"data": {...}}`` or bare; accept both."""
    if isinstance(payload, dict) and isinstance(payload.get("data"), dict) and "id" not in payload:
        return payload["data"]
    return payload


def check_uuid(value: str, what: str) -> str:
    """The canonical UUID text of ``value`` or a ValueError naming ``what``."""
    return _uuid_text(value, what)
