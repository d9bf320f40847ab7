"""E2E DAGs: a producer whose templated ``output_uri`` and destination table become
asset events at run time, a consumer scheduled on the producer's asset alias, and a
real-time task (``input_uri`` from SUTRO_E2E_REALTIME_INPUT) for OpenLineage."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, task

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from airflow_provider.operators.run_function import SutroRunFunctionOperator

with DAG(dag_id="sutro_e2e_assets_producer", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SutroBatchFunctionOperator(
        task_id="triage",
        function_name="ticket-triage",
        sql="SELECT id, subject, body, customer_tier FROM support_tickets ORDER BY id",
        conn_id="sutro_source_db",
        id_column="id",
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/assets/{{ ds }}.parquet",
        destination_table="tickets_triaged",
        destination_conn_id="sutro_source_db",
        destination_columns=["id", "subject", "label", "confidence"],
        create_destination_table=True,
        partition_column="day",
        partition_value="{{ ds }}",
        deferrable=True,
        poll_interval=0.5,
        max_poll_interval=1,
        retries=2,  # a try can fail before it runs on a loaded machine; a retry reattaches
        retry_delay=timedelta(seconds=1),
    )
    SutroRunFunctionOperator(
        task_id="realtime",
        function_name="ticket-triage",
        input_uri=os.environ.get("SUTRO_E2E_REALTIME_INPUT", "/nonexistent.parquet"),
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/assets/realtime-{{ ds }}.parquet",
        return_rows=False,
        retries=2,
        retry_delay=timedelta(seconds=1),
    )


with DAG(dag_id="sutro_e2e_assets_consumer", schedule=AssetAlias("sutro/sutro_e2e_assets_producer/triage"),
         start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def consume(triggering_asset_events: Any = None) -> list[str]:
        return sorted(a.uri for a in (triggering_asset_events or {}) if isinstance(a, Asset))  # keys: assets, aliases

    consume()
