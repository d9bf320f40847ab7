"""What the ticket-triage example DAGs share (imported by them; defines no DAG).

The daily schedule and its retries, the source connection and the first poll
interval, the query of a data interval's tickets, and the destination table with
one partition per data interval.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import CronDataIntervalTimetable

SOURCE_CONN_ID = "sutro_source_db"
"""The database of ``support_tickets`` (SQLite or PostgreSQL); the destination table lives there too."""

POLL_INTERVAL = float(os.environ.get("SUTRO_EXAMPLE_POLL_INTERVAL", "30"))
"""How often the job is polled at first, in seconds (it backs off to ``max_poll_interval``)."""

DAILY: dict[str, Any] = {
    # A data-interval timetable: the run of day D reads [D, D+1) (a plain "@daily"
    # gives start == end in Airflow 3).
    "schedule": CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    "start_date": datetime(2026, 11, 1),
    "catchup": False,
    "max_active_runs": 1,
    # A retry reattaches to the Sutro job it already paid for.
    "default_args": {"retries": 2, "retry_delay": timedelta(seconds=30)},
    "tags": ["sutro", "example"],
}
"""The ``DAG`` arguments of a daily example."""

TICKETS_OF_THE_INTERVAL = """
SELECT id, subject, body, customer_tier, created_at
FROM support_tickets
WHERE created_at >= '{{ data_interval_start.strftime("%Y-%m-%d %H:%M:%S") }}'
  AND created_at <  '{{ data_interval_end.strftime("%Y-%m-%d %H:%M:%S") }}'
ORDER BY id
"""
"""The tickets created during the run's data interval (``sql``, templated)."""

DESTINATION_TABLE = "support_tickets_triaged"

CREATE_DESTINATION = f"""
CREATE TABLE IF NOT EXISTS {DESTINATION_TABLE} (
    id INTEGER,
    subject TEXT,
    customer_tier TEXT,
    created_at TEXT,
    label TEXT,
    rationale TEXT,
    confidence REAL,
    interval_start TEXT
)
"""


def create_destination_table() -> SQLExecuteQueryOperator:
    """The task that creates ``support_tickets_triaged`` if it is missing (in the DAG being defined)."""
    return SQLExecuteQueryOperator(task_id="create_destination_table", conn_id=SOURCE_CONN_ID, sql=CREATE_DESTINATION)


INTERVAL_PARTITION: dict[str, Any] = {
    "destination_table": DESTINATION_TABLE,
    "destination_conn_id": SOURCE_CONN_ID,
    "destination_columns": ["id", "subject", "customer_tier", "created_at", "label", "rationale", "confidence"],
    # The rows of one data interval are replaced as a unit: retries and re-runs of
    # the same day never duplicate them.
    "partition_column": "interval_start",
    "partition_value": "{{ data_interval_start | ds }}",
}
"""The batch operator's destination arguments: the enriched rows of the interval in
``support_tickets_triaged``, one partition per data interval."""
