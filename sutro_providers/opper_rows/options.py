"""What a caller chooses for one Opper run: every :class:`EnrichmentOptions` input
and output option (``function``, ``input_fields``, ``on_invalid_rows``,
``on_input_change``, ``id_column``, ``output_uri``, ``output_prefix``,
``keep_staged``, ``batch_size``...) plus the Opper call and its pacing.

The input fields come from ``input_fields`` or, failing that, from the
properties of ``input_schema``. ``on_concurrent_attempt`` and
``claim_lease_seconds`` govern the claim on calling a run's rows (one attempt at a
time: :mod:`~sutro_providers.opper_rows.run_record`). Sutro-only options
(``job_priority``, ``max_rows_per_job``, the poll settings...) are accepted and ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from fsspec.core import url_to_fs
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sutro_providers.errors import SutroConfigurationError, SutroInputError
from sutro_providers.function_spec import FieldType, FunctionSpec, InputField
from sutro_providers.options import EnrichmentOptions

TEXT_OUTPUT = "output"
"""The result column (after ``output_prefix``) of a function without an output schema."""


class FewShotExample(BaseModel):
    """One few-shot example sent with every call (``{comment?, input, output}``)."""

    model_config = ConfigDict(extra="forbid")

    input: Any
    output: Any
    comment: str | None = None


class OpperOptions(EnrichmentOptions):
    """One Opper run's choices (safe to log: no secrets).

    :param function: the Opper function name (``POST /v2/call``: created on first use
        with ``instructions``/schemas/``model``); or set ``function_id`` and
        ``revision_id`` (UUIDs) to call one pinned revision.
    :param output_schema: JSON Schema of the answer (``json_payload``); its
        properties become typed result columns. Without one the answer is text
        (``message``) in the column ``<output_prefix>output``.
    :param examples: few-shot examples; ``examples_file`` reads more from a JSON
        list, JSON lines or YAML list (any fsspec URL).
    :param tags: extra str→str tags on every call (the run identity and the row id
        are always added: ``sutro.run``, ``sutro.orchestrator``, ``sutro.<part>``, ``sutro.row``).
    :param concurrency: calls in flight at once.
    :param max_row_attempts: tries per row; 429s (after their ``Retry-After``) and,
        with ``retry_server_errors``, 5xx and dropped connections are retried. A
        retried 5xx or dropped call may have been billed by Opper.
    :param on_row_error: a row still failing after its tries: ``fail`` (default:
        no new rows are started, the run raises naming the rows; a retry calls only
        the rows without a recorded answer) or ``record`` (the row is kept with null
        results and the reason in ``sutro_skip_reason``; the run succeeds).
    :param journal_chunk_rows: answers per journal file (flushed at least every
        ``journal_flush_seconds``). A killed run calls again only the rows answered
        since the last flush and those in flight.
    """

    function_id: str | None = None
    revision_id: str | None = None
    instructions: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    model: str | dict[str, Any] | list[Any] | None = None
    examples: list[FewShotExample] = Field(default_factory=list)
    examples_file: str | None = None
    examples_storage_options: dict[str, Any] = Field(default_factory=dict, repr=False)
    tags: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(default=16, ge=1, le=256)
    max_row_attempts: int = Field(default=6, ge=1, le=50)
    retry_server_errors: bool = True
    call_timeout: float | None = Field(default=None, gt=0)
    on_row_error: Literal["fail", "record"] = "fail"
    journal_chunk_rows: int = Field(default=256, ge=1)
    journal_flush_seconds: float = Field(default=5.0, gt=0)
    max_reported_errors: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _pinned(self) -> OpperOptions:
        if (self.function_id is None) != (self.revision_id is None):
            raise ValueError("set both function_id and revision_id (a pinned v2 revision) or neither")
        return self

    def input_field_list(self) -> list[InputField]:
        """``input_fields``, else the properties of ``input_schema`` (in order)."""
        if self.input_fields is not None:
            return self.input_fields
        props = (self.input_schema or {}).get("properties")
        if not isinstance(props, dict) or not props:
            raise SutroInputError(
                f"Opper function {self.function!r}: pass input_fields= or an input_schema with properties, "
                "so the table can be checked before any call"
            )
        required = set((self.input_schema or {}).get("required", props))
        fields = []
        for name, prop in props.items():
            kind = prop.get("type", "string") if isinstance(prop, dict) else "string"
            if isinstance(kind, list):
                kind = next((k for k in kind if k != "null"), "string")
            ftype = FieldType(kind) if kind in {t.value for t in FieldType} else FieldType.STRING
            fields.append(InputField(name=name, type=ftype, required=name in required))
        return fields

    def output_spec(self) -> FunctionSpec:
        """The output as a spec the collect path types columns with: the output
        schema's properties, or one text column ``output``."""
        schema = self.output_schema if (self.output_schema or {}).get("properties") else {
            "type": "object", "properties": {TEXT_OUTPUT: {"type": "string"}}, "required": [TEXT_OUTPUT]}
        safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in self.function).lstrip("_.-") or "opper"
        return FunctionSpec(name=safe[:128], kind="extraction", inputs=self.input_field_list(), output_schema=schema)

    @property
    def structured(self) -> bool:
        return bool((self.output_schema or {}).get("properties"))

    def all_examples(self) -> list[dict[str, Any]]:
        """``examples`` then those of ``examples_file``, as request dicts."""
        found = [e.model_dump(exclude_none=True) for e in self.examples]
        if self.examples_file:
            found += [FewShotExample.model_validate(e).model_dump(exclude_none=True)
                      for e in load_examples(self.examples_file, self.examples_storage_options)]
        return found


def load_examples(uri: str, storage_options: dict[str, Any] | None = None) -> list[Any]:
    """Few-shot examples from a JSON list, JSON lines (``.jsonl``) or YAML list file."""
    try:
        fs, path = url_to_fs(uri, **(storage_options or {}))
        with fs.open(path, "rt", encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, ValueError) as exc:
        raise SutroConfigurationError(f"cannot read examples_file {uri}: {type(exc).__name__}: {exc}") from None
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".jsonl":
            data: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SutroConfigurationError(f"examples_file {uri} is not valid {suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if not isinstance(data, list):
        raise SutroConfigurationError(f"examples_file {uri} must hold a list of {{input, output}} objects")
    return data
