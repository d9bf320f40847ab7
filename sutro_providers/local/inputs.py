"""Validate a ``POST /v1/batch-inference`` body and normalise its inputs.

The result is a :class:`JobPlan`: the public job record, the private run
config and an Arrow table of inputs that is written to ``inputs.parquet``
before the job id is returned (so a restart can re-run the job). Function
rows are rendered to text columns here, one per declared input, so JSON,
CSV and Parquet rows of the same values give the same prompt.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.function_spec import FunctionSpec
from sutro_providers.local.download import column_names, download, read_columns, redact_url
from sutro_providers.local.errors import ApiError
from sutro_providers.local.models import KNOWN_MODELS
from sutro_providers.local.render import is_missing, render_column, render_object_row, render_values
from sutro_providers.local.settings import ServerSettings
from sutro_providers.local.store import new_job_id, now_iso

PROMPT_COLUMN = "__prompt__"
ID_COLUMN = "__id__"
RESERVED_RESULT_COLUMNS = frozenset({"outputs", "inputs", "cumulative_logprobs", "confidence_score"})
DEFAULT_SAMPLING = {"temperature": 0.7, "top_p": 1.0, "max_tokens": 4096}


@dataclass
class JobPlan:
    """A validated job, ready to be stored and queued."""

    record: dict[str, Any]
    config: dict[str, Any]
    table: pa.Table


def parse_body(raw: bytes) -> dict[str, Any]:
    """Lenient JSON (bare ``NaN`` tokens allowed); must be an object."""
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return body


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", f"{field}: {message}")


def _opt(body: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = body.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(key, f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _sampling(value: Any) -> dict[str, Any]:
    if value is None:
        return dict(DEFAULT_SAMPLING)
    if not isinstance(value, dict):
        raise _bad("sampling_params", "must be an object")
    for key, val in value.items():
        if val is not None and not isinstance(val, (int, float, bool)):
            raise _bad(f"sampling_params.{key}", "must be a number, a boolean or null")
    return {**DEFAULT_SAMPLING, **value}


def _row_kind(inputs: list[Any]) -> str:
    first = "string" if isinstance(inputs[0], str) else "object"
    for i, row in enumerate(inputs):
        kind = "string" if isinstance(row, str) else "object" if isinstance(row, dict) else None
        if kind is None:
            raise _bad(f"inputs[{i}]", "each row must be a string or an object")
        if kind != first:
            raise _bad(f"inputs[{i}]", f"mixes {kind} rows with {first} rows")
    return first


def _function_rows(spec: FunctionSpec, rows: list[dict[str, Any]]) -> pa.Table:
    for i, row in enumerate(rows):
        for field in spec.required_inputs:
            if is_missing(row.get(field.name)):
                raise ApiError(
                    422, "invalid_input", f"inputs[{i}]: required field {field.name!r} is missing or null"
                )
    return pa.table({n: render_values([r.get(n) for r in rows]) for n in spec.input_names})


def _url_table(
    url: str,
    spec: FunctionSpec | None,
    column: str | None,
    id_column: str | None,
    scratch: Path,
) -> pa.Table:
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        path = download(url, Path(tmp) / "inputs.bin")
        names = column_names(path)
        if id_column is not None and id_column not in names:
            raise ApiError(422, "missing_column", f"id_column_name {id_column!r} is not a column of the inputs file")
        if spec is not None:
            for field in spec.required_inputs:
                if field.name not in names:
                    raise ApiError(422, "missing_column", f"inputs file has no column {field.name!r} (required by {spec.name})")
            wanted = [n for n in spec.input_names if n in names]
        else:
            if not names:
                raise ApiError(422, "missing_column", "inputs file has no columns")
            if column is not None and column not in names:
                raise ApiError(422, "missing_column", f"column_name {column!r} is not a column of the inputs file")
            wanted = [column or names[0]]
        read = list(dict.fromkeys([*wanted, *([id_column] if id_column else [])]))
        table = read_columns(path, read, as_text=wanted)
    cols: dict[str, pa.Array] = {}
    if spec is not None:
        for field in spec.inputs:
            if field.name not in table.column_names:
                cols[field.name] = pa.repeat(pa.scalar("", pa.string()), table.num_rows)
                continue
            raw = table[field.name]
            if field.required and raw.null_count:
                row = pc.index(pc.is_null(raw), True).as_py()
                raise ApiError(422, "invalid_input", f"inputs[{row}]: required field {field.name!r} is null")
            cols[field.name] = render_column(raw)
    else:
        cols[PROMPT_COLUMN] = render_column(table[wanted[0]])
    if id_column is not None:
        cols[ID_COLUMN] = table[id_column].combine_chunks()
    return pa.table(cols)


def plan_job(
    body: dict[str, Any], functions: dict[str, FunctionSpec], settings: ServerSettings
) -> JobPlan:
    """Validate the body, fetch URL inputs and build the job plan (raises ApiError)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "is required")
    name = _opt(body, "name", str)
    if name is not None and len(name) > 45:
        raise _bad("name", "must be at most 45 characters")
    description = _opt(body, "description", str)
    if description is not None and len(description) > 512:
        raise _bad("description", "must be at most 512 characters")
    priority = _opt(body, "job_priority", int, 0)
    if isinstance(priority, bool) or priority not in (0, 1):
        raise _bad("job_priority", "must be 0 or 1")
    estimate = bool(_opt(body, "cost_estimate", bool, False))
    seed_per_input = bool(_opt(body, "random_seed_per_input", bool, False))
    truncate_rows = bool(_opt(body, "truncate_rows", bool, False))
    json_schema = _opt(body, "json_schema", dict)
    system_prompt = _opt(body, "system_prompt", str)
    sampling = _sampling(body.get("sampling_params"))
    column = _opt(body, "column_name", str)
    id_column = _opt(body, "id_column_name", str)
    spec = None if model in KNOWN_MODELS else functions.get(model)
    if model not in KNOWN_MODELS and spec is None:
        raise ApiError(404, "function_not_found", f"model {model!r} is neither a known model nor a published Function")

    inputs = body.get("inputs")
    is_url = isinstance(inputs, str) and inputs.startswith(("http://", "https://"))
    if isinstance(inputs, str) and inputs.startswith("dataset-"):
        raise _bad("inputs", "dataset inputs are not supported; pass rows or an http(s) URL")
    if (column is not None or id_column is not None) and not is_url:
        raise _bad("column_name" if column is not None else "id_column_name", "is only allowed with URL inputs")
    if column is not None and spec is not None:
        raise _bad("column_name", "is not used with Functions (columns must match the Function inputs)")
    if id_column is not None and id_column in RESERVED_RESULT_COLUMNS:
        raise _bad("id_column_name", f"{id_column!r} clashes with a result column")

    if is_url:
        scratch = settings.data_dir / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        table = _url_table(str(inputs), spec, column, id_column, scratch)
        source = redact_url(str(inputs))
    elif isinstance(inputs, list) and inputs:
        kind = _row_kind(inputs)
        if kind == "string":
            table = pa.table({PROMPT_COLUMN: pa.array(inputs, type=pa.string())})
        elif spec is not None:
            table = _function_rows(spec, inputs)
        else:
            table = pa.table({PROMPT_COLUMN: pa.array([render_object_row(r, list(r)) for r in inputs])})
        source = "rows"
    else:
        raise _bad("inputs", "must be a non-empty list of strings/objects or an http(s) URL")

    quota = settings.quotas[priority]
    if settings.enforce_quotas and table.num_rows > quota.row_quota:
        raise ApiError(400, "quota_exceeded", f"{table.num_rows} rows exceed the priority {priority} row quota of {quota.row_quota}")

    job_id = new_job_id()
    record = {
        "job_id": job_id, "status": "QUEUED", "model": model,
        "system_prompt": system_prompt if spec is None else spec.system_prompt,
        "job_priority": priority, "datetime_created": now_iso(), "json_schema": json_schema,
        "sampling_params": sampling, "name": name, "description": description,
        "num_rows": table.num_rows, "run_type": "COST_ESTIMATE" if estimate else "FULL",
    }  # fmt: skip
    config = {
        "function": spec.name if spec is not None else None,
        "id_column": id_column,
        "source": source,
        "cost_estimate": estimate,
        "random_seed_per_input": seed_per_input,
        "truncate_rows": truncate_rows,
        "fail": None,
        "hold": False,
    }
    return JobPlan(record=record, config=config, table=table)
