"""E2E DAG: the task process SIGKILLs itself right after submit + XCom push on try 1.

Try 2 must reattach to the job try 1 submitted (one Sutro job for the run) and
land the complete output.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from tests.airflow.dags.e2e_common import DEFERRED_TRIAGE


class CrashAfterSubmit(SutroBatchFunctionOperator):
    def _push_job_xcoms(self, context: Any, job_ids: list[str]) -> None:
        super()._push_job_xcoms(context, job_ids)
        if context["ti"].try_number == 1:
            self.log.warning("e2e: killing the task process after submitting %s", job_ids)
            os.kill(os.getpid(), signal.SIGKILL)


with DAG(dag_id="sutro_e2e_crash", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    CrashAfterSubmit(**DEFERRED_TRIAGE, retries=1, retry_delay=timedelta(seconds=1))
