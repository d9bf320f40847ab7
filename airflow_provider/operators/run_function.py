"""Call a Sutro Function in real time: one row, or a few rows without the batch queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from airflow.sdk import BaseOperator

from airflow_provider.hooks.sutro import SutroHook
from airflow_provider.identity import task_run_identity
from sutro_providers.options import EnrichmentOptions

if TYPE_CHECKING:
    from airflow.sdk import Context

MAX_RETURNED_ROWS = 1000


class SutroRunFunctionOperator(BaseOperator):
    """Run a published Function synchronously through ``POST functions/{name}/run``.

    With ``input`` (one row dict, or a prompt string) it makes ONE call and returns
    the response as a small JSON dict (``output``/``response``, ``confidence``,
    ``rationale``, ``usage``, ``request_id``): that dict is the XCom return value.
    With ``input_data`` (a list of row dicts) or ``input_uri`` (a small Parquet/CSV
    table, read with the connection's storage options) it runs every row with bounded
    concurrency (:func:`sutro_providers.realtime.run_realtime`), writes the
    enriched table to ``output_uri`` when given, and returns the run manifest, plus
    the enriched rows under ``"rows"`` when ``return_rows`` (at most 1,000 rows).

    **Retries.** Each call is billed and is never retried automatically by the
    client (only a 429 is retried, after ``Retry-After``). An Airflow retry of this
    task calls the Function again; use the batch operator for idempotent runs.

    **Lineage.** OpenLineage start and complete events name ``input_uri`` and
    ``output_uri``; the complete event carries their schema and the column lineage of
    each result column (see :mod:`airflow_provider.lineage`).

    :param function_name: the Function (templated).
    :param input: one row dict or a prompt string (templated).
    :param input_data: a list of row dicts (templated; XComArg welcome).
    :param input_uri: URI of a Parquet/CSV table to run row by row instead (templated).
    :param output_uri: Parquet destination of the enriched rows (``input_data`` only, templated).
    :param return_rows: include the enriched rows in the return value (``input_data`` only).
    :param concurrency: calls in flight at once (``input_data`` only).
    :param confidence_scoring: ask for confidence scores (single call only).
    :param sutro_conn_id: connection of type ``sutro``.
    """

    template_fields: Sequence[str] = ("function_name", "input", "input_data", "input_uri", "output_uri")
    template_fields_renderers = {"input": "json", "input_data": "json"}
    ui_color = "#e8e0ff"

    def __init__(
        self,
        *,
        function_name: str,
        input: dict[str, Any] | str | None = None,
        input_data: list[dict[str, Any]] | str | None = None,
        output_uri: str | None = None,
        input_uri: str | None = None,
        return_rows: bool = True,
        concurrency: int = 16,
        confidence_scoring: bool | None = None,
        sutro_conn_id: str = SutroHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        if sum(x is not None for x in (input, input_data, input_uri)) != 1:
            raise ValueError("pass exactly one of input, input_data or input_uri")
        super().__init__(**kwargs)
        self.function_name = function_name
        self.input, self.input_data, self.input_uri = input, input_data, input_uri
        self._result_schema: pa.Schema | None = None
        self.output_uri, self.return_rows = output_uri, return_rows
        self.concurrency, self.confidence_scoring = concurrency, confidence_scoring
        self.sutro_conn_id = sutro_conn_id

    @cached_property
    def hook(self) -> SutroHook:
        return SutroHook(self.sutro_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        if self.input is not None:
            with self.hook.get_client() as client:
                result = client.run_function(self.function_name, self.input, self.confidence_scoring)
            self.log.info("Sutro Function %s answered (request %s)", self.function_name, result.request_id)
            return result.model_dump(mode="json", exclude_none=True)
        return self._run_rows(context)

    def _run_rows(self, context: Context) -> dict[str, Any]:
        from sutro_providers.realtime import run_realtime

        rows: Any = None
        if self.input_uri is not None:  # opened here: the connection's storage options
            from sutro_providers.inputs.sources import open_source

            rows = open_source(self.input_uri, storage_options=self.hook.storage_options())
        else:
            rows = json.loads(self.input_data) if isinstance(self.input_data, str) else self.input_data
            if not isinstance(rows, list):
                raise TypeError(f"input_data must be a list of row dicts, got {type(rows).__name__}")
        options = EnrichmentOptions(
            function=self.function_name, output_uri=self.output_uri,
            output_storage_options=self.hook.storage_options() if self.output_uri else {},
        )
        identity = task_run_identity(context["ti"])
        with self.hook.get_client() as client:
            result = run_realtime(client, rows, options, concurrency=self.concurrency, identity=identity)
        self._result_schema = result.table.schema if result.table is not None else None
        out = result.manifest.to_json_dict()
        if self.return_rows and result.table is not None:
            if result.table.num_rows > MAX_RETURNED_ROWS:
                raise ValueError(f"{result.table.num_rows} rows are too many for XCom: set return_rows=False "
                                 "and output_uri")
            out["rows"] = json.loads(json.dumps(result.table.to_pylist(), default=str))
        self.log.info("Sutro Function %s ran on %d rows", self.function_name, out.get("rows_out", 0))
        return out

    # ------------------------------------------------------------------ lineage
    def get_openlineage_facets_on_start(self) -> Any:
        """``input_uri`` and ``output_uri`` as datasets (no facets before the run)."""
        from airflow_provider.lineage import batch_lineage

        return batch_lineage(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The datasets with the enriched table's schema and column lineage."""
        from airflow_provider.lineage import Enrichment, batch_lineage

        if self._result_schema is None:
            return batch_lineage(self)
        try:
            with self.hook.get_client() as client:
                spec = client.get_function(self.function_name)
        except Exception as exc:  # a deployment without specs: only confidence gets lineage
            self.log.debug("no Function spec for lineage: %s", exc)
            spec = None
        return batch_lineage(self, enrichment=Enrichment(self.function_name, spec, self._result_schema))
