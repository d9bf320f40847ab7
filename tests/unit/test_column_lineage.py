"""The core's column lineage: what each result column is and which inputs it comes from."""

from __future__ import annotations

from pathlib import Path

from sutro_providers.column_lineage import column_lineage, result_column_lineage
from sutro_providers.function_spec import load_function_spec

FUNCTIONS = Path(__file__).resolve().parents[2] / "example_dags" / "functions"


def test_classification_columns_derive_from_every_input_field() -> None:
    spec = load_function_spec(FUNCTIONS / "ticket_triage.yaml")
    columns = result_column_lineage("ticket-triage", spec, spec.input_names)
    assert [c.name for c in columns] == ["label", "confidence", "rationale", "sutro_skip_reason"]
    assert all(c.derived_from == ("subject", "body", "customer_tier") for c in columns)
    assert "billing, bug, feature_request, account, other" in columns[0].description


def test_extraction_descriptions_come_from_the_output_schema() -> None:
    spec = load_function_spec(FUNCTIONS / "lead_extractor.yaml")
    by_name = {c.name: c for c in result_column_lineage("lead-extractor", spec, ["message"], prefix="lead_")}
    assert list(by_name) == ["lead_company", "lead_seniority", "lead_intent_score", "lead_wants_demo",
                             "lead_confidence", "sutro_skip_reason"]
    assert by_name["lead_company"].description == "The company the lead works for."
    assert "'seniority'" in by_name["lead_seniority"].description


def test_kept_columns_are_their_own_lineage_and_no_spec_knows_only_confidence() -> None:
    lineage = column_lineage("f", None, ["subject"], ["ticket_id", "subject"])
    assert lineage == {"ticket_id": ("ticket_id",), "subject": ("subject",),
                       "confidence": ("subject",), "sutro_skip_reason": ("subject",)}
