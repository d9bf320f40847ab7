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

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from example_dags.airflow import ticket_common as tickets

with DAG(
    dag_id="sutro_ticket_enrichment",
    description="Classify yesterday's support tickets with the ticket-triage Sutro Function",
    **tickets.DAILY,  # daily data intervals, 2 retries (see ticket_common.py)
) as dag:
    create_destination = tickets.create_destination_table()

    # [START howto_operator_sutro_batch]
    triage = SutroBatchFunctionOperator(
        task_id="triage_tickets",
        function_name="ticket-triage",
        sutro_conn_id="sutro_default",
        sql=tickets.TICKETS_OF_THE_INTERVAL,
        conn_id=tickets.SOURCE_CONN_ID,
        id_column="id",
        # Named by the day of the data: with this interval timetable {{ ds }} is the
        # day the run starts, one day after the tickets it reads.
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/enriched/support_tickets/"
                   "{{ data_interval_start | ds }}.parquet",
        # support_tickets_triaged, the rows of one data interval replaced as a unit
        # (destination_table, destination_conn_id, destination_columns,
        # partition_column, partition_value): retries and re-runs never duplicate them.
        **tickets.INTERVAL_PARTITION,
        job_priority=1,
        description="support ticket triage {{ data_interval_start | ds }}",
        timeout=6 * 3600,
        poll_interval=tickets.POLL_INTERVAL,
        max_poll_interval=600,
        deferrable=True,
    )
    # [END howto_operator_sutro_batch]

    create_destination >> triage
