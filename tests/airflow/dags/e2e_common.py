"""What the e2e DAGs share: the triage task's source and a fast poll, and the triage
task over rows that lack a required field.

(Imported by the DAG files; it defines no DAG itself.)"""

from __future__ import annotations

from typing import Any

TRIAGE_SQL = "SELECT id, subject, body, customer_tier FROM support_tickets ORDER BY id"

DEFERRED_TRIAGE: dict[str, Any] = {
    "task_id": "triage",
    "function_name": "ticket-triage",
    "sql": TRIAGE_SQL,
    "conn_id": "sutro_source_db",
    "id_column": "id",
    "output_uri": "{{ conn.sutro_default.extra_dejson.staging_url }}/e2e/{{ run_id }}.parquet",
    "deferrable": True,
    "poll_interval": 0.5,
    "max_poll_interval": 1,
}
"""The keyword arguments of a deferrable triage task over the e2e source table."""

BAD_INPUT_TRIAGE: dict[str, Any] = {
    "task_id": "triage",
    "function_name": "ticket-triage",
    "sql": "SELECT id, subject, customer_tier FROM support_tickets ORDER BY id",  # no body: an input error
    "conn_id": "sutro_source_db",
    "id_column": "id",
    "deferrable": True,
}
"""The keyword arguments of a triage task whose rows lack the required ``body``: it
fails before anything is submitted."""
