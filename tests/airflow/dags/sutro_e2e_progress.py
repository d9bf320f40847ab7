"""E2E DAG: one task waiting on the worker and one deferred, polling every 0.5 s with a
progress line every second; the test holds each job for 3 poll rounds and reads the
progress lines from the task log and from the trigger log."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator

with DAG(dag_id="sutro_e2e_progress", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    for deferrable in (False, True):
        SutroBatchFunctionOperator(
            task_id="deferred" if deferrable else "on_worker",
            function_name="ticket-triage",
            sql="SELECT id, subject, body, customer_tier FROM support_tickets ORDER BY id",
            conn_id="sutro_source_db",
            id_column="id",
            output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/e2e/{{ run_id }}-{{ task.task_id }}.parquet",
            deferrable=deferrable,
            poll_interval=0.5,
            max_poll_interval=0.5,
            progress_interval="{{ 0.4 }}",  # templated
        )
