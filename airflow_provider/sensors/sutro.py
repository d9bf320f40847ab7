"""Wait for Sutro jobs: submitted elsewhere (another DAG, a notebook, the Sutro UI), or
by a submit-only :class:`~airflow_provider.operators.batch.SutroBatchFunctionOperator`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf
from airflow.sdk.bases.sensor import BaseSensorOperator

from airflow_provider.exceptions import SutroConfigurationException, airflow_exception, as_airflow_exceptions
from airflow_provider.hooks.sutro import SutroHook
from airflow_provider.identity import map_index_of, task_run_identity
from airflow_provider.links import XCOM_JOB_IDS
from airflow_provider.run_plan import RunPlan
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

    **After a submit-only task** (``SutroBatchFunctionOperator(wait_for_completion=False)``)
    pass ``submit_task_id`` instead of ``job_ids``: the jobs are that task's
    ``sutro_job_ids`` XCom (same DAG run and map index) or, when it pushed none
    (``do_xcom_push=False``), the ones its run's ledger records (found by its run
    identity on the staging location of ``sutro_conn_id`` / ``staging_url``). A run
    without jobs (empty input, estimate only) succeeds at once. Then
    :class:`~airflow_provider.operators.collect.SutroCollectResultsOperator` lands the
    results.

    :param job_ids: one job id or a list (templated, e.g. an upstream XCom).
    :param submit_task_id: the submit-only task whose jobs to wait for (templated).
    :param staging_url: overrides the connection's ``staging_url`` (with ``submit_task_id``).
    :param sutro_conn_id: connection of type ``sutro``.
    :param deferrable: wait on the triggerer (default ``[operators] default_deferrable``).
    :param max_consecutive_errors: failed polls in a row tolerated by the trigger.
    """

    template_fields: Sequence[str] = ("job_ids", "submit_task_id", "staging_url")
    ui_color = "#e8e0ff"

    def __init__(
        self,
        *,
        job_ids: str | list[str] | None = None,
        submit_task_id: str | None = None,
        staging_url: str | None = None,
        sutro_conn_id: str = SutroHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_consecutive_errors: int = MAX_CONSECUTIVE_POLL_ERRORS,
        **kwargs: Any,
    ) -> None:
        if (job_ids is None) == (submit_task_id is None):
            raise ValueError("pass exactly one of job_ids or submit_task_id")
        super().__init__(**kwargs)
        self.job_ids, self.submit_task_id, self.staging_url = job_ids, submit_task_id, staging_url
        self.sutro_conn_id = sutro_conn_id
        self.deferrable = deferrable
        self.max_consecutive_errors = max_consecutive_errors

    def _ids(self, context: Context) -> list[str]:
        if self.submit_task_id is not None:
            return self._submitted_ids(context)
        ids = [self.job_ids] if isinstance(self.job_ids, str) else list(self.job_ids or [])
        if not ids:
            raise ValueError("job_ids is empty")
        return [str(j) for j in ids]

    def _submitted_ids(self, context: Context) -> list[str]:
        """The jobs of the submit-only task: its XCom, else its run's ledger."""
        ti = context["ti"]
        pulled = ti.xcom_pull(task_ids=self.submit_task_id, key=XCOM_JOB_IDS, map_indexes=map_index_of(ti))
        if pulled:
            return [str(j) for j in pulled]
        identity = task_run_identity(ti, str(self.submit_task_id))
        with as_airflow_exceptions():
            pipeline = SutroHook(self.sutro_conn_id, staging_url=self.staging_url).get_pipeline()
            ids = pipeline.job_ids(identity)
            plan = RunPlan.load(pipeline.area, identity) if not ids else None
        if ids:
            self.log.info("Sutro job(s) of task %s from its run's ledger: %s", self.submit_task_id, ids)
            return ids
        if plan is not None:  # submitted without jobs: empty input, estimate only, nothing to wait for
            self.log.info("task %s submitted no Sutro job (%s): nothing to wait for", self.submit_task_id,
                          plan.manifest.get("state"))
            return []
        raise SutroConfigurationException(
            f"task {self.submit_task_id!r} of this DAG run has no Sutro run (no sutro_job_ids XCom, no ledger on "
            "the staging location): is it a SutroBatchFunctionOperator with wait_for_completion=False upstream "
            "of this sensor, on the same connection and staging_url?")

    def poke(self, context: Context) -> bool:
        """One read of every job, decided as every wait decides (:class:`~sutro_providers.waiting.polling.PollState`)."""
        ids = self._ids(context)
        if not ids:
            return True
        with as_airflow_exceptions(), SutroHook(self.sutro_conn_id).get_client() as client:
            done = poll_once(client, ids,
                             on_progress=lambda p: self.log.info("Sutro job %s: %s", p.job_id, p.status.value))
        if done is not None:
            _raise_for(done)
        return done is not None

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        ids = self._ids(context)
        if self.poke(context):  # already finished: no deferral
            return {j: JobStatus.SUCCEEDED.value for j in ids}
        self.defer(
            trigger=SutroJobTrigger(
                job_ids=ids, sutro_conn_id=self.sutro_conn_id, cancel_on_kill=False,  # not the sensor's jobs
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
        raise airflow_exception(error)
