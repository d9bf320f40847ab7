"""E2E DAG: one deferrable task, run by ``airflow tasks test`` (its trigger runs in line).

The test SIGKILLs the first ``airflow tasks test`` while the task is deferred; the
next one resumes the task instance into ``execute_complete`` without an event and
must reattach to the job already submitted.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from tests.airflow.dags.e2e_common import DEFERRED_TRIAGE

with DAG(dag_id="sutro_e2e_resume", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SutroBatchFunctionOperator(**DEFERRED_TRIAGE)
