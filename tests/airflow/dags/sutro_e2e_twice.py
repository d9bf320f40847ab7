"""E2E DAG: one deferrable task whose task instance the test runs in two
``airflow tasks test`` processes at once (a worker that looks dead but is not, and
its replacement). ``SUTRO_E2E_ON_CONCURRENT_ATTEMPT`` sets ``on_concurrent_attempt``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator

with DAG(dag_id="sutro_e2e_twice", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
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
        options={"on_concurrent_attempt": os.environ.get("SUTRO_E2E_ON_CONCURRENT_ATTEMPT", "wait")},
    )
