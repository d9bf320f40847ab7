"""Wait for Sutro jobs submitted elsewhere (another DAG, a notebook, the Sutro UI)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf
from airflow.sdk.bases.sensor import BaseSensorOperator

from airflow_provider.exceptions import airflow_exception
from airflow_provider.hooks.sutro import SutroHook
from airflow_provider.triggers.sutro import SutroJobTrigger, parse_event
from sutro_providers.client.models import JobStatus
from sutro_providers.options import MAX_CONSECUTIVE_POLL_ERRORS, MAX_POLL_INTERVAL
from sutro_providers.waiting.polling import WaitResult, poll_once

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
        max_consecutive_errors: int = MAX_CONSECUTIVE_POLL_ERRORS,
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
        """One read of every job, decided as every wait decides (:class:`~sutro_providers.waiting.polling.PollState`)."""
        with SutroHook(self.sutro_conn_id).get_client() as client:
            done = poll_once(client, self._ids(),
                             on_progress=lambda p: self.log.info("Sutro job %s: %s", p.job_id, p.status.value))
        if done is not None:
            _raise_for(done)
        return done is not None

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):  # already finished: no deferral
            return {j: JobStatus.SUCCEEDED.value for j in self._ids()}
        self.defer(
            trigger=SutroJobTrigger(
                job_ids=self._ids(), sutro_conn_id=self.sutro_conn_id,
                deadline=time.time() + float(self.timeout), poll_interval=float(self.poke_interval),
                max_poll_interval=max(float(self.poke_interval), MAX_POLL_INTERVAL),
                max_consecutive_errors=self.max_consecutive_errors,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, str]:
        waited = parse_event(event)
        _raise_for(waited)
        return {j: str(s) for j, s in waited.statuses.items()}


def _raise_for(waited: WaitResult) -> None:
    """The Airflow exception of a wait that did not succeed (the core's error, through the table)."""
    error = waited.error()
    if error is not None:
        raise airflow_exception(error) or error
