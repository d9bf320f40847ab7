"""The batch operator's deferrable path: submit, defer to the trigger, resume.

:class:`BatchDeferral` is the layer of
:class:`~airflow_provider.operators.batch.SutroBatchFunctionOperator` that waits on
the triggerer instead of the worker: :meth:`~BatchDeferral._submit_and_defer`
submits (or reattaches through the ledger) and defers to
:class:`~airflow_provider.triggers.sutro.SutroJobTrigger` unless every job already
ended; :meth:`~BatchDeferral.execute_complete` checks the trigger's event and
collects on the worker; the cost-estimate jobs of ``max_cost_usd`` are waited for
the same way (:meth:`~BatchDeferral.execute_estimated`). A resume without an event
goes back to the run's ledger in the same attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider.exceptions import as_airflow_exceptions, describe_run_failure
from airflow_provider.operators.batch_outputs import BatchOutputs
from airflow_provider.triggers.sutro import SutroJobTrigger, parse_event
from sutro_providers.waiting.outcome import JobOutcome
from sutro_providers.waiting.polling import WaitResult, deadline_from, wait_for_jobs

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sutro_providers.identity import RunIdentity
    from sutro_providers.manifest import Manifest
    from sutro_providers.options import EnrichmentOptions


class BatchDeferral(BatchOutputs):
    """Deferral and resume of the batch operator (see the module docstring)."""

    def _defer_on_estimate(self, manifest: Manifest) -> None:
        """Wait for the cost-estimate jobs on the triggerer, then run :meth:`execute` again."""
        self.log.info("Sutro run: waiting for cost-estimate job(s) %s", ", ".join(manifest.estimate_job_ids))
        self.defer(
            trigger=SutroJobTrigger(
                job_ids=manifest.estimate_job_ids, sutro_conn_id=self.sutro_conn_id,
                poll_interval=min(self.poll_interval, 5.0), max_poll_interval=self.max_poll_interval,
                max_consecutive_errors=self.max_consecutive_poll_errors, cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_estimated",
        )

    def execute_estimated(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """After the cost-estimate jobs: the task goes on as :meth:`execute` (the input is
        read again and checked against the ledger; the estimate jobs are not created
        again; a failed estimate raises the cost-limit error)."""
        if event is not None:
            self.log.info("cost-estimate job(s) ended: %s", event.get("status"))
        return self.execute(context)

    def _submit_and_defer(self, context: Context, identity: RunIdentity, options: EnrichmentOptions,
                          source: Any = None) -> dict[str, Any]:
        """The deferrable path: submit (or reattach through the ledger), then complete
        inline when nothing is left to wait for, else defer to the trigger."""
        source = self.source() if source is None else source
        manifest = self.pipeline.submit(source, identity, options, source_storage_options=self._source_storage(),
                                        wait_for_estimate=False)
        if manifest.state == "estimating":  # max_cost_usd: the estimate jobs run
            self._defer_on_estimate(manifest)
        self._submitted(context, identity, manifest)
        if manifest.state != "submitted":  # empty input, every row skipped, or completed by an earlier try
            collected = self.pipeline.collect(identity, options, materialize=False, submitted=manifest)
            return self._land(context, identity, collected)
        # One status read: if every job already ended (e.g. a retry after the jobs
        # finished), complete inline instead of deferring.
        now = wait_for_jobs(self.pipeline.client, manifest.job_ids, deadline=0)
        if now.outcome is not JobOutcome.TIMEOUT:
            return self._complete(context, identity, options, now)
        self.defer(
            trigger=SutroJobTrigger(
                job_ids=manifest.job_ids, sutro_conn_id=self.sutro_conn_id, deadline=deadline_from(options.timeout),
                poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval,
                max_consecutive_errors=self.max_consecutive_poll_errors, cancel_on_kill=self.cancel_on_kill,
                progress_interval=options.progress_interval, progress_stream=options.progress_stream,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Collect after the trigger's event, or raise the Airflow exception of its outcome.

        Resumed without an event (the trigger's event was lost: the process that waited
        on it, e.g. ``airflow tasks test``, was killed, and a later attempt starts in this
        method), the run goes back to its ledger in this same attempt: the submit step
        reattaches to the jobs already paid for (nothing is resubmitted), then the task
        completes at once if they ended or defers again. Any other payload that is not a
        trigger event raises :class:`~airflow_provider.exceptions.SutroTriggerEventError`."""
        with as_airflow_exceptions(describe_run_failure):
            return self._execute_complete(context, event)

    def _execute_complete(self, context: Context, event: dict[str, Any] | None) -> dict[str, Any]:
        if event is None:
            self.log.warning("resumed without a Sutro trigger event; reattaching to the run's jobs through its ledger")
            return self._submit_and_defer(context, self.identity(context), self.build_options())
        waited = parse_event(event)
        if waited.statuses and self.sutro_job_url is None:  # resumed after deferring: the link's URL
            self.sutro_job_url = self.hook.job_url(next(iter(waited.statuses)))
        return self._complete(context, self._identity or self.identity(context), self.build_options(), waited)

    def _complete(self, context: Context, identity: RunIdentity, options: EnrichmentOptions,
                  waited: WaitResult) -> dict[str, Any]:
        self.pipeline.check(waited, identity, options)  # cancels on timeout when asked
        self.log.info("Sutro job(s) %s succeeded; collecting results", ", ".join(waited.statuses))
        return self._land(context, identity, self.pipeline.collect(identity, options,
                                                                   materialize=False))

