"""Run a Sutro Function over a table as batch job(s), deferrable, idempotent across retries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.common.compat.sdk import conf
from airflow.sdk import Asset, AssetAlias, BaseOperator
from pydantic import ValidationError

from airflow_provider import assets
from airflow_provider.exceptions import SutroConfigurationException, as_airflow_exceptions
from airflow_provider.hooks.sutro import SutroHook
from airflow_provider.links import XCOM_JOB_IDS, XCOM_JOB_URL, SutroJobLink
from airflow_provider.operators.submit_only import native_number, native_params, write_plan
from airflow_provider.sql import destination_loader, land_partition, preflight, read_sql
from airflow_provider.triggers.sutro import SutroJobTrigger, parse_event
from sutro_providers.errors import SutroJobError
from sutro_providers.identity import RunIdentity
from sutro_providers.inputs.sources import SourceReader, open_source
from sutro_providers.landing import Loader, enriched_schema, staged_output
from sutro_providers.options import (
    MAX_CONSECUTIVE_POLL_ERRORS,
    MAX_POLL_INTERVAL,
    POLL_INTERVAL,
    PROGRESS_INTERVAL,
    EnrichmentOptions,
)
from sutro_providers.waiting.outcome import JobOutcome, outcome_of
from sutro_providers.waiting.polling import WaitResult, deadline_from, wait_for_jobs

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sutro_providers.manifest import Manifest
    from sutro_providers.pipeline import EnrichmentPipeline, EnrichmentResult


def _describe(exc: SutroJobError) -> str:
    """The message of a failed run's Airflow exception: each job's status, then the reason."""
    outcome = outcome_of(exc)
    if outcome is None or outcome is JobOutcome.TIMEOUT:
        return str(exc)
    named = ", ".join(f"{j} ({exc.statuses.get(j, '?')})" for j in exc.job_ids)
    return f"Sutro run failed [{outcome}] for job(s) {named}: {exc}"


class SutroBatchFunctionOperator(BaseOperator):
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
    jobs already submitted (or returns at once if the run completed) instead of
    paying for new ones. If the input changed between attempts the task fails
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

    template_fields: Sequence[str] = (
        "function_name", "input_uri", "input_data", "sql", "parameters", "output_uri",
        "destination_table", "partition_value", "staging_url", "description", "job_priority", "sampling_params",
        "cache_version", "progress_interval",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "input_data": "json", "parameters": "json"}
    operator_extra_links: tuple[SutroJobLink, ...] = (SutroJobLink(),)
    ui_color = "#e8e0ff"
    sutro_job_url: str | None = None
    """The first job's URL once this try has a job (what the "Sutro job" link shows)."""

    def __init__(
        self,
        *,
        function_name: str,
        sutro_conn_id: str = SutroHook.default_conn_name,
        input_uri: str | None = None,
        input_data: list[dict[str, Any]] | str | None = None,
        sql: str | None = None,
        conn_id: str | None = None,
        parameters: Any = None,
        output_uri: str | None = None,
        destination_table: str | None = None,
        destination_conn_id: str | None = None,
        destination_columns: list[str] | None = None,
        partition_column: str = "airflow_run_id",
        partition_value: str | None = None,
        create_destination_table: bool = False,
        insert_chunk_size: int | None = None,
        staging_url: str | None = None,
        job_priority: int | str = 1,
        sampling_params: dict[str, Any] | None = None,
        random_seed_per_input: bool = False,
        truncate_rows: bool = False,
        description: str | None = None,
        max_cost_usd: float | None = None,
        max_rows_per_job: int | None = None,
        poll_interval: float = POLL_INTERVAL,
        max_poll_interval: float = MAX_POLL_INTERVAL,
        max_consecutive_poll_errors: int = MAX_CONSECUTIVE_POLL_ERRORS,
        progress_interval: float | str = PROGRESS_INTERVAL,
        progress_stream: bool = True,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        wait_for_completion: bool = True,
        cancel_on_kill: bool = True,
        estimate_only: bool = False,
        on_invalid_rows: Literal["fail", "skip"] = "fail",
        on_input_change: Literal["fail", "resubmit"] = "fail",
        id_column: str | None = None,
        output_prefix: str = "",
        incremental: bool = False,
        cache_version: str | None = None,
        refresh: bool = False,
        options: dict[str, Any] | None = None,
        asset_alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        if sum(x is not None for x in (input_uri, input_data, sql)) != 1:
            raise ValueError("pass exactly one of input_uri, input_data or sql")
        if sql is not None and not conn_id:
            raise ValueError("sql needs conn_id (the database connection)")
        if destination_table and not destination_conn_id:
            raise ValueError("destination_table needs destination_conn_id")
        if output_uri and "{{" not in output_uri and "outlets" not in kwargs:
            kwargs["outlets"] = [Asset(output_uri)]
        super().__init__(**kwargs)
        self.asset_alias: str | None = None
        self._templated_output = bool(output_uri and "{{" in output_uri)
        if assets.needs_alias(output_uri, destination_table, asset_alias):
            self.asset_alias = asset_alias or assets.default_alias(self.dag_id, self.task_id)
            self.outlets = [*self.outlets, AssetAlias(self.asset_alias)]
        if not self.do_xcom_push:  # nothing at all in XCom, not even the link's value
            self.operator_extra_links = ()
        self.function_name = function_name
        self.sutro_conn_id = sutro_conn_id
        self.input_uri, self.input_data, self.sql, self.conn_id = input_uri, input_data, sql, conn_id
        self.parameters = parameters
        self.output_uri = output_uri
        self.destination_table, self.destination_conn_id = destination_table, destination_conn_id
        self.destination_columns = destination_columns
        self.partition_column, self.partition_value = partition_column, partition_value
        self.create_destination_table = create_destination_table
        self.insert_chunk_size = insert_chunk_size
        self.staging_url = staging_url
        self.job_priority, self.sampling_params, self.description = job_priority, sampling_params, description
        self.max_cost_usd, self.max_rows_per_job = max_cost_usd, max_rows_per_job
        self.poll_interval, self.max_poll_interval = poll_interval, max_poll_interval
        self.max_consecutive_poll_errors = max_consecutive_poll_errors
        self.progress_interval, self.progress_stream = progress_interval, progress_stream
        self.timeout, self.cancel_on_timeout = timeout, cancel_on_timeout
        self.deferrable = deferrable
        self.wait_for_completion, self.cancel_on_kill, self.estimate_only = (
            wait_for_completion, cancel_on_kill, estimate_only)
        self.random_seed_per_input, self.truncate_rows = random_seed_per_input, truncate_rows
        self.on_invalid_rows, self.on_input_change = on_invalid_rows, on_input_change
        self.id_column, self.output_prefix = id_column, output_prefix
        self.incremental, self.cache_version, self.refresh = incremental, cache_version, refresh
        self.extra_options = dict(options or {})
        self._identity: RunIdentity | None = None
        self._manifest: Manifest | None = None

    # ------------------------------------------------------------------ building blocks
    @cached_property
    def hook(self) -> SutroHook:
        return SutroHook(self.sutro_conn_id, staging_url=self.staging_url)

    @cached_property
    def pipeline(self) -> EnrichmentPipeline:
        return self.hook.get_pipeline()

    def identity(self, context: Context) -> RunIdentity:
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        self._identity = RunIdentity.airflow(ti.dag_id, ti.task_id, ti.run_id, -1 if map_index is None else map_index)
        return self._identity

    def effective_timeout(self) -> float | None:
        """``timeout``, else ``execution_timeout`` (which Airflow does not enforce while deferred)."""
        if self.timeout is not None:
            return float(self.timeout)
        if isinstance(self.execution_timeout, timedelta):
            return self.execution_timeout.total_seconds()
        return None

    def build_options(self) -> EnrichmentOptions:
        """The run's options; a wrong value (e.g. a rendered ``job_priority`` of 5)
        raises :class:`~airflow_provider.exceptions.SutroConfigurationException`."""
        try:
            return self._build_options()
        except ValidationError as exc:
            raise SutroConfigurationException(f"invalid options of task {self.task_id}: {exc}") from None

    def _build_options(self) -> EnrichmentOptions:
        output_uri, storage = self.output_uri, self.hook.storage_options() if self.output_uri else {}
        if self.destination_table and not output_uri and self._identity is not None:
            output_uri, storage = staged_output(self.pipeline.area, self._identity)  # the loader reads it
        return EnrichmentOptions(
            function=self.function_name, job_priority=native_number(self.job_priority),
            sampling_params=native_params(self.sampling_params), random_seed_per_input=self.random_seed_per_input,
            truncate_rows=self.truncate_rows, description=self.description, max_cost_usd=self.max_cost_usd, max_rows_per_job=self.max_rows_per_job,
            on_invalid_rows=self.on_invalid_rows, on_input_change=self.on_input_change, id_column=self.id_column,
            output_uri=output_uri, output_storage_options=storage, output_prefix=self.output_prefix,
            poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval,
            max_consecutive_poll_errors=self.max_consecutive_poll_errors, timeout=self.effective_timeout(),
            progress_interval=float(self.progress_interval), progress_stream=self.progress_stream,
            cancel_on_timeout=self.cancel_on_timeout, incremental=self.incremental,
            cache_version=self.cache_version, refresh=self.refresh, **self.extra_options,
        )

    def _source_storage(self) -> dict[str, Any] | None:
        """The connection's storage options for reading ``input_uri`` (``None`` for other inputs)."""
        return self.hook.storage_options() if self.input_uri else None

    def source(self) -> Any:
        if self.input_uri is not None:
            return self.input_uri
        if self.sql is not None:  # streamed: the query runs once here, its rows flow into staging
            return read_sql(self.conn_id or "", self.sql, self.parameters,
                            batch_size=int(self.extra_options.get("batch_size", 65_536)))
        data = json.loads(self.input_data) if isinstance(self.input_data, str) else self.input_data
        if not isinstance(data, list):
            raise TypeError(f"input_data must be a list of row dicts, got {type(data).__name__}")
        return data

    # ------------------------------------------------------------------ execution
    def execute(self, context: Context) -> dict[str, Any]:
        with as_airflow_exceptions(_describe):  # core errors -> retryable or not (exceptions.py)
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
        with as_airflow_exceptions(_describe):
            return self._execute_complete(context, event)

    def _execute_complete(self, context: Context, event: dict[str, Any] | None) -> dict[str, Any]:
        if event is None:
            self.log.warning("resumed without a Sutro trigger event; reattaching to the run's jobs through its ledger")
            return self._submit_and_defer(context, self.identity(context), self.build_options())
        waited = parse_event(event)
        if waited.statuses and self.sutro_job_url is None:  # resumed after deferring: the link's URL
            self.sutro_job_url = self.hook.job_url(next(iter(waited.statuses)))
        return self._complete(context, self._identity or self.identity(context), self.build_options(), waited)

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

    # ------------------------------------------------------------------ helpers
    def _submitted(self, context: Context, identity: RunIdentity, manifest: Manifest) -> None:
        self._manifest = manifest
        if manifest.job_ids and self.do_xcom_push:
            self._push_job_xcoms(context, manifest.job_ids)
        self.log.info("Sutro run %s: %s, job(s) %s", identity.short, manifest.state, manifest.job_ids or "none")

    def _complete(self, context: Context, identity: RunIdentity, options: EnrichmentOptions,
                  waited: WaitResult) -> dict[str, Any]:
        self.pipeline.check(waited, identity, options)  # cancels on timeout when asked
        self.log.info("Sutro job(s) %s succeeded; collecting results", ", ".join(waited.statuses))
        return self._land(context, identity, self.pipeline.collect(identity, options,
                                                                   materialize=False))

    def _push_job_xcoms(self, context: Context, job_ids: list[str]) -> None:
        ti = context["ti"]
        url = self.hook.job_url(job_ids[0])
        ti.xcom_push(key=XCOM_JOB_IDS, value=list(job_ids))
        ti.xcom_push(key=XCOM_JOB_URL, value=url)
        ti.xcom_push(key=SutroJobLink().xcom_key, value=url)  # the link works while deferred
        self.sutro_job_url = url

    def _land(self, context: Context, identity: RunIdentity, result: EnrichmentResult) -> dict[str, Any]:
        """Load the destination table from the enriched Parquet (streamed there by the
        collect, never held whole) and return the manifest."""
        from sutro_providers.pipeline import is_empty  # loaded with the pipeline, not at DAG parse time

        manifest = self._manifest = result.manifest
        if self.destination_table:  # an empty interval still replaces the run's rows (with none)
            options = self.build_options()
            self._write_destination(context, None if is_empty(manifest) else manifest.output_uri or options.output_uri,
                                    options)
        if not is_empty(manifest):
            self._log_landed(identity, manifest)
        assets.emit_run_events(self, context, manifest)
        return manifest.to_json_dict()

    def _log_landed(self, identity: RunIdentity, manifest: Manifest) -> None:
        self.log.info("Sutro run %s: %s rows enriched, cost %s USD, output %s",
                      identity.short, manifest.rows_out, manifest.cost_usd, manifest.output_uri)

    # ------------------------------------------------------------------ destination table
    def destination_loader(self) -> Loader:
        """The loader of ``destination_conn_id`` (override to use your own, e.g. a
        :class:`~sutro_providers.landing.SnowflakeCopyLoader`)."""
        return destination_loader(self.destination_conn_id or "")

    def _preflight(self, source: Any, options: EnrichmentOptions) -> None:
        """The destination can take the enriched rows, checked (or created) before submit."""
        if not self.destination_table:
            return
        spec = self.pipeline.function_spec(self.function_name)
        schema = enriched_schema(open_source(source, storage_options=self.hook.storage_options()
                                             if self.input_uri else None).schema, spec, options)
        preflight(self.destination_loader(), self.destination_table, schema, partition_column=self.partition_column,
                  columns=self.destination_columns, create=self.create_destination_table, complete=spec is not None)

    def _write_destination(self, context: Context, uri: str | None, options: EnrichmentOptions) -> None:
        land_partition(self.destination_loader(), self.destination_table or "", uri,
                       partition=str(self.partition_value or context["ti"].run_id),
                       partition_column=self.partition_column, columns=self.destination_columns,
                       storage_options=options.output_storage_options,
                       batch_size=self.insert_chunk_size or options.batch_size, log=self.log)

    # ------------------------------------------------------------------ lineage
    def get_openlineage_facets_on_start(self) -> Any:
        """Input: the source URI or the SQL tables; output: ``output_uri`` and the destination
        table; schema and column lineage facets when known before the run (see :mod:`airflow_provider.lineage`)."""
        from airflow_provider.lineage import batch_enrichment_at_start, batch_lineage

        return batch_lineage(self, enrichment=batch_enrichment_at_start(self))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The datasets of the start event with the schema of the enriched table written,
        column lineage, and the job ids (``externalQuery``)."""
        from airflow_provider.lineage import batch_enrichment_at_end, batch_lineage

        job_ids = self._manifest.job_ids if self._manifest is not None else []
        return batch_lineage(self, job_ids, self.hook.get_config().origin if job_ids else None,
                             enrichment=batch_enrichment_at_end(self))
