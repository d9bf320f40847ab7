"""E2E DAG: a ``@task.sutro`` task mapped over three tiers; map index 1 SIGKILLs its
own process right after submit + XCom push, once (a marker file next to the
metadata DB remembers it: a try may also fail before it runs on a loaded machine).

Try 2 of map index 1 must reattach to the job try 1 submitted: three Sutro jobs for
the run, one per map index, and every tier's output landed.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import task_decorator_factory
from airflow.sdk import DAG

from airflow_provider.decorators.sutro import SutroDecoratedOperator


class CrashAfterSubmit(SutroDecoratedOperator):
    def _push_job_xcoms(self, context: Any, job_ids: list[str]) -> None:
        super()._push_job_xcoms(context, job_ids)
        marker = Path(os.environ["AIRFLOW_HOME"]) / "killed-map-index-1"
        if context["ti"].map_index == 1 and not marker.exists():
            marker.touch()
            self.log.warning("e2e: killing map index 1 after submitting %s", job_ids)
            os.kill(os.getpid(), signal.SIGKILL)


def crashing_sutro_task(python_callable: Any = None, **kwargs: Any) -> Any:
    """``@task.sutro`` with the operator above."""
    return task_decorator_factory(python_callable=python_callable, multiple_outputs=False,
                                  decorated_operator_class=CrashAfterSubmit, **kwargs)


with DAG(dag_id="sutro_e2e_mapped", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @crashing_sutro_task(
        function_name="ticket-triage",
        conn_id="sutro_source_db",
        id_column="id",
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/mapped/{{ run_id }}/{{ ti.map_index }}.parquet",
        deferrable=True,
        poll_interval=0.5,
        max_poll_interval=1,
        retries=3,
        retry_delay=timedelta(seconds=1),
    )
    def tickets(tier: str) -> str:
        return f"SELECT id, subject, body, customer_tier FROM support_tickets WHERE customer_tier = '{tier}' ORDER BY id"

    tickets.expand(tier=["free", "pro", "enterprise"])
