"""E2E DAG: the task fails before submitting (its rows lack the required ``body``).

No Sutro job exists, so nothing may look for one: the task log must hold the input
error and no error about a missing job-URL XCom (the "Sutro job" extra link is
evaluated when the task ends)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from tests.airflow.dags.e2e_common import BAD_INPUT_TRIAGE

with DAG(dag_id="sutro_e2e_bad_input", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SutroBatchFunctionOperator(**BAD_INPUT_TRIAGE, retries=0)
