"""The batch operator's arguments: their validation, the run's options and its input.

:class:`BatchArguments` is the first layer of
:class:`~airflow_provider.operators.batch.SutroBatchFunctionOperator` (documented
there, ``:param`` list included): it checks the arguments when the DAG is parsed,
keeps them (``template_fields``: which are templated), and turns the rendered ones
into what the core takes: the run identity, the
:class:`~sutro_providers.options.EnrichmentOptions` (a wrong rendered value fails
the task without retry) and the input source. Adding a parameter: a keyword of
``__init__`` here, its ``:param`` in the operator's docstring and its row in
``docs/configuration.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.common.compat.sdk import conf
from airflow.sdk import Asset, AssetAlias, BaseOperator
from pydantic import ValidationError

from airflow_provider import assets
from airflow_provider.exceptions import SutroConfigurationException
from airflow_provider.hooks.sutro import SutroHook, SutroHookMixin
from airflow_provider.identity import task_run_identity
from airflow_provider.links import SutroJobLink
from airflow_provider.operators.submit_only import native_number, native_params
from airflow_provider.sql import read_sql
from sutro_providers.landing import staged_output
from sutro_providers.options import (
    MAX_CONSECUTIVE_POLL_ERRORS,
    MAX_POLL_INTERVAL,
    POLL_INTERVAL,
    PROGRESS_INTERVAL,
    EnrichmentOptions,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sutro_providers.identity import RunIdentity
    from sutro_providers.manifest import Manifest


class BatchArguments(SutroHookMixin, BaseOperator):
    """The arguments of :class:`~airflow_provider.operators.batch.SutroBatchFunctionOperator`
    and what the run makes of them (not an operator on its own)."""

    template_fields: Sequence[str] = (
        "function_name", "input_uri", "input_data", "sql", "parameters", "output_uri",
        "destination_table", "partition_value", "staging_url", "description", "job_priority", "sampling_params",
        "cache_version", "progress_interval",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "input_data": "json", "parameters": "json"}
    operator_extra_links: tuple[SutroJobLink, ...] = (SutroJobLink(),)

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

    def identity(self, context: Context) -> RunIdentity:
        self._identity = task_run_identity(context["ti"])
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
