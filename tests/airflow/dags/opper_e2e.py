"""E2E DAG: a Parquet table of tickets enriched through Opper (the local server),
landed as Parquet. Input and output paths come from OPPER_E2E_INPUT / OPPER_E2E_OUTPUT."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.opper import OpperFunctionOperator

with DAG(dag_id="opper_ticket_enrichment", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    OpperFunctionOperator(
        task_id="triage",
        function_name="ticket-triage",
        instructions="Classify the support ticket",
        input_schema={"type": "object", "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
                      "required": ["subject", "body"]},
        output_schema={"type": "object", "properties": {
            "label": {"type": "string", "enum": ["billing", "bug", "feature_request", "other"]},
            "urgent": {"type": "boolean"}}, "required": ["label", "urgent"]},
        model="openai/gpt-4o-mini",
        examples=[{"input": {"subject": "Refund", "body": "charged twice"}, "output": {"label": "billing", "urgent": False}}],
        input_uri=os.environ.get("OPPER_E2E_INPUT", "/nonexistent.parquet"),
        output_uri=os.environ.get("OPPER_E2E_OUTPUT", "/nonexistent-out.parquet"),
        id_column="ticket_id",
        concurrency=8,
        tags={"team": "support"},
    )
