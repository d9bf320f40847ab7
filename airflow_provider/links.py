"""Operator extra link "Sutro job", pointing at the deployment's page of the run's job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

XCOM_JOB_IDS = "sutro_job_ids"
XCOM_JOB_URL = "sutro_job_url"
JOB_URL_ATTRIBUTE = "sutro_job_url"
"""The attribute in which an operator with this link keeps the job URL it pushed (``None``: no job)."""


class SutroJobLink(BaseOperatorLink):
    """The deployment's page of the run's first job; empty while there is no job.

    Airflow 3 evaluates links on the worker when the task ends and stores them
    under :attr:`xcom_key`; the operator also pushes that key right after submit
    so the link works while the task is deferred. The operator that ran knows its
    job URL (``sutro_job_url``: ``None`` when it failed before submitting), so no
    XCom is read then: a read of a missing XCom logs an error ("XCom not found")
    although nothing is wrong. Any other caller reads the ``sutro_job_url`` XCom.
    """

    name = "Sutro job"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        if hasattr(operator, JOB_URL_ATTRIBUTE):
            known = getattr(operator, JOB_URL_ATTRIBUTE)
            return known if isinstance(known, str) else ""
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=XCOM_JOB_URL)
        return url if isinstance(url, str) else ""
