"""max_row_chars counts characters, not bytes: the validator measures bytes first
(from the offsets alone) and counts characters only when bytes exceed the limit."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sutro_providers.errors import SutroInputError
from sutro_providers.function_spec import FieldType, InputField
from sutro_providers.inputs.validation import InputValidator

FIELDS = [InputField(name="subject", type=FieldType.STRING), InputField(name="body", type=FieldType.STRING)]
STRING = pa.string()
OVERHEAD = len("subject: ") + len("body: ") + 1  # what the rendered prompt adds around the values


def _check(bodies: list[str], limit: int, mode: str = "fail", kind: pa.DataType = STRING) -> pa.Array | None:
    table = pa.table({"subject": pa.array(["s"] * len(bodies), kind), "body": pa.array(bodies, kind)})
    validator = InputValidator("f", FIELDS, max_row_chars=limit, on_invalid_rows=mode)  # type: ignore[arg-type]
    validator.check_schema(table.schema)
    return validator.check_batch(table.to_batches()[0], 0)


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_multibyte_text_over_the_limit_in_bytes_but_not_in_characters_passes(kind: pa.DataType) -> None:
    body = "é" * 60  # 120 bytes, 60 characters
    assert _check([body, "plain"], limit=60 + 1 + OVERHEAD, kind=kind) is None


def test_multibyte_text_over_the_limit_in_characters_is_named_with_its_character_count() -> None:
    reasons = _check(["é" * 60, "ü" * 61], limit=60 + 1 + OVERHEAD, mode="skip")
    assert reasons is not None
    assert reasons.to_pylist() == [None, f"rendered row has {62 + OVERHEAD} characters, over max_row_chars={61 + OVERHEAD}"]
    with pytest.raises(SutroInputError, match=rf"at row 1 \({62 + OVERHEAD} characters, 61 in column 'body'\)"):
        _check(["é" * 60, "ü" * 61], limit=60 + 1 + OVERHEAD)
