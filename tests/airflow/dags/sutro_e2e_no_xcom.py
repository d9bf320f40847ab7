"""E2E DAG: the two-task pattern with ``do_xcom_push=False`` on the submit task.

The submit task pushes nothing; the sensor finds the job through the run's ledger
(the submit task's run identity) and the collect task lands the rows from the run
plan staged next to the ledger."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from airflow_provider.operators.collect import SutroCollectResultsOperator
from airflow_provider.sensors.sutro import SutroJobSensor

with DAG(dag_id="sutro_e2e_no_xcom", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    submit = SutroBatchFunctionOperator(
        task_id="submit",
        function_name="ticket-triage",
        sql="SELECT id, subject, body, customer_tier FROM support_tickets ORDER BY id",
        conn_id="sutro_source_db",
        id_column="id",
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/e2e/no_xcom.parquet",
        wait_for_completion=False,
        do_xcom_push=False,
    )
    wait = SutroJobSensor(task_id="wait", submit_task_id="submit", deferrable=True, poke_interval=0.5, timeout=300)
    land = SutroCollectResultsOperator(task_id="land", submit_task_id="submit")
    submit >> wait >> land
