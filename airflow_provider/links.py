"""Operator extra link "Sutro job", pointing at the deployment's page of the run's job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

XCOM_JOB_IDS = "sutro_job_ids"
XCOM_JOB_URL = "sutro_job_url"


class SutroJobLink(BaseOperatorLink):
    """Reads the ``sutro_job_url`` XCom pushed by the operator right after submit.

    Airflow 3 evaluates links on the worker when the task ends and stores them
    under :attr:`xcom_key`; the operator also pushes that key right after submit
    so the link works while the task is deferred.
    """

    name = "Sutro job"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=XCOM_JOB_URL)
        return url if isinstance(url, str) else ""
