"""Daily support-ticket triage with a Sutro batch Function.

Every day, the tickets created during the data interval are read from the
``support_tickets`` table (connection ``sutro_source_db``: SQLite or PostgreSQL),
classified by the ``ticket-triage`` Function (see ``example_dags/functions``) in
one deferrable batch run, landed as Parquet next to the staging area, and written
to ``support_tickets_triaged``. A retry or a re-run of the same day reattaches to
the Sutro job it already paid for and replaces that day's rows: it never
duplicates them.

Connections, configured the Airflow way (environment variables or the UI)::

    export AIRFLOW_CONN_SUTRO_DEFAULT='{"conn_type": "sutro", "host": "https://acme.sutro.sh",
        "password": "sk_...", "extra": {"staging_url": "s3://my-bucket/sutro", "aws_conn_id": "aws_staging"}}'
    export AIRFLOW_CONN_AWS_STAGING='{"conn_type": "aws", "login": "AKIA...", "password": "...",
        "extra": {"region_name": "eu-west-1"}}'
    export AIRFLOW_CONN_SUTRO_SOURCE_DB='{"conn_type": "postgres", "host": "db", "login": "etl",
        "password": "...", "schema": "support", "port": 5432}'
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_provider.operators.batch import SutroBatchFunctionOperator

SOURCE_CONN_ID = "sutro_source_db"
# How often the triggerer polls the job at first (it backs off to 10 minutes).
POLL_INTERVAL = float(os.environ.get("SUTRO_EXAMPLE_POLL_INTERVAL", "30"))
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

TICKETS_OF_THE_INTERVAL = """
SELECT id, subject, body, customer_tier, created_at
FROM support_tickets
WHERE created_at >= '{{ data_interval_start.strftime("%Y-%m-%d %H:%M:%S") }}'
  AND created_at <  '{{ data_interval_end.strftime("%Y-%m-%d %H:%M:%S") }}'
ORDER BY id
"""

with DAG(
    dag_id="sutro_ticket_enrichment",
    description="Classify yesterday's support tickets with the ticket-triage Sutro Function",
    # A data-interval timetable: the run of day D reads [D, D+1) (a plain "@daily"
    # gives start == end in Airflow 3).
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["sutro", "example"],
) as dag:
    create_destination = SQLExecuteQueryOperator(
        task_id="create_destination_table",
        conn_id=SOURCE_CONN_ID,
        sql=CREATE_DESTINATION,
    )

    # [START howto_operator_sutro_batch]
    triage = SutroBatchFunctionOperator(
        task_id="triage_tickets",
        function_name="ticket-triage",
        sutro_conn_id="sutro_default",
        sql=TICKETS_OF_THE_INTERVAL,
        conn_id=SOURCE_CONN_ID,
        id_column="id",
        # Named by the day of the data: with this interval timetable {{ ds }} is the
        # day the run starts, one day after the tickets it reads.
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/enriched/support_tickets/"
                   "{{ data_interval_start | ds }}.parquet",
        destination_table=DESTINATION_TABLE,
        destination_conn_id=SOURCE_CONN_ID,
        destination_columns=["id", "subject", "customer_tier", "created_at", "label", "rationale", "confidence"],
        # The rows of one data interval are replaced as a unit: retries and re-runs
        # of the same day never duplicate them.
        partition_column="interval_start",
        partition_value="{{ data_interval_start | ds }}",
        job_priority=1,
        description="support ticket triage {{ data_interval_start | ds }}",
        timeout=6 * 3600,
        poll_interval=POLL_INTERVAL,
        max_poll_interval=600,
        deferrable=True,
    )
    # [END howto_operator_sutro_batch]

    create_destination >> triage
