"""Run a Sutro Function over a table as batch job(s), deferrable, idempotent across retries.

:class:`SutroBatchFunctionOperator` is built in layers, one concern a module:
:mod:`~airflow_provider.operators.batch_arguments` (the arguments, their validation,
the run's options and input), :mod:`~airflow_provider.operators.batch_outputs`
(XCom, destination table, asset events, lineage) and
:mod:`~airflow_provider.operators.batch_deferral` (defer to the trigger, resume);
this module holds the operator, its documentation and its ``execute`` (the wait on
the worker, submit only, estimate only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider.exceptions import as_airflow_exceptions, describe_run_failure
from airflow_provider.operators.batch_deferral import BatchDeferral
from airflow_provider.operators.submit_only import write_plan
from sutro_providers.inputs.sources import SourceReader

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sutro_providers.identity import RunIdentity
    from sutro_providers.options import EnrichmentOptions


class SutroBatchFunctionOperator(BatchDeferral):
    """Enrich a table with a published Sutro Function, as one or more batch jobs.

    Input (exactly one): ``input_uri`` (Parquet/CSV on any fsspec storage, read with
    the connection's storage options), ``input_data`` (a small list of dicts, e.g. an
    upstream task's XCom) or ``sql`` run on ``conn_id`` (any common.sql database).
    Output: ``output_uri`` (Parquet) and/or ``destination_table`` on
    ``destination_conn_id``. Destination rows carry ``partition_value`` (default:
    the Airflow run id; a daily DAG passes its data interval) in
    ``partition_column``; each attempt deletes that partition's rows and inserts the
    new ones in a single transaction (see :mod:`airflow_provider.sql`), so retries,
    clears and re-runs of an interval never duplicate rows. The rows are bulk-loaded
    from the enriched Parquet batch by batch (PostgreSQL ``COPY``, SQLite/DuckDB
    natively, ``executemany`` for other drivers): ``output_uri``, or
    ``<staging>/runs/<run>/enriched.parquet`` when only a table is asked for.

    **Pre-flight.** Before anything is submitted (and paid for) the destination
    table must exist with every column to insert and ``partition_column``, or the
    task fails naming the table and the missing columns, with no job;
    ``create_destination_table=True`` creates a missing table from the enriched
    schema instead. A ``sql`` source is streamed (ADBC or ``fetchmany``), never
    fetched whole.

    **Retries.** The run is identified by ``dag_id``, ``task_id``, ``run_id`` and
    ``map_index`` (never the try number). The pipeline keeps a ledger next to the
    staged input, so a retry, a killed worker or a lost deferral reattaches to the
    jobs already submitted (or, when the run completed over the same input, read and
    fingerprinted again, returns its manifest) instead of paying for new ones. If the input changed between attempts the task fails
    (``on_input_change="resubmit"`` starts over and cancels the old jobs).

    **XCom.** ``sutro_job_ids`` (list of job ids) and ``sutro_job_url`` (the first
    job's page, also shown as the "Sutro job" extra link) are pushed right after
    submit; the return value is the run manifest (row counts, usage, cost, job
    ids, output location), small and free of secrets and signed URLs. Results
    never go through XCom.

    **Deferrable** (``deferrable=True``, default ``[operators] default_deferrable``):
    the jobs are polled by :class:`~airflow_provider.triggers.sutro.SutroJobTrigger`
    on the triggerer; downloads happen on the worker in ``execute_complete``. If
    every job is already finished no deferral happens. ``timeout`` (or, when
    unset, ``execution_timeout``) becomes an absolute deadline the trigger itself
    enforces, so a timeout cancels the jobs (``cancel_on_timeout``) before failing;
    Airflow's own deferral timeout would skip ``execute_complete``. Killing a
    deferred task cancels its jobs through the trigger's ``on_kill`` (Airflow 3.3+);
    killing a running one through :meth:`on_kill` (both only with ``cancel_on_kill``).
    With ``max_cost_usd`` (or ``estimate_only``) the wait for the cost-estimate jobs
    defers to the trigger as well, then the task submits the run job(s) on a worker.

    **Submit only** (``wait_for_completion=False``): submit (or reattach), push the
    job ids, write the run plan next to the ledger, return the manifest (state
    ``submitted``). Then :class:`~airflow_provider.sensors.sutro.SutroJobSensor`
    (``submit_task_id=``, deferrable) waits and
    :class:`~airflow_provider.operators.collect.SutroCollectResultsOperator`
    (``submit_task_id=``) lands the results in ``output_uri`` / ``destination_table``
    (see :mod:`airflow_provider.run_plan`). Nothing is cancelled when the submitting
    task ends.

    **Estimate only** (``estimate_only=True``): validate and stage the input, run
    the free cost-estimate jobs, return the manifest (state ``estimated``,
    ``cost_estimate_usd``); no run job is created.

    **Failures.** Errors a retry cannot fix (bad input, cost limit, configuration,
    authentication, input changed, destination schema, results that do not account
    for every row) raise ``AirflowFailException`` subclasses: no retry, whatever
    ``retries`` says. The others keep Airflow's retries (see
    :mod:`airflow_provider.exceptions`).

    :param function_name: the published Sutro Function (templated).
    :param sutro_conn_id: connection of type ``sutro``.
    :param input_uri: URI of the input Parquet/CSV (templated).
    :param input_data: list of row dicts (templated; XComArg welcome).
    :param sql: query whose rows are the input (templated, ``.sql`` files allowed).
    :param conn_id: the database connection of ``sql``.
    :param parameters: query parameters of ``sql``.
    :param output_uri: where to write the enriched table as Parquet (templated). A
        literal URI (no Jinja) is also declared as an Airflow Asset outlet; a
        templated one gets an asset event at run time through ``asset_alias``.
    :param destination_table: table that receives the enriched rows (templated);
        its asset URI (e.g. ``postgres://host:5432/db/public/table``) gets an asset
        event through ``asset_alias`` (see :mod:`airflow_provider.assets`).
    :param asset_alias: name of the ``AssetAlias`` outlet the run-time asset events go
        through (default ``sutro/<dag_id>/<task_id>`` when ``output_uri`` is templated
        or ``destination_table`` is set); schedule a downstream DAG on it.
    :param destination_conn_id: the database connection of ``destination_table``.
    :param destination_columns: columns to insert (default: all of the enriched table).
    :param partition_column: destination column identifying the rows this task owns.
    :param partition_value: its value (templated; default: the run id).
    :param create_destination_table: create a missing ``destination_table`` from the
        enriched schema (before submitting) instead of failing.
    :param insert_chunk_size: rows per batch read from the enriched Parquet for the
        load (default: ``options.batch_size``, 65,536).
    :param staging_url: overrides the connection's ``staging_url`` (templated).
    :param job_priority: 0 (prototyping) or 1 (production) (templated).
    :param sampling_params: model sampling parameters, numbers/booleans (templated;
        rendered strings such as ``"0.2"`` become numbers).
    :param random_seed_per_input: give each row its own random seed (Batch API).
    :param truncate_rows: cut rows longer than the model's context window instead of
        failing the job (Batch API).
    :param description: job description shown in Sutro (templated).
    :param max_cost_usd: refuse to submit when the cost estimate is above it.
    :param max_rows_per_job: split the input into jobs of at most this many rows.
    :param poll_interval: first poll interval, seconds (grows to ``max_poll_interval``).
    :param max_poll_interval: longest poll interval, seconds.
    :param max_consecutive_poll_errors: failed polls in a row tolerated.
    :param progress_interval: seconds between progress lines in the task log (or, deferred,
        the trigger log): rows done / total, percent, elapsed, ETA, tokens and cost so far;
        a line also at every status change, and a heartbeat line every interval even when
        ``max_poll_interval`` is longer (templated; default 60).
    :param progress_stream: read the jobs' progress streams for rows done while waiting (one
        connection per job, at most 8, on the worker or the triggerer); off: polls only.
    :param timeout: seconds to wait for the jobs from the moment they are submitted.
    :param cancel_on_timeout: cancel the jobs when ``timeout`` passes.
    :param deferrable: wait on the triggerer instead of the worker.
    :param wait_for_completion: ``False``: submit, push the job ids and return (the
        two-task pattern above).
    :param cancel_on_kill: cancel the run's jobs when the task is killed (running or
        deferred).
    :param estimate_only: return the cost estimate manifest without running the job.
    :param on_invalid_rows: ``fail`` (nothing is submitted) or ``skip``.
    :param on_input_change: ``fail`` or ``resubmit`` when a retry sees a different input.
    :param id_column: an existing unique row id column (kept in the output).
    :param output_prefix: prefix for the result columns.
    :param incremental: submit only rows without a cached result (a content key per
        row; see :mod:`sutro_providers.incremental`): a re-run over unchanged rows pays
        nothing; the output keeps every row with ``sutro_reused``; the manifest reports
        ``rows_reused`` and ``cost_avoided_usd``.
    :param cache_version: part of the cache key (templated); change it to stop reusing
        results; required when the deployment does not publish the Function's spec.
    :param refresh: with ``incremental``, look nothing up (every row is paid) and cache the fresh results.
    :param options: more :class:`~sutro_providers.options.EnrichmentOptions` fields.
    """

    ui_color = "#e8e0ff"

    def execute(self, context: Context) -> dict[str, Any]:
        with as_airflow_exceptions(describe_run_failure):  # core errors -> retryable or not (exceptions.py)
            return self._execute(context)

    def _execute(self, context: Context) -> dict[str, Any]:
        identity, options = self.identity(context), self.build_options()
        source = self.source()
        try:
            self._preflight(source, options)  # before anything is paid for
        except BaseException:
            if isinstance(source, SourceReader):
                source.close()  # a refused SQL source holds its query open (and its table locks)
            raise
        if self.estimate_only or not self.wait_for_completion:
            return self._submit_only(context, identity, options, source)
        if not self.deferrable:  # the core's run, waiting on this worker
            result = self.pipeline.run(
                source, identity, options, source_storage_options=self._source_storage(),
                on_submitted=lambda manifest: self._submitted(context, identity, manifest),
                progress_log=self.log.info,
                materialize=False,
            )
            return self._land(context, identity, result)
        return self._submit_and_defer(context, identity, options, source)

    def _submit_only(self, context: Context, identity: RunIdentity, options: EnrichmentOptions,
                     source: Any) -> dict[str, Any]:
        """``estimate_only`` or ``wait_for_completion=False``: submit (or estimate), return."""
        manifest = self.pipeline.submit(source, identity, options, source_storage_options=self._source_storage(),
                                        estimate_only=self.estimate_only, wait_for_estimate=not self.deferrable)
        if manifest.state == "estimating":
            self._defer_on_estimate(manifest)
        self._submitted(context, identity, manifest)
        if self.estimate_only:
            self.log.info("Sutro run %s: estimated cost %s USD; no job was run", identity.short,
                          manifest.cost_estimate_usd)
        else:
            write_plan(self, identity, options, manifest)
        return manifest.to_json_dict()

    def on_kill(self) -> None:
        """Cancel the run's jobs when the running (not deferred) task is killed and
        ``cancel_on_kill`` is set (a deferred one: the trigger's ``on_kill``)."""
        if self._identity is None or not self.cancel_on_kill:
            return
        try:
            cancelled = self.pipeline.cancel(self._identity)
            self.log.info("Cancelled Sutro job(s) %s", cancelled)
        except Exception as exc:
            self.log.warning("Cancelling the Sutro jobs failed: %s", exc)
