"""The state behind the local Opper emulator: function registry (v2 UUID revisions),
deterministic fake generation, input-schema validation, result cache and spans.

No FastAPI here; :mod:`sutro_providers.local.opper_routes` exposes it over HTTP.
Generation reuses the Sutro local :class:`~sutro_providers.local.engine.DeterministicEngine`
(salted hash of the rendered input), so the same input always gives the same
answer, and an ``output_schema`` yields an object that fits it.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import pyarrow as pa

from sutro_providers.local.engine import DeterministicEngine, EngineRequest
from sutro_providers.local.faults import FaultRegistry
from sutro_providers.local.models import cost_usd
from sutro_providers.local.opper_registry import FunctionRegistry, OpperAPIError

DEFAULT_MODEL = "openai/gpt-4o-mini"
PRICES: dict[str, tuple[float, float]] = {DEFAULT_MODEL: (0.15, 0.60), "anthropic/claude-3-haiku": (0.25, 1.25)}
PLATFORM_FEE = 0.1  # share of the generation cost


@dataclass(frozen=True)
class Revision:
    """One immutable revision of a v2 function."""

    revision_id: str
    function_id: str
    name: str
    instructions: str = "You are a helpful assistant"
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    model: str = DEFAULT_MODEL
    cache_ttl: float = 0.0
    description: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "id": self.function_id, "revision_id": self.revision_id, "name": self.name,
            "description": self.description, "instructions": self.instructions,
            "input_schema": self.input_schema, "output_schema": self.output_schema,
            "model": {"name": self.model, "options": {}, "extra_headers": {}},
            "configuration": {"invocation.cache.ttl": self.cache_ttl}, "dataset_id": None,
        }


@dataclass(frozen=True)
class Generation:
    data: Any
    input_tokens: int
    output_tokens: int
    model: str

    @property
    def generation_cost(self) -> float:
        return cost_usd(self.input_tokens, self.output_tokens, PRICES.get(self.model, PRICES[DEFAULT_MODEL]))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def render_input(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    """The checked validator of one schema, built once (building it costs more than a
    call's whole answer; see bench B11)."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_input(value: Any, schema: dict[str, Any] | None) -> None:
    """400 ``invalid_input`` when ``value`` does not match ``schema`` (as ``jsonschema.validate``)."""
    if schema is None:
        return
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except jsonschema.SchemaError as exc:
        raise OpperAPIError(400, "invalid_schema", f"input_schema is not a valid JSON Schema: {exc.message}") from None
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "input"
        raise OpperAPIError(400, "invalid_input", f"input does not match input_schema at {where}: {error.message}")


def model_name(model: Any) -> str:
    """The first model of a string, ``{name, ...}`` or fallback list."""
    if isinstance(model, list) and model:
        model = model[0]
    if isinstance(model, dict):
        model = model.get("name")
    return model if isinstance(model, str) and model else DEFAULT_MODEL


@dataclass
class OpperEmulator:
    """Thread-safe in-memory state of one emulator. ``faults`` takes the same rules
    as the Sutro local server (``status`` / ``drop_connection`` / ``latency``), with
    endpoints ``opper-call``, ``opper-call-revision``, ``opper-spans``."""

    api_key: str
    engine: DeterministicEngine = field(default_factory=DeterministicEngine)
    faults: FaultRegistry = field(default_factory=FaultRegistry)
    stats: Counter[str] = field(default_factory=Counter)
    revisions: dict[str, Revision] = field(default_factory=dict)
    latest: dict[str, str] = field(default_factory=dict)  # function_id -> revision_id
    spans: dict[str, dict[str, Any]] = field(default_factory=dict)
    registry: FunctionRegistry = field(default_factory=FunctionRegistry)
    calls: list[dict[str, Any]] = field(default_factory=list)
    _cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.registry.clear()
            for store in (self.stats, self.revisions, self.latest, self.spans, self._cache, self._seen, self.calls):
                store.clear()

    def _log_call(self, kind: str, name: str, body: dict[str, Any], key: str, span_id: str) -> bool:
        """Record one answered call (the test's call count) and say whether the same
        input was seen before (the reply's ``cached`` flag)."""
        with self._lock:
            seen = (kind, key) in self._seen
            self._seen.add((kind, key))
            self.calls.append({"api": kind, "name": name, "input": render_input(body.get("input")),
                               "tags": body.get("tags"), "parent_span_id": body.get("parent_span_id"),
                               "examples": len(body.get("examples") or ()), "cached": seen, "span_id": span_id})
        return seen

    # -- functions (v2)
    def register_function(self, name: str, *, function_id: str | None = None, **fields: Any) -> Revision:
        """Add a revision (and the function if new); it becomes the current one."""
        with self._lock:
            fid = function_id or next((r.function_id for r in self.revisions.values() if r.name == name), None)
            rev = Revision(revision_id=str(uuid.uuid4()), function_id=fid or str(uuid.uuid4()), name=name, **fields)
            self.revisions[rev.revision_id] = rev
            self.latest[rev.function_id] = rev.revision_id
            return rev

    def revision(self, function_id: str, revision_id: str | None = None) -> Revision:
        with self._lock:
            rid = revision_id or self.latest.get(function_id)
            rev = self.revisions.get(rid or "")
        if rev is None or rev.function_id != function_id:
            raise OpperAPIError(404, "not_found", f"function {function_id} revision {revision_id or 'latest'} not found")
        return rev

    def functions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.revisions[rid].record() for rid in self.latest.values()]

    # -- generation
    def generate(self, name: str, value: Any, output_schema: dict[str, Any] | None, model: str, instructions: str | None) -> Generation:
        prompt = pa.array([f"{instructions or ''}\n{render_input(value)}"], type=pa.string())
        request = EngineRequest(model=f"{name}:{model}", json_schema=output_schema or None)
        out = self.engine.infer(request, prompt)
        text = str(out.outputs[0].as_py())
        data = json.loads(text) if output_schema else f"{name}: {render_input(value)[:80]}"
        return Generation(data, int(out.input_tokens[0].as_py()), int(out.output_tokens[0].as_py()), model)

    def call_v3(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        input_schema, output_schema = body.get("input_schema"), body.get("output_schema")
        validate_input(body.get("input"), input_schema)
        model = model_name(body.get("model"))
        gen = self.generate(name, body.get("input"), output_schema, model, body.get("instructions"))
        script_cached = self.registry.touch(name, input_schema, output_schema)
        span = self.record_call_span(name, body.get("parent_span_id"), body.get("input"), gen.data, None)
        key = json.dumps([name, input_schema, output_schema, body.get("instructions"), render_input(body.get("input"))],
                         sort_keys=True)
        cached = self._log_call("v3", name, body, key, str(span["id"]))
        elapsed = max(1, int((time.perf_counter() - started) * 1000))
        usage = {"input_tokens": gen.input_tokens, "output_tokens": gen.output_tokens, "reasoning_tokens": None,
                 "cache_read_tokens": None, "cache_creation_tokens": None, "cache_creation_1h_tokens": None}
        meta = {"function_name": name, "script_cached": script_cached, "cached": cached, "execution_ms": elapsed, "llm_calls": 1,
                "tts_calls": 0, "image_gen_calls": 0, "generation_ms": elapsed, "usage": usage,
                "cost": round(gen.generation_cost * (1 + PLATFORM_FEE), 10), "models_used": [model],
                "model_warnings": [], "guards": [], "tool_calls": [], "message": None, "status": None,
                "pending_operations": None}
        return {"data": gen.data, "meta": meta}

    def call_v2(self, rev: Revision, body: dict[str, Any]) -> dict[str, Any]:
        value = body.get("input")
        validate_input(value, rev.input_schema)
        cache_key = (rev.revision_id, render_input(value))
        with self._lock:
            hit = self._cache.get(cache_key) if rev.cache_ttl > 0 else None
        if hit is not None and hit[0] > time.monotonic():
            reply = dict(hit[1])
        else:
            gen = self.generate(rev.name, value, rev.output_schema, rev.model, rev.instructions)
            generation = gen.generation_cost
            platform = round(generation * PLATFORM_FEE, 10)
            reply = {
                "message": None if rev.output_schema else gen.data,
                "json_payload": gen.data if rev.output_schema else None,
                "cached": False, "images": None,
                "usage": {"input_tokens": gen.input_tokens, "output_tokens": gen.output_tokens,
                          "total_tokens": gen.input_tokens + gen.output_tokens},
                "cost": {"generation": generation, "platform": platform, "total": round(generation + platform, 10)},
            }
            if rev.cache_ttl > 0:
                with self._lock:
                    self._cache[cache_key] = (time.monotonic() + rev.cache_ttl, reply)
        output = reply["json_payload"] if rev.output_schema else reply["message"]
        span = self.record_call_span(rev.name, body.get("parent_span_id"), value, output, body.get("tags"))
        cached = self._log_call("v2", rev.name, body, "\n".join(cache_key), str(span["id"]))
        return {"span_id": span["id"], **reply, "cached": cached}

    # -- spans
    def record_call_span(self, name: str, parent_id: str | None, value: Any, output: Any, tags: dict[str, str] | None) -> dict[str, Any]:
        return self.create_span({"name": name, "type": "call", "parent_id": parent_id, "input": render_input(value),
                                 "output": render_input(output), "tags": tags, "end_time": _now()})

    def create_span(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            parent = self.spans.get(fields.get("parent_id") or "")
            trace_id = fields.get("trace_id") or (parent or {}).get("trace_id") or str(uuid.uuid4())
            span = {"id": str(uuid.uuid4()), "trace_id": trace_id, "parent_id": fields.get("parent_id"),
                    "name": fields.get("name"), "type": fields.get("type"), "input": fields.get("input"),
                    "output": fields.get("output"), "error": fields.get("error"),
                    "start_time": fields.get("start_time") or _now(), "end_time": fields.get("end_time"),
                    "created_at": _now(), "meta": fields.get("meta"), "metadata": fields.get("metadata"),
                    "tags": fields.get("tags")}
            self.spans[str(span["id"])] = span
            return dict(span)

    def get_span(self, span_id: str) -> dict[str, Any]:
        with self._lock:
            span = self.spans.get(span_id)
            if span is None:
                raise OpperAPIError(404, "not_found", f"span {span_id} not found")
            return dict(span)

    def update_span(self, span_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        allowed = {"output", "error", "end_time", "meta", "metadata", "tags"}
        with self._lock:
            span = self.spans.get(span_id)
            if span is None:
                raise OpperAPIError(404, "not_found", f"span {span_id} not found")
            span.update({k: v for k, v in fields.items() if k in allowed})
            return dict(span)

    def delete_span(self, span_id: str) -> None:
        with self._lock:
            if self.spans.pop(span_id, None) is None:
                raise OpperAPIError(404, "not_found", f"span {span_id} not found")

    def trace(self, trace_id: str) -> dict[str, Any]:
        with self._lock:
            spans = [dict(s) for s in self.spans.values() if s["trace_id"] == trace_id]
        if not spans:
            raise OpperAPIError(404, "not_found", f"trace {trace_id} not found")
        root = next((s for s in spans if s["parent_id"] is None), spans[0])
        return {"id": trace_id, "name": root["name"], "span_count": len(spans), "spans": spans,
                "start_time": min(s["start_time"] for s in spans), "end_time": None, "duration_ms": None,
                "status": "ok"}
