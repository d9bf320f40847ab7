"""One row through :class:`~sutro_providers.local.engine.DeterministicEngine`, in plain Python.

``functions/{name}/run`` answers one row at a time. The vectorised engine spends most
of its time there on fixed per-call costs (eight numpy calls on 1-element arrays per
hash, ``np.errstate`` blocks, Arrow kernels on 1-element arrays), so this module
computes the same answer with Python ints and strings: splitmix64 with 64-bit masks,
the same regex (ASCII word boundaries, as RE2 has them), the same number formatting
as Arrow's float → string cast. Where plain Python could round differently (the
classification softmax) it calls the engine's own numpy code on a ``(1, labels)``
array; rare cases (numbers of 1e15 and more, integers outside int64) use Arrow's own
cast. The result is bit-identical to a batch row (``tests/local/test_engine_row.py``
checks it against the vectorised engine on many rows and schemas).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.function_spec import FunctionSpec
from sutro_providers.local.engine import (
    GOLDEN,
    MIX1,
    MIX2,
    RATIONALES,
    WORD,
    label_texts,
    resolve_schema,
    schema_type,
    softmax,
)

_M64 = (1 << 64) - 1
_TWO53 = float(1 << 53)
_WORD_RE = re.compile(WORD, re.ASCII)  # RE2 (Arrow's extract_regex): \b is ASCII-only
_INT64 = range(-(1 << 63), 1 << 63)


@dataclass(frozen=True)
class RowOutput:
    """What ``functions/{name}/run`` needs of one row."""

    output: str  # the output as JSON text
    input_tokens: int
    output_tokens: int
    confidence: float | None
    label_probs: list[float] | None  # in label order, for classification


def mix(x: int) -> int:
    """splitmix64 finaliser on a Python int (wrapping like ``engine._mix``)."""
    x ^= x >> 30
    x = (x * MIX1) & _M64
    x ^= x >> 27
    x = (x * MIX2) & _M64
    return x ^ (x >> 31)


def sub(h: int, k: int) -> int:
    return mix((h + (k + 1) * GOLDEN) & _M64)


def frac(h: int) -> float:
    return (h >> 11) / _TWO53


def prompt_hash(prompt: str, salt: str) -> int:
    """``engine.prompt_hashes`` for one prompt."""
    return mix(zlib.crc32(prompt.encode()) ^ (zlib.crc32(salt.encode()) << 32))


def tokens(text: str) -> int:
    """``engine.token_counts`` for one text (Arrow counts code points, like ``len``)."""
    return max(1, (len(text) + 3) // 4)


def np_round(x: float, decimals: int) -> float:
    """``np.round`` on one float64: multiply, round half to even, divide."""
    f = 10.0**decimals
    y = x * f
    return (math.copysign(float(round(y)), y) if math.isfinite(y) else y) / f  # rint keeps the sign


def arrow_float_text(x: float) -> str:
    """What Arrow's float64 → string cast prints (shortest round-trip, no ``.0``)."""
    text = repr(x)
    if "e" in text or "n" in text or abs(x) >= 1e15:
        return str(pc.cast(pa.array([x], pa.float64()), pa.string())[0].as_py())
    return text[:-2] if text.endswith(".0") else text


class _RowFiller:
    """``engine._SchemaFiller`` for one row: same walk, same counter, same text."""

    def __init__(self, root: dict[str, Any], h: int, prompt: str) -> None:
        self.root = root
        self.h = h
        found = _WORD_RE.search(prompt)
        self.word = f'"{found.group("w") if found else "Unknown"}"'
        self.counter = 0

    def fill(self, schema: dict[str, Any], depth: int = 0) -> str:
        schema = resolve_schema(self.root, schema)
        self.counter += 1
        s = sub(self.h, self.counter)
        if "const" in schema:
            return json.dumps(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return json.dumps(schema["enum"][s % len(schema["enum"])])
        typ = schema_type(schema)
        if typ == "object":
            props = schema.get("properties") or {}
            if not props or depth > 4:
                return "{}"
            return "{" + ", ".join(
                json.dumps(key) + ": " + self.fill(value if isinstance(value, dict) else {}, depth + 1)
                for key, value in props.items()
            ) + "}"
        if typ == "array":
            return "[]" if depth > 4 else "[" + self.fill(schema.get("items") or {"type": "string"}, depth + 1) + "]"
        if typ == "boolean":
            return "true" if s & 1 else "false"
        if typ == "integer":
            lo = int(schema.get("minimum", 0))
            hi = int(schema.get("maximum", lo + 100))
            span = max(hi - lo, 0) + 1
            if span <= _M64 and lo in _INT64 and (value := lo + s % span) in _INT64:  # else numpy wraps/raises
                return str(value)
            return self._vector_int(lo, span, s)
        if typ == "number":
            flo = float(schema.get("minimum", 0.0))
            fhi = float(schema.get("maximum", flo + 1.0))
            return arrow_float_text(float(np.clip(np_round(flo + frac(s) * (fhi - flo), 3), flo, fhi)))
        if typ == "null":
            return "null"
        return self.word

    @staticmethod
    def _vector_int(lo: int, span: int, s: int) -> str:
        """Integers near or past int64: the engine's own numpy arithmetic (wraps like it)."""
        vals = lo + (np.array([s], dtype=np.uint64) % np.uint64(span)).astype(np.int64)
        return str(pc.cast(pa.array(vals), pa.string())[0].as_py())


def run_row(spec: FunctionSpec, prompt: str) -> RowOutput:
    """The deterministic engine's answer for one prompt of a Function."""
    h = prompt_hash(prompt, spec.name)
    probs: list[float] | None = None
    if spec.kind == "classification":
        labels = tuple(spec.labels or [])
        row = softmax(np.array([[frac(sub(h, k)) * 4.0 for k in range(len(labels))]]))[0]
        best = int(row.argmax())
        output = label_texts(labels)[best * len(RATIONALES) + sub(h, 1000) % len(RATIONALES)]
        confidence = float(row[best])
        probs = row.tolist()
    else:
        schema = spec.output_schema or {}
        output = _RowFiller(schema, h, prompt).fill(schema)
        confidence = np_round(0.55 + 0.45 * frac(sub(h, 101)), 4)
    return RowOutput(output, tokens(prompt), tokens(output), confidence, probs)
