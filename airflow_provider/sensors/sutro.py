"""Wait for Sutro jobs submitted elsewhere (another DAG, a notebook, the Sutro UI)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf
from airflow.sdk.bases.sensor import BaseSensorOperator

from airflow_provider.exceptions import (
    SutroJobCancelledException,
    SutroJobFailedException,
    SutroJobPollException,
    SutroJobTimeoutException,
    SutroTriggerEventError,
)
from airflow_provider.hooks.sutro import SutroHook
from airflow_provider.triggers.sutro import EVENT_STATUSES, SutroJobTrigger
from sutro_providers.client.models import JobStatus

if TYPE_CHECKING:
    from airflow.sdk import Context


class SutroJobSensor(BaseSensorOperator):
    """Succeed when every job is SUCCEEDED; fail as soon as one is FAILED or CANCELLED.

    The sensor never cancels the jobs (it does not own them). In deferrable mode
    the waiting happens in :class:`~airflow_provider.triggers.sutro.SutroJobTrigger`
    with an absolute deadline of the sensor's ``timeout``; a timeout raises
    :class:`~airflow_provider.exceptions.SutroJobTimeoutException` (no retry is
    useful then: raise ``retries`` only if the jobs may still finish). Nothing is
    pushed to XCom; the return value is ``{job_id: status}``.

    :param job_ids: one job id or a list (templated, e.g. an upstream XCom).
    :param sutro_conn_id: connection of type ``sutro``.
    :param deferrable: wait on the triggerer (default ``[operators] default_deferrable``).
    :param max_consecutive_errors: failed polls in a row tolerated by the trigger.
    """

    template_fields: Sequence[str] = ("job_ids",)
    ui_color = "#e8e0ff"

    def __init__(
        self,
        *,
        job_ids: str | list[str],
        sutro_conn_id: str = SutroHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_consecutive_errors: int = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_ids = job_ids
        self.sutro_conn_id = sutro_conn_id
        self.deferrable = deferrable
        self.max_consecutive_errors = max_consecutive_errors

    def _ids(self) -> list[str]:
        ids = [self.job_ids] if isinstance(self.job_ids, str) else list(self.job_ids or [])
        if not ids:
            raise ValueError("job_ids is empty")
        return [str(j) for j in ids]

    def poke(self, context: Context) -> bool:
        ids = self._ids()
        with SutroHook(self.sutro_conn_id).get_client() as client:
            statuses = {j: client.job_status(j) for j in ids}
        self.log.info("Sutro job status: %s", {j: s.value for j, s in statuses.items()})
        for job_id, status in statuses.items():
            if status is JobStatus.FAILED:
                raise SutroJobFailedException(f"Sutro job {job_id} FAILED", [job_id])
            if status in (JobStatus.CANCELLED, JobStatus.CANCELLING):
                raise SutroJobCancelledException(f"Sutro job {job_id} was cancelled", [job_id])
        return all(s is JobStatus.SUCCEEDED for s in statuses.values())

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):  # already finished: no deferral
            return {j: JobStatus.SUCCEEDED.value for j in self._ids()}
        self.defer(
            trigger=SutroJobTrigger(
                job_ids=self._ids(), sutro_conn_id=self.sutro_conn_id,
                deadline=time.time() + float(self.timeout), poll_interval=float(self.poke_interval),
                max_poll_interval=max(float(self.poke_interval), 60.0),
                max_consecutive_errors=self.max_consecutive_errors,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, str]:
        if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
            raise SutroTriggerEventError(f"unexpected Sutro trigger event: {event!r}")
        job_ids, message = list(event.get("job_ids") or []), str(event.get("message") or "")
        exc = {
            "failed": SutroJobFailedException, "cancelled": SutroJobCancelledException,
            "timeout": SutroJobTimeoutException, "error": SutroJobPollException,
        }.get(event["status"])
        if exc is not None:
            raise exc(message, job_ids)
        return dict(event.get("statuses") or {})
