"""E2E DAG: one deferrable task whose task instance the test runs in two
``airflow tasks test`` processes at once (a worker that looks dead but is not, and
its replacement). ``SUTRO_E2E_ON_CONCURRENT_ATTEMPT`` sets ``on_concurrent_attempt``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from tests.airflow.dags.e2e_common import DEFERRED_TRIAGE

with DAG(dag_id="sutro_e2e_twice", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    SutroBatchFunctionOperator(
        **DEFERRED_TRIAGE,
        options={"on_concurrent_attempt": os.environ.get("SUTRO_E2E_ON_CONCURRENT_ATTEMPT", "wait")},
    )
