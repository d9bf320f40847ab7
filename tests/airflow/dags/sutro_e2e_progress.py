"""E2E DAG: one task waiting on the worker and one deferred, polling every 0.5 s with a
progress line every 0.4 s; the test holds each job for 3 poll rounds and reads the
progress lines of the task's wait and of the trigger's."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from tests.airflow.dags.e2e_common import DEFERRED_TRIAGE

with DAG(dag_id="sutro_e2e_progress", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    for deferrable in (False, True):
        task_id = "deferred" if deferrable else "on_worker"
        SutroBatchFunctionOperator(**{
            **DEFERRED_TRIAGE,
            "task_id": task_id,
            "output_uri": f"{DEFERRED_TRIAGE['output_uri'].removesuffix('.parquet')}-{task_id}.parquet",
            "deferrable": deferrable,
            "max_poll_interval": 0.5,
            "progress_interval": "{{ 0.4 }}",  # templated
        })
