"""Pluggable inference engines. The default one is fake, fast and deterministic.

An engine turns rendered prompts into outputs. It gets the whole batch (or a
chunk of it) as an Arrow string array and must return one value per prompt,
in order. Write your own by implementing :class:`InferenceEngine` and start
the server with ``--engine my_pkg.module:factory`` (the factory is called
with no arguments and must return the engine).

:class:`DeterministicEngine` hashes each prompt (``zlib.crc32`` salted with
the Function/model name) and derives everything from that hash, so the same
row always gives the same answer, in batch and in ``functions/{name}/run``:

* classification: pseudo-scores over all labels → softmax confidences that
  sum to 1; label = argmax; output ``{"label", "rationale"}`` as JSON text;
* extraction / ``json_schema``: a JSON object that fits the schema (enum →
  hash-chosen member, string → a capitalised word from the input, numbers
  within minimum/maximum, booleans, arrays of one item, nested objects);
* standalone text models: ``"[<model>] <first 60 characters of the prompt>"``;
* embedding models: an 8-dimensional unit vector.

With ``random_seed_per_input`` (a job's Batch API flag) each row's hash is mixed
with a random seed of its own, so equal rows may get different answers.

Tokens: ``ceil(len(text) / 4)`` for prompts and outputs (at least 1).
"""

from __future__ import annotations

import functools
import importlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.function_spec import FunctionSpec
from sutro_providers.local.models import EMBEDDING_MODELS

# splitmix64 constants; the one-row path (``engine_row``) uses the same ones as ints.
GOLDEN, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_GOLDEN, _MIX1, _MIX2 = np.uint64(GOLDEN), np.uint64(MIX1), np.uint64(MIX2)
WORD = r"(?P<w>\b[A-Z][A-Za-z]{2,})"
RATIONALES = (
    "The text reads most like {label}.",
    "Key phrases in the input point to {label}.",
    "Best match among the labels: {label}.",
)


@dataclass(frozen=True)
class EngineRequest:
    """What to run: a Function (by spec) or a standalone model."""

    model: str
    function: FunctionSpec | None = None
    json_schema: dict[str, Any] | None = None
    system_prompt: str | None = None
    sampling_params: dict[str, Any] = field(default_factory=dict)
    random_seed_per_input: bool = False


@dataclass
class EngineOutput:
    """Per-prompt results, all the same length as the prompts."""

    outputs: pa.Array
    input_tokens: pa.Array
    output_tokens: pa.Array
    cumulative_logprobs: pa.Array
    confidence: pa.Array | None = None
    label_probs: np.ndarray | None = None  # (rows, labels) for classification


class InferenceEngine(Protocol):
    """The contract of an engine: prompts in, outputs out, same order."""

    def infer(self, request: EngineRequest, prompts: pa.Array) -> EngineOutput: ...


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _MIX1
        x = x ^ (x >> np.uint64(27))
        x = x * _MIX2
        return x ^ (x >> np.uint64(31))


def _sub(h: np.ndarray, k: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix(h + np.uint64(k + 1) * _GOLDEN)


def _frac(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def prompt_hashes(prompts: pa.Array, salt: str) -> np.ndarray:
    """One uint64 per prompt: crc32 of the UTF-8 text, salted and mixed."""
    n = len(prompts)
    if not pa.types.is_string(prompts.type):
        prompts = pc.cast(prompts, pa.string())
    if isinstance(prompts, pa.ChunkedArray):
        prompts = prompts.combine_chunks()
    _, offsets_buf, data_buf = prompts.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[prompts.offset : prompts.offset + n + 1].tolist()
    data = memoryview(data_buf if data_buf is not None else b"")
    base = np.fromiter(
        (zlib.crc32(data[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)), dtype=np.uint64, count=n
    )
    return _mix(base ^ (np.uint64(zlib.crc32(salt.encode())) << np.uint64(32)))


def token_counts(texts: pa.Array) -> pa.Array:
    """``max(1, ceil(chars / 4))`` per text."""
    n = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    return pa.array(np.maximum(1, (n + 3) // 4))


def _lit(values: list[Any], idx: np.ndarray) -> pa.Array:
    return pa.array([json.dumps(v) for v in values]).take(pa.array(idx))


def resolve_schema(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` or take the first non-null ``anyOf``/``oneOf``/``allOf`` option."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if o.get("type") != "null"] or options
            return resolve_schema(root, non_null[0])
    return schema


def schema_type(schema: dict[str, Any]) -> str:
    """The JSON type a (resolved) schema asks for; the first non-null one of a list."""
    typ = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    return str(typ)


class _SchemaFiller:
    """Builds JSON text fragments that fit a JSON schema, vectorised over rows."""

    def __init__(self, root: dict[str, Any], h: np.ndarray, prompts: pa.Array) -> None:
        self.root = root
        self.h = h
        self.n = len(prompts)
        found = pc.struct_field(pc.extract_regex(prompts, WORD), "w")
        self.words = pc.binary_join_element_wise('"', pc.fill_null(found, "Unknown"), '"', "")
        self.counter = 0

    def _const(self, text: str) -> pa.Array:
        return pa.array([text] * self.n, type=pa.string())

    def fill(self, schema: dict[str, Any], depth: int = 0) -> pa.Array:
        schema = resolve_schema(self.root, schema)
        self.counter += 1
        sub = _sub(self.h, self.counter)
        if "const" in schema:
            return self._const(json.dumps(schema["const"]))
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return _lit(schema["enum"], (sub % np.uint64(len(schema["enum"]))).astype(np.int64))
        typ = schema_type(schema)
        if typ == "object":
            return self._object(schema, depth)
        if typ == "array":
            if depth > 4:
                return self._const("[]")
            item = self.fill(schema.get("items") or {"type": "string"}, depth + 1)
            return pc.binary_join_element_wise("[", item, "]", "")
        if typ == "boolean":
            return _lit([False, True], (sub & np.uint64(1)).astype(np.int64))
        if typ == "integer":
            lo = int(schema.get("minimum", 0))
            hi = int(schema.get("maximum", lo + 100))
            vals = lo + (sub % np.uint64(max(hi - lo, 0) + 1)).astype(np.int64)
            return pc.cast(pa.array(vals), pa.string())
        if typ == "number":
            flo = float(schema.get("minimum", 0.0))
            fhi = float(schema.get("maximum", flo + 1.0))
            vals = np.round(flo + _frac(sub) * (fhi - flo), 3).clip(flo, fhi)
            return pc.cast(pa.array(vals), pa.string())
        if typ == "null":
            return self._const("null")
        return self.words

    def _object(self, schema: dict[str, Any], depth: int) -> pa.Array:
        props = schema.get("properties") or {}
        if not props or depth > 4:
            return self._const("{}")
        parts: list[Any] = ["{"]
        for i, (key, sub_schema) in enumerate(props.items()):
            parts.append((", " if i else "") + json.dumps(key) + ": ")
            parts.append(self.fill(sub_schema if isinstance(sub_schema, dict) else {}, depth + 1))
        parts.append("}")
        return pc.binary_join_element_wise(*parts, "")


@functools.lru_cache(maxsize=256)
def label_texts(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Every possible classification output, label-major (built once per label set)."""
    return tuple(json.dumps({"label": label, "rationale": t.format(label=label)})
                 for label in labels for t in RATIONALES)


@functools.lru_cache(maxsize=256)
def _label_array(labels: tuple[str, ...]) -> pa.Array:
    return pa.array(label_texts(labels))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a (rows, labels) array (numpy's summation order, used by
    both the batch and the one-row path so their confidences are bit-identical)."""
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


class DeterministicEngine:
    """The default fake engine (see the module docstring for the rules)."""

    def infer(self, request: EngineRequest, prompts: pa.Array) -> EngineOutput:
        spec = request.function
        salt = spec.name if spec is not None else request.model
        h = prompt_hashes(prompts, salt)
        if request.random_seed_per_input:
            seeds = np.random.default_rng().integers(0, np.iinfo(np.uint64).max, size=len(h), dtype=np.uint64)
            h = _mix(h ^ seeds)
        confidence: pa.Array | None = None
        probs: np.ndarray | None = None
        if spec is not None and spec.kind == "classification":
            outputs, confidence, probs = self._classify(spec.labels or [], h)
        elif spec is not None:
            outputs = _SchemaFiller(spec.output_schema or {}, h, prompts).fill(spec.output_schema or {})
            confidence = pa.array(np.round(0.55 + 0.45 * _frac(_sub(h, 101)), 4))
        elif request.model in EMBEDDING_MODELS:
            vec = np.stack([_frac(_sub(h, k)) - 0.5 for k in range(8)], axis=1)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            outputs = pa.array([json.dumps([round(float(x), 6) for x in row]) for row in vec])
        elif request.json_schema:
            schema = request.json_schema
            outputs = _SchemaFiller(schema, h, prompts).fill(schema)
        else:
            head = pc.utf8_slice_codeunits(prompts, 0, 60)
            outputs = pc.binary_join_element_wise(f"[{request.model}] ", head, "")
        out_tokens = token_counts(outputs)
        rate = 0.01 + 0.1 * _frac(_sub(h, 97))
        logprobs = np.round(-out_tokens.to_numpy() * rate, 4)
        return EngineOutput(
            outputs=outputs,
            input_tokens=token_counts(prompts),
            output_tokens=out_tokens,
            cumulative_logprobs=pa.array(logprobs),
            confidence=confidence,
            label_probs=probs,
        )

    @staticmethod
    def _classify(labels: list[str], h: np.ndarray) -> tuple[pa.Array, pa.Array, np.ndarray]:
        scores = np.stack([_frac(_sub(h, k)) * 4.0 for k in range(len(labels))], axis=1)
        probs = softmax(scores)
        best = probs.argmax(axis=1)
        template = (_sub(h, 1000) % np.uint64(len(RATIONALES))).astype(np.int64)
        outputs = _label_array(tuple(labels)).take(pa.array(best * len(RATIONALES) + template))
        confidence = pa.array(probs[np.arange(len(best)), best])
        return outputs, confidence, probs


def load_engine(name: str) -> InferenceEngine:
    """``deterministic`` or a dotted path ``pkg.mod:factory`` / ``pkg.mod.factory``."""
    if name in ("", "deterministic", "default"):
        return DeterministicEngine()
    module_name, _, attr = name.partition(":") if ":" in name else name.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"unknown engine {name!r}: use 'deterministic' or 'module:factory'")
    factory = getattr(importlib.import_module(module_name), attr)
    engine = factory()
    if not callable(getattr(engine, "infer", None)):
        raise TypeError(f"engine {name!r} has no infer(request, prompts) method")
    return engine
