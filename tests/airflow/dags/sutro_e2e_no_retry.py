"""E2E DAG: an input error (the rows lack the required ``body``) with ``retries=2``.

The error is not retryable: the task must fail on its first try (state ``failed``,
``try_number`` 1), never go ``up_for_retry``. No Sutro job exists, so nothing may look
for one: the task log must hold the input error and no error about a missing job-URL
XCom (the "Sutro job" extra link is evaluated when the task ends)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from tests.airflow.dags.e2e_common import BAD_INPUT_TRIAGE

with DAG(dag_id="sutro_e2e_no_retry", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SutroBatchFunctionOperator(**BAD_INPUT_TRIAGE, retries=2, retry_delay=timedelta(seconds=1))
