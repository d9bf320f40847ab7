"""E2E DAG: one deferrable task, run by ``airflow tasks test`` (its trigger runs in line).

The test SIGKILLs the first ``airflow tasks test`` while the task is deferred; the
next one resumes the task instance into ``execute_complete`` without an event and
must reattach to the job already submitted.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator

with DAG(dag_id="sutro_e2e_resume", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SutroBatchFunctionOperator(
        task_id="triage",
        function_name="ticket-triage",
        sql="SELECT id, subject, body, customer_tier FROM support_tickets ORDER BY id",
        conn_id="sutro_source_db",
        id_column="id",
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/e2e/{{ run_id }}.parquet",
        deferrable=True,
        poll_interval=0.5,
        max_poll_interval=1,
    )
