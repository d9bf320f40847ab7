"""The one-row path (``engine_row.run_row``, used by ``functions/{name}/run``) gives
exactly what the vectorised ``DeterministicEngine`` gives for the same row in a batch:
same output text, token counts, confidence and label probabilities, bit for bit."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest

from sutro_providers.function_spec import FunctionSpec, load_function_specs
from sutro_providers.local.engine import DeterministicEngine, EngineRequest
from sutro_providers.local.engine_row import arrow_float_text, np_round, run_row
from sutro_providers.local.render import build_prompts, render_column
from tests.local.test_lifecycle import FUNCTIONS

SPECS = load_function_specs(FUNCTIONS)

WORDS = ["", " ", "Refund", "refund", "App", "Ab", "éAbc", "Élan", "Ürün", "naïve", "日本語テキスト", "emoji 🎉🎉",
         "_Under", "9Nine", "x-Ray", "Zürich", "ABC", "q", "Invoice", "\n", "\t\tTabs", '"Quoted"', "back\\slash",
         "\u0000nul", "Ωmega", "mixed Case words", "O'Neil", "CamelCaseWord", "  Lead  "]


def texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = ["", "Refund", "éAbc", "Ab cd", "日本語", "🎉" * 300, "a" * 4001]
    while len(out) < n:
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12))))
    return out[:n]


def assert_rows_match(spec: FunctionSpec, prompts: pa.Array) -> None:
    batch = DeterministicEngine().infer(EngineRequest(model=spec.name, function=spec), prompts)
    assert batch.confidence is not None
    for i, prompt in enumerate(prompts.to_pylist()):
        row = run_row(spec, prompt)
        assert row.output == batch.outputs[i].as_py(), (i, prompt)
        assert row.input_tokens == batch.input_tokens[i].as_py()
        assert row.output_tokens == batch.output_tokens[i].as_py()
        assert row.confidence is not None and row.confidence.hex() == float(batch.confidence[i].as_py()).hex()
        if batch.label_probs is None:
            assert row.label_probs is None
        else:
            assert row.label_probs is not None
            assert [p.hex() for p in row.label_probs] == [float(p).hex() for p in batch.label_probs[i]]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_example_functions_one_row_equals_batch(name: str) -> None:
    spec = SPECS[name]
    rng = random.Random(name)
    columns = []
    for field in spec.inputs:
        if field.type.value == "integer":
            values: list[Any] = [None, 0, -5, 12000, *(rng.randint(-10**12, 10**12) for _ in range(596))]
        else:
            values = texts(len(field.name), 600)
        columns.append(render_column(pa.array(values)))
    assert_rows_match(spec, build_prompts(spec.input_names, columns))


SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {"money": {"type": "object", "properties": {"amount": {"type": "number", "minimum": -50, "maximum": 50},
                                                          "currency": {"enum": ["EUR", "USD", 3, None, {"k": "ü"}]}}}},
    "properties": {
        "name": {"type": "string"},
        "nick": {"type": ["null", "string"]},
        "const": {"const": {"a": [1, "é"]}},
        "flag": {"type": "boolean"},
        "count": {"type": "integer", "minimum": -7, "maximum": 7},
        "big": {"type": "integer", "minimum": -(2**62), "maximum": 2**63 - 1},
        "huge": {"type": "integer", "minimum": 10**17},
        "default_int": {"type": "integer"},
        "score": {"type": "number"},
        "neg": {"type": "number", "minimum": -1.5, "maximum": -0.25},
        "wide": {"type": "number", "minimum": -1e6, "maximum": 1e6},
        "giant": {"type": "number", "minimum": 1e15, "maximum": 1e17},
        "tiny": {"type": "number", "minimum": 0, "maximum": 0.002},
        "price": {"$ref": "#/$defs/money"},
        "maybe": {"anyOf": [{"type": "null"}, {"type": "integer", "maximum": 3}]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "array", "items": {
            "type": "array", "items": {"type": "array", "items": {"type": "integer"}}}}}},
        "empty": {"type": "object"},
        "nothing": {"type": "null"},
        "nested": {"properties": {"deep": {"properties": {"deeper": {"type": "boolean"}}}}},
        "untyped": {},
        "ünï": {"type": "string"},
    },
}


def test_schema_one_row_equals_batch() -> None:
    spec = FunctionSpec(name="schema-zoo", kind="extraction", inputs=[{"name": "text"}], output_schema=SCHEMA)
    assert_rows_match(spec, build_prompts(["text"], [pa.array(texts(7, 800))]))


@pytest.mark.parametrize("labels", [["only"], ["a", "b"], [f"label-{i}" for i in range(9)], ["é", "日本", "x y", '"q"']])
def test_label_sets_one_row_equals_batch(labels: list[str]) -> None:
    """Nine labels: numpy sums them pairwise, plain Python would not; the row path must match."""
    spec = FunctionSpec(name="labels", kind="classification", inputs=[{"name": "t"}], labels=labels)
    assert_rows_match(spec, build_prompts(["t"], [pa.array(texts(len(labels), 400))]))


def test_number_helpers_match_numpy_and_arrow() -> None:
    import numpy as np
    import pyarrow.compute as pc

    rng = random.Random(3)
    values = [0.0, -0.0, 0.0004, -0.0004, 0.0005, 0.0015, 2.5, -2.5, 1e15, 123456.789, *(rng.uniform(-1e7, 1e7) for _ in range(2000))]
    rounded = np.round(np.array(values), 3)
    assert [np_round(v, 3).hex() for v in values] == [float(r).hex() for r in rounded]
    assert [arrow_float_text(float(r)) for r in rounded] == pc.cast(pa.array(rounded), pa.string()).to_pylist()


@pytest.mark.parametrize("bounds", [{"minimum": 0, "maximum": 2**64}, {"minimum": -(2**64)}, {"minimum": -(2**63) - 1, "maximum": 2**62}])
def test_integer_range_numpy_cannot_hold_fails_on_both_paths(bounds: dict[str, int]) -> None:
    """Where the batch engine raises (numpy cannot hold the range), the one-row path raises too."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", **bounds}}}
    spec = FunctionSpec(name="bad-range", kind="extraction", inputs=[{"name": "t"}], output_schema=schema)
    with pytest.raises(OverflowError):
        DeterministicEngine().infer(EngineRequest(model=spec.name, function=spec), pa.array(["x"]))
    with pytest.raises(OverflowError):
        run_row(spec, "x")
