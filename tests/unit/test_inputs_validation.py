"""InputValidator: schema checks, per-row problems, skip reasons, id uniqueness."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sutro_providers.columns import ROW_ID
from sutro_providers.errors import SutroInputError
from sutro_providers.function_spec import FieldType, InputField, load_function_spec
from sutro_providers.inputs.validation import InputValidator, accepts

SPECS = Path(__file__).resolve().parents[2] / "example_dags" / "functions"
TRIAGE = load_function_spec(SPECS / "ticket_triage.yaml")
LEADS = load_function_spec(SPECS / "lead_extractor.yaml")


def _validator(spec=TRIAGE, **kw) -> InputValidator:
    return InputValidator(spec.name, spec.inputs, **kw)


def _run(validator: InputValidator, table: pa.Table, batch_size: int = 4) -> list[pa.Array | None]:
    validator.check_schema(table.schema)
    out, first = [], 0
    for batch in table.to_batches(max_chunksize=batch_size):
        out.append(validator.check_batch(batch, first))
        first += batch.num_rows
    validator.finish()
    return out


def _tickets(n: int = 10, **overrides) -> pa.Table:
    data = {"subject": [f"s{i}" for i in range(n)], "body": [f"b{i}" for i in range(n)]}
    data.update(overrides)
    return pa.table(data)


# -- schema -------------------------------------------------------------------------------------


def test_missing_required_column() -> None:
    with pytest.raises(SutroInputError) as err:
        _validator().check_schema(pa.schema([("subject", pa.string()), ("text", pa.string())]))
    assert str(err.value) == (
        "Function 'ticket-triage' needs input column 'body', which the table does not have "
        "(it has: 'subject', 'text')"
    )


def test_optional_column_may_be_absent() -> None:
    v = _validator()
    schema = pa.schema([("body", pa.string()), ("x", pa.int8()), ("subject", pa.large_string())])
    v.check_schema(schema)
    assert v.submit_columns(schema) == ["subject", "body"]
    schema = schema.append(pa.field("customer_tier", pa.dictionary(pa.int32(), pa.string())))
    assert v.submit_columns(schema) == ["subject", "body", "customer_tier"]


def test_timestamps_are_not_taken_as_text() -> None:
    assert not accepts(FieldType.STRING, pa.timestamp("us"))  # a string field takes dates, not timestamps


@pytest.mark.parametrize(
    ("field_type", "arrow_type", "ok"),
    [
        ("string", pa.string(), True), ("string", pa.large_string(), True),
        ("string", pa.dictionary(pa.int8(), pa.string()), True), ("string", pa.int32(), True),
        ("string", pa.float64(), True), ("string", pa.bool_(), True), ("string", pa.date32(), True),
        ("string", pa.decimal128(10, 2), True), ("string", pa.month_day_nano_interval(), False),
        ("string", pa.list_(pa.string()), False), ("string", pa.binary(), False),
        ("integer", pa.int16(), True), ("integer", pa.uint64(), True), ("integer", pa.float64(), True),
        ("integer", pa.string(), False), ("integer", pa.bool_(), False),
        ("number", pa.int8(), True), ("number", pa.float32(), True), ("number", pa.decimal128(10, 2), True),
        ("number", pa.string(), False),
        ("boolean", pa.bool_(), True), ("boolean", pa.int8(), False), ("boolean", pa.null(), True),
    ],
)
def test_column_types(field_type: str, arrow_type: pa.DataType, ok: bool) -> None:
    v = InputValidator("f", [InputField(name="x", type=field_type)])
    schema = pa.schema([("x", arrow_type)])
    if ok:
        v.check_schema(schema)
    else:
        with pytest.raises(SutroInputError, match=rf"column 'x' has type {arrow_type}, but Function 'f' "
                           rf"declares 'x' as {field_type}"):
            v.check_schema(schema)


def test_id_column_reserved_and_output_clashes() -> None:
    schema = _tickets(1).schema
    with pytest.raises(SutroInputError, match="id_column 'ticket_id' is not a column"):
        _validator(id_column="ticket_id").check_schema(schema)
    with pytest.raises(SutroInputError, match=f"column '{ROW_ID}' is reserved"):
        _validator().check_schema(schema.append(pa.field(ROW_ID, pa.int64())))
    with pytest.raises(SutroInputError, match=r"\['label'\] have the same name as result.*output_prefix"):
        _validator(output_columns=["label", "confidence"]).check_schema(schema.append(pa.field("label", pa.string())))
    with pytest.raises(SutroInputError, match="duplicate column names"):
        _validator().check_schema(pa.schema([("subject", pa.string()), ("body", pa.string()), ("body", pa.string())]))


# -- rows ---------------------------------------------------------------------------------------


def test_valid_rows_return_none() -> None:
    assert _run(_validator(), _tickets(10)) == [None, None, None]


def test_nulls_in_required_field_fail_with_global_rows() -> None:
    body = [f"b{i}" for i in range(20)]
    for i in (5, 6, 9, 11, 13, 14, 15):
        body[i] = None
    with pytest.raises(SutroInputError) as err:
        _run(_validator(), _tickets(20, body=body), batch_size=8)
    msg = str(err.value)
    assert "column 'body': null in a required field at rows 5, 6" in msg
    assert "on_invalid_rows='skip'" in msg


def test_first_five_rows_named_in_one_batch() -> None:
    body = [None] * 9 + ["x"]
    with pytest.raises(SutroInputError, match=r"rows 0, 1, 2, 3, 4 and 4 more in this batch"):
        _run(_validator(), _tickets(10, body=body), batch_size=10)


def test_rows_in_later_batch_are_global() -> None:
    subject = ["s"] * 10
    subject[9] = None
    with pytest.raises(SutroInputError, match=r"column 'subject': null in a required field at row 9\b"):
        _run(_validator(), _tickets(10, subject=subject), batch_size=4)


def test_oversize_row_names_length_and_column() -> None:
    body = ["b"] * 6
    body[4] = "x" * 500
    with pytest.raises(SutroInputError) as err:
        _run(_validator(max_row_chars=100), _tickets(6, body=body))
    assert "rendered row longer than max_row_chars=100 at row 4 (" in str(err.value)
    assert "500 in column 'body'" in str(err.value)


def test_oversize_counts_rendered_prompt() -> None:
    # "subject: s\nbody: <b>\ncustomer_tier: " = 9 + 1 + 1 + 6 + len(b) + 1 + 15
    overhead = len("subject: ") + len("body: ") + len("customer_tier: ") + 2 + 1
    table = pa.table({"subject": ["s", "s"], "body": ["é" * (100 - overhead), "é" * (101 - overhead)]})
    reasons = _run(_validator(max_row_chars=100, on_invalid_rows="skip"), table)
    assert reasons[0].to_pylist() == [
        None, "rendered row has 101 characters, over max_row_chars=100"]


def test_skip_mode_returns_reasons() -> None:
    subject = ["s", None, "s", None, "s"]
    body = ["b", "b", None, None, "b"]
    reasons = _run(_validator(on_invalid_rows="skip"), _tickets(5, subject=subject, body=body), batch_size=5)
    assert reasons[0].type == pa.string()
    assert reasons[0].to_pylist() == [
        None,
        "subject: null in a required field",
        "body: null in a required field",
        "subject: null in a required field; body: null in a required field",
        None,
    ]


def test_integer_field_from_float_column() -> None:
    v = _validator(LEADS, on_invalid_rows="skip")
    table = pa.table({"message": ["a", "b", "c", "d", "e"],
                      "employees": [10.0, None, 2.5, float("nan"), float("inf")]})
    (reasons,) = _run(v, table, batch_size=5)
    assert reasons.to_pylist() == [None, None, "employees: not a whole number", None,
                                   "employees: not a whole number"]
    sent = v.cast_for_submit(table.to_batches()[0].slice(0, 2).append_column(ROW_ID, pa.array([0, 1])),
                             keep=[ROW_ID])
    assert sent.schema == pa.schema([("message", pa.string()), ("employees", pa.int64()), (ROW_ID, pa.int64())])
    assert sent.to_pylist() == [{"message": "a", "employees": 10, ROW_ID: 0},
                                {"message": "b", "employees": None, ROW_ID: 1}]


def test_cast_for_submit_is_safe_on_invalid_rows() -> None:
    v = _validator(LEADS, on_invalid_rows="skip")
    table = pa.table({"message": ["a", None, "c"], "employees": pa.array([2.5, 3.0, 1e30])})
    (reasons,) = _run(v, table, batch_size=5)
    assert reasons.to_pylist() == ["employees: not a whole number", "message: null in a required field",
                                   "employees: not a whole number"]
    assert v.cast_for_submit(table.to_batches()[0]).to_pylist() == [
        {"message": "a", "employees": None}, {"message": None, "employees": 3},
        {"message": "c", "employees": None}]
    big = pa.table({"message": ["a", "b"], "employees": pa.array([1, 2**63], pa.uint64())})
    with pytest.raises(SutroInputError, match="column 'employees': too large for a 64-bit integer at row 1"):
        _run(_validator(LEADS), big)
    assert v.cast_for_submit(big.to_batches()[0])["employees"].to_pylist() == [1, None]


def test_nan_in_required_number_field() -> None:
    v = InputValidator("f", [InputField(name="x", type="number")])
    with pytest.raises(SutroInputError, match=r"column 'x': NaN in a required field at row 1\b"):
        _run(v, pa.table({"x": [1.0, float("nan")]}))


def test_strings_cast_from_other_types() -> None:
    v = InputValidator("f", [InputField(name="x"), InputField(name="y"), InputField(name="z")])
    import datetime as dt

    table = pa.table({"x": [1, 2], "y": [1.5, 3.0], "z": [dt.date(2024, 1, 2), None]})
    (batch,) = table.to_batches()
    with pytest.raises(SutroInputError, match="column 'z': null in a required field at row 1"):
        _run(v, table)
    sent = v.cast_for_submit(batch)
    assert sent.to_pylist() == [{"x": "1", "y": "1.5", "z": "2024-01-02"}, {"x": "2", "y": "3", "z": None}]


# -- ids ----------------------------------------------------------------------------------------


def test_duplicate_ids_named_with_rows() -> None:
    ids = [f"t{i}" for i in range(20)]
    ids[12] = "t3"
    ids[17] = "t3"
    ids[19] = "t5"
    v = _validator(id_column="ticket_id")
    with pytest.raises(SutroInputError) as err:
        _run(v, _tickets(20, ticket_id=ids), batch_size=6)
    assert str(err.value) == (
        "id_column 'ticket_id' has duplicate values: 't3' (rows 3, 12, 17); 't5' (rows 5, 19)"
    )


def test_duplicate_integer_ids_more_than_five() -> None:
    v = _validator(id_column="id")
    with pytest.raises(SutroInputError, match=r"duplicate values: 0 \(rows 0, 10\);.* and 2 more"):
        _run(v, _tickets(20, id=[i % 10 if i < 17 else i for i in range(20)]))


def test_null_ids_fail_even_in_skip_mode() -> None:
    v = _validator(id_column="id", on_invalid_rows="skip")
    with pytest.raises(SutroInputError, match="id_column 'id' is null at rows 5, 7"):
        _run(v, _tickets(8, id=[0, 1, 2, 3, 4, None, 6, None]))


def test_unique_ids_pass() -> None:
    v = _validator(id_column="id")
    _run(v, _tickets(10, id=pa.array([f"x{i}" for i in range(10)]).dictionary_encode()))


def test_string_view_and_large_string_columns() -> None:
    v = _validator(max_row_chars=40, on_invalid_rows="skip")
    table = pa.table({"subject": pa.array(["a", "b"], pa.string_view()),
                      "body": pa.array(["ok", "x" * 40], pa.large_string())})
    (reasons,) = _run(v, table)
    assert reasons.to_pylist()[0] is None and reasons.to_pylist()[1].startswith("rendered row has")
    sent = v.cast_for_submit(table.to_batches()[0])
    assert sent.schema == pa.schema([("subject", pa.string()), ("body", pa.string())])
