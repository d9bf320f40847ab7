"""Which input columns each result column of an enrichment comes from, and what it means.

One answer for both orchestrators: the Airflow provider turns it into OpenLineage
``schema`` and ``columnLineage`` facets, the Dagster integration into
``dagster/column_schema`` descriptions and ``dagster/column_lineage``.

The rules:

* a column of the source table that the output keeps is its own lineage (identity);
* every result column a Function adds (its output fields, ``confidence``) is derived
  from all the input fields the Function reads: the model sees them together in one
  prompt, so no finer attribution is honest;
* ``sutro_skip_reason`` is derived from the same input fields (validation reads them).

Descriptions come from the Function spec when it publishes one (an output field's
JSON-schema ``description``, a classification's label set); otherwise a generic text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sutro_providers.collection.unpack import output_fields, result_columns
from sutro_providers.columns import CONFIDENCE, SKIP_REASON
from sutro_providers.function_spec import FunctionSpec


@dataclass(frozen=True)
class ResultColumn:
    """One column the enrichment adds: its name, a description and the input
    columns it is derived from (in the Function's declared input order)."""

    name: str
    description: str
    derived_from: tuple[str, ...]


def _descriptions(spec: FunctionSpec, function: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    if spec.kind == "classification":
        texts["label"] = f"Label chosen by the Sutro Function {function!r}, one of: {', '.join(spec.labels or ())}"
        texts["rationale"] = f"The model's reason for the label ({function!r})"
        return texts
    properties = (spec.output_schema or {}).get("properties", {})
    for field in output_fields(spec):
        prop = properties.get(field.name) or {}
        text = prop.get("description") if isinstance(prop, dict) else None
        texts[field.name] = str(text) if text else f"Field {field.name!r} extracted by the Sutro Function {function!r}"
    return texts


def result_column_lineage(function: str, spec: FunctionSpec | None, input_columns: Sequence[str], *,
                          prefix: str = "") -> list[ResultColumn]:
    """The columns ``function`` adds to a table, each with its description and the
    ``input_columns`` (the fields the Function reads) it is derived from.

    Without a published spec only ``confidence`` and ``sutro_skip_reason`` are known
    in advance; the output fields appear once the results are read."""
    inputs = tuple(input_columns)
    texts = _descriptions(spec, function) if spec is not None else {}
    columns: list[ResultColumn] = []
    for name in result_columns(spec, prefix=prefix):
        field = name[len(prefix):]
        if field == CONFIDENCE:
            text = f"The model's confidence in this row's output (0-1), Sutro Function {function!r}"
        else:
            text = texts.get(field, f"Output of the Sutro Function {function!r}")
        columns.append(ResultColumn(name, text, inputs))
    columns.append(ResultColumn(SKIP_REASON, "Why the row was not submitted (null when it was)", inputs))
    return columns


def column_lineage(function: str, spec: FunctionSpec | None, input_columns: Sequence[str],
                   kept_columns: Sequence[str], *, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Output column -> the source columns it comes from: each kept source column maps
    to itself, each added column to the Function's ``input_columns``."""
    lineage: dict[str, tuple[str, ...]] = {name: (name,) for name in kept_columns}
    lineage.update({c.name: c.derived_from for c in result_column_lineage(function, spec, input_columns, prefix=prefix)})
    return lineage


__all__ = ["ResultColumn", "column_lineage", "result_column_lineage"]
