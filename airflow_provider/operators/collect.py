"""Land the results of a submit-only batch task: the third task of the two-task pattern."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider.exceptions import (
    SutroConfigurationException,
    SutroTransientException,
    as_airflow_exceptions,
)
from airflow_provider.hooks.sutro import SutroHook, SutroHookMixin
from airflow_provider.identity import task_run_identity
from airflow_provider.run_plan import RunPlan
from airflow_provider.sql import destination_loader, land_partition
from sutro_providers.landing import Loader, staged_output
from sutro_providers.waiting.outcome import JobOutcome
from sutro_providers.waiting.polling import wait_for_jobs

if TYPE_CHECKING:
    from airflow.sdk import Context


class SutroCollectResultsOperator(SutroHookMixin, BaseOperator):
    """Download, verify and land the results of a ``wait_for_completion=False`` run.

    The two-task pattern (as ``DbtCloudRunJobOperator(wait_for_termination=False)``
    with ``DbtCloudJobRunSensor``, then a task that reads the results)::

        submit = SutroBatchFunctionOperator(task_id="submit", ..., wait_for_completion=False)
        wait = SutroJobSensor(task_id="wait", submit_task_id="submit", deferrable=True)
        land = SutroCollectResultsOperator(task_id="land", submit_task_id="submit")
        submit >> wait >> land

    Everything it needs (the run identity, the Function, ``output_uri``, the
    destination table and partition...) is the plan the submit task wrote next to
    its run's ledger (:mod:`airflow_provider.run_plan`), found by the submit task's
    run identity (same DAG run and map index) on the staging location of
    ``sutro_conn_id`` / ``staging_url``: pass the same ones as the submit task.

    The jobs must have succeeded (the sensor waits for that): jobs still running
    raise a retryable :class:`~airflow_provider.exceptions.SutroTransientException`
    (nothing is cancelled); failed or cancelled ones raise their exception. The
    results are verified (every submitted row exactly once), joined, written to
    ``output_uri`` and the destination partition replaced, exactly as the batch
    operator does after its own wait; a retry collects again (idempotent). An empty
    input replaces the partition with no rows; an estimate-only run has nothing to
    land. Returns the run manifest (XCom ``return_value``).

    :param submit_task_id: the submit-only task (templated).
    :param sutro_conn_id: connection of type ``sutro`` (where the plan is staged).
    :param staging_url: overrides the connection's ``staging_url`` (templated).
    """

    template_fields: Sequence[str] = ("submit_task_id", "staging_url")
    ui_color = "#e8e0ff"

    def __init__(self, *, submit_task_id: str, sutro_conn_id: str = SutroHook.default_conn_name,
                 staging_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.submit_task_id, self.sutro_conn_id, self.staging_url = submit_task_id, sutro_conn_id, staging_url

    def destination_loader(self, conn_id: str) -> Loader:
        """The loader of the destination connection (override as on the batch operator)."""
        return destination_loader(conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        with as_airflow_exceptions():
            return self._collect(context, self._plan(context))

    def _plan(self, context: Context) -> RunPlan:
        identity = task_run_identity(context["ti"], self.submit_task_id)
        plan = RunPlan.load(self.pipeline.area, identity)
        if plan is None:
            raise SutroConfigurationException(
                f"task {self.submit_task_id!r} left no run plan in this DAG run: it must be a "
                "SutroBatchFunctionOperator with wait_for_completion=False that ran before this task, "
                "on the same sutro_conn_id and staging_url")
        return plan

    def _collect(self, context: Context, plan: RunPlan) -> dict[str, Any]:
        from sutro_providers.pipeline import is_empty  # loaded with the pipeline, not at DAG parse time

        identity, submitted = plan.identity, plan.submitted()
        if submitted.state == "estimated":
            self.log.info("run %s was estimate-only: nothing to land", identity.short)
            return submitted.to_json_dict()
        storage = (staged_output(self.pipeline.area, identity)[1] if plan.output_staged
                   else self.hook.storage_options() if plan.options.get("output_uri") else {})
        options = plan.enrichment_options(storage)
        if submitted.state == "submitted":
            waited = wait_for_jobs(self.pipeline.client, submitted.job_ids, deadline=0)  # one status read
            if waited.outcome is JobOutcome.TIMEOUT:
                raise SutroTransientException(
                    f"Sutro job(s) {', '.join(submitted.job_ids)} have not finished: wait for them with "
                    f"SutroJobSensor(submit_task_id={self.submit_task_id!r}) before this task", submitted.job_ids)
            self.pipeline.check(waited, identity, options)
        result = self.pipeline.collect(identity, options, materialize=False, submitted=submitted)
        manifest = result.manifest
        if plan.destination_table and plan.destination_conn_id:
            uri = None if is_empty(manifest) else manifest.output_uri or options.output_uri
            land_partition(self.destination_loader(plan.destination_conn_id), plan.destination_table, uri,
                           partition=plan.partition_value or plan.run_id, partition_column=plan.partition_column,
                           columns=plan.destination_columns, storage_options=options.output_storage_options,
                           batch_size=plan.insert_chunk_size or options.batch_size, log=self.log)
        self.log.info("Sutro run %s: %s rows enriched, cost %s USD, output %s", identity.short, manifest.rows_out,
                      manifest.cost_usd, manifest.output_uri)
        return manifest.to_json_dict()
