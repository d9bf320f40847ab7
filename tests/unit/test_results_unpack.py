"""unpack_outputs: both Function kinds, spec-less, envelopes and mismatch errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sutro_providers.collection.unpack import result_columns, result_schema, unpack_outputs
from sutro_providers.columns import ROW_ID
from sutro_providers.errors import SutroResultsError
from sutro_providers.function_spec import load_function_specs

SPECS = load_function_specs(Path(__file__).resolve().parents[2] / "example_dags" / "functions")
TRIAGE = SPECS["ticket-triage"]
LEADS = SPECS["lead-extractor"]


def _results(outputs: list[Any], first_id: int = 0, confidence: bool = True) -> pa.Table:
    data: dict[str, Any] = {
        "outputs": pa.array([o if isinstance(o, str) else json.dumps(o) for o in outputs], pa.string()),
        ROW_ID: pa.array(range(first_id, first_id + len(outputs)), pa.int64()),
    }
    if confidence:
        data["confidence_score"] = pa.array([0.5 + i / 100 for i in range(len(outputs))], pa.float64())
    return pa.table(data)


def _lead(**kw: Any) -> dict[str, Any]:
    row = {"company": "Acme", "seniority": "manager", "intent_score": 0.7, "wants_demo": True}
    row.update(kw)
    return row


def test_classification() -> None:
    out = unpack_outputs(_results([{"label": "bug", "rationale": "crash"}, {"label": "billing"}]), TRIAGE)
    assert out.schema == result_schema(TRIAGE)
    assert out.column_names == [ROW_ID, "label", "confidence", "rationale"]
    assert out.to_pylist() == [
        {ROW_ID: 0, "label": "bug", "confidence": 0.5, "rationale": "crash"},
        {ROW_ID: 1, "label": "billing", "confidence": 0.51, "rationale": None},
    ]


def test_extraction_with_prefix() -> None:
    out = unpack_outputs(_results([_lead(), _lead(intent_score=1, wants_demo=False, extra="x")]),
                         LEADS, prefix="s_")
    assert out.schema == pa.schema([(ROW_ID, pa.int64()), ("s_company", pa.string()),
                                    ("s_seniority", pa.string()), ("s_intent_score", pa.float64()),
                                    ("s_wants_demo", pa.bool_()), ("s_confidence", pa.float64())])
    assert out.column_names[1:] == result_columns(LEADS, prefix="s_")
    assert out["s_intent_score"].to_pylist() == [0.7, 1.0]
    assert out["s_wants_demo"].to_pylist() == [True, False]


def test_extraction_with_nested_and_integer_fields() -> None:
    spec = LEADS.model_copy(update={"output_schema": {
        "type": "object",
        "properties": {"tags": {"type": "array"}, "meta": {"type": "object"}, "n": {"type": "integer"},
                       "maybe": {"type": ["string", "null"]}},
        "required": ["n"]}})
    out = unpack_outputs(_results([{"tags": ["a", "b"], "meta": {"k": 1}, "n": 3.0},
                                   {"tags": None, "n": 4, "maybe": "y"}]), spec)
    assert out.schema.field("n").type == pa.int64()
    assert out.to_pylist()[0] == {ROW_ID: 0, "tags": '["a", "b"]', "meta": '{"k": 1}', "n": 3,
                                  "maybe": None, "confidence": 0.5}
    assert out["tags"].to_pylist()[1] is None


def test_specless_union_of_keys_first_seen() -> None:
    out = unpack_outputs(_results([{"b": 1, "a": "x"}, {"c": True, "b": 2.5}, {"a": "y"}]), None)
    assert out.column_names == [ROW_ID, "b", "a", "c", "confidence"]
    assert out.schema.field("b").type == pa.float64()
    assert out.to_pylist()[1] == {ROW_ID: 1, "b": 2.5, "a": None, "c": True, "confidence": 0.51}


def test_specless_mixed_types_become_text() -> None:
    out = unpack_outputs(_results([{"v": 1}, {"v": "one"}, {"v": {"x": 1}}, {"v": None}]), None)
    assert out["v"].to_pylist() == ["1", "one", '{"x": 1}', None]


def test_specless_model_confidence_key_does_not_hide_the_score() -> None:
    out = unpack_outputs(_results([{"label": "a", "confidence": "high"}]), None)
    assert out.column_names == [ROW_ID, "label", "output_confidence", "confidence"]
    assert out["confidence"].to_pylist() == [0.5]


def test_no_confidence_column_gives_nulls() -> None:
    out = unpack_outputs(_results([{"label": "bug"}], confidence=False), TRIAGE)
    assert out["confidence"].to_pylist() == [None]


def test_outputs_with_newlines_and_unicode() -> None:
    pretty = json.dumps({"label": "bug", "rationale": "línea\nnext"}, indent=2, ensure_ascii=False)
    out = unpack_outputs(_results([pretty, {"label": "other"}]), TRIAGE)
    assert out["rationale"].to_pylist() == ["línea\nnext", None]


@pytest.mark.parametrize("spec", [TRIAGE, None])
def test_reasoning_envelope(spec: Any) -> None:
    rows = [{"content": {"label": "bug", "rationale": "r"}, "reasoning_content": "thinking"},
            {"content": json.dumps({"label": "account"}), "reasoning_content": "more"}]
    out = unpack_outputs(_results(rows), spec)
    assert out["label"].to_pylist() == ["bug", "account"]
    assert "reasoning_content" not in out.column_names
    string_content = [{"content": json.dumps({"label": "bug"}), "reasoning_content": "t"}] * 2
    assert unpack_outputs(_results(string_content), spec)["label"].to_pylist() == ["bug", "bug"]
    object_content = [rows[0]] * 3
    assert unpack_outputs(_results(object_content), spec)["label"].to_pylist() == ["bug"] * 3


def test_empty_results() -> None:
    out = unpack_outputs(_results([]), TRIAGE)
    assert out.num_rows == 0 and out.schema == result_schema(TRIAGE)
    assert unpack_outputs(_results([]), None).column_names == [ROW_ID, "confidence"]


# -- mismatches ---------------------------------------------------------------------------------


def test_missing_required_field_names_row_id() -> None:
    rows = [_lead() for _ in range(20)]
    del rows[17]["intent_score"]
    with pytest.raises(SutroResultsError) as err:
        unpack_outputs(_results(rows, first_id=100), LEADS)
    assert str(err.value) == "results do not match Function 'lead-extractor': row 117: field 'intent_score' is missing"


def test_wrong_type_and_null_and_enum() -> None:
    rows = [_lead(intent_score="high"), _lead(wants_demo=None), _lead(seniority="intern"), _lead()]
    with pytest.raises(SutroResultsError) as err:
        unpack_outputs(_results(rows), LEADS)
    msg = str(err.value)
    assert "row 0: field 'intent_score' should be number, got \"high\"" in msg
    assert "row 1: field 'wants_demo' is null" in msg
    assert "row 2: field 'seniority' is 'intern', not one of" in msg


def test_label_outside_labels() -> None:
    with pytest.raises(SutroResultsError, match=r"row 1: field 'label' is 'spam', not one of \['account'"):
        unpack_outputs(_results([{"label": "bug"}, {"label": "spam"}]), TRIAGE)


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(SutroResultsError, match="row 0: field 'intent_score' should be number, got true"):
        unpack_outputs(_results([_lead(intent_score=True)]), LEADS)


@pytest.mark.parametrize(("output", "problem"), [
    ("not json", "output is not valid JSON: 'not json'"),
    ("[1, 2]", "output is not a JSON object: '[1, 2]'"),
    ('"text"', "output is not a JSON object"),
    ("", "output is not valid JSON"),
])
def test_not_an_object(output: str, problem: str) -> None:
    for spec, what in ((TRIAGE, "results do not match Function 'ticket-triage'"),
                       (None, "results are not JSON objects")):
        with pytest.raises(SutroResultsError, match=re.escape(f"{what}: row 1: {problem}")):
            unpack_outputs(_results([{"label": "bug"}, output, {"label": "bug"}]), spec)


def test_many_bad_rows_are_counted() -> None:
    with pytest.raises(SutroResultsError, match=r"row 4: .*\(and 5 more rows\)$"):
        unpack_outputs(_results([{"rationale": "x"}] * 10), TRIAGE)


def test_null_output_and_missing_columns() -> None:
    table = _results([{"label": "bug"}, {"label": "bug"}])
    table = table.set_column(0, "outputs", pa.array([None, "{}"], pa.string()))
    with pytest.raises(SutroResultsError, match=r"the output of row\(s\) 0 is null"):
        unpack_outputs(table, TRIAGE)
    with pytest.raises(SutroResultsError, match="no '__sutro_row_id' column"):
        unpack_outputs(table.drop_columns([ROW_ID]), TRIAGE)
