"""Published Function specs: the typed contract between a table and a Sutro Function.

A Function has ordered, typed input fields and either a classification output
(one label from a fixed set, with a confidence) or an extraction output (several
fields described by a JSON schema). The local server publishes specs from YAML or
JSON files; the pipeline validates input tables against them before any job is
submitted. Real Sutro deployments do not expose specs over the wire, so callers
can also declare the input fields themselves (``input_fields=``).

Example YAML (see ``example_dags/functions/``)::

    name: ticket-triage
    kind: classification
    inputs:
      - {name: subject, type: string}
      - {name: body, type: string}
      - {name: customer_tier, type: string, required: false}
    labels: [billing, bug, feature_request, account, other]
    default_model: qwen-3.5-27b
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class FieldType(StrEnum):
    """Scalar types a Function input field may declare."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


class InputField(BaseModel):
    """One declared input of a Function, in declared (prompt) order."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: FieldType = FieldType.STRING
    required: bool = True
    description: str | None = None


class FunctionSpec(BaseModel):
    """A published Sutro Function: name, typed inputs, output shape, pricing."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str | None = None
    kind: Literal["classification", "extraction"]
    inputs: list[InputField] = Field(min_length=1)
    labels: list[str] | None = None
    output_schema: dict[str, Any] | None = None
    system_prompt: str | None = None
    default_model: str = "qwen-3.5-27b"
    price_per_million_input_tokens: float = Field(default=0.10, ge=0)
    price_per_million_output_tokens: float = Field(default=0.40, ge=0)

    @model_validator(mode="after")
    def _check_output_shape(self) -> FunctionSpec:
        names = [f.name for f in self.inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Function {self.name!r} declares input fields twice: {duplicates}")
        if self.kind == "classification":
            if not self.labels or len(set(self.labels)) != len(self.labels):
                raise ValueError(
                    f"classification Function {self.name!r} needs a non-empty list of distinct labels"
                )
        else:
            props = (self.output_schema or {}).get("properties")
            if not isinstance(props, dict) or not props:
                raise ValueError(
                    f"extraction Function {self.name!r} needs output_schema with object properties"
                )
        return self

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @property
    def required_inputs(self) -> list[InputField]:
        return [f for f in self.inputs if f.required]

    @property
    def output_fields(self) -> list[str]:
        """Top-level keys of each output object, in order."""
        if self.kind == "classification":
            return ["label", "rationale"]
        return list((self.output_schema or {}).get("properties", {}))


def load_function_spec(path: str | Path) -> FunctionSpec:
    """Read one spec from a ``.yaml``/``.yml``/``.json`` file."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    return FunctionSpec.model_validate(data)


def load_function_specs(directory: str | Path) -> dict[str, FunctionSpec]:
    """Read every spec file in a folder, keyed by Function name."""
    specs: dict[str, FunctionSpec] = {}
    for p in sorted(Path(directory).iterdir()):
        if p.suffix in {".yaml", ".yml", ".json"} and p.is_file():
            spec = load_function_spec(p)
            if spec.name in specs:
                raise ValueError(f"Function {spec.name!r} is defined twice in {directory}")
            specs[spec.name] = spec
    return specs
