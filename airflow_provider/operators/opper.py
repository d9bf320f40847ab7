"""Enrich a table through Opper, one function call per row, idempotent across retries."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider.hooks.opper import OpperHook
from airflow_provider.operators.batch import SutroBatchFunctionOperator
from sutro_providers.opper_rows import OpperOptions
from sutro_providers.opper_rows.options import FewShotExample
from sutro_providers.waiting.progress_report import RowProgressReporter

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sutro_providers.identity import RunIdentity
    from sutro_providers.manifest import Manifest
    from sutro_providers.opper_rows import OpperRowPipeline


class OpperFunctionOperator(SutroBatchFunctionOperator):
    """Enrich a table with an Opper function: the input and output options of
    :class:`~airflow_provider.operators.batch.SutroBatchFunctionOperator`
    (``input_uri`` | ``input_data`` | ``sql``; ``output_uri`` and/or
    ``destination_table`` with its partition; ``on_invalid_rows``, ``id_column``,
    ``output_prefix``, ``staging_url``), with the rows answered by Opper calls
    (:class:`~sutro_providers.opper_rows.OpperRowPipeline`) on the worker.

    **Retries.** The run is identified by ``dag_id``, ``task_id``, ``run_id`` and
    ``map_index``; answers are journaled on the staging store as calls complete, so
    a retry (or a killed worker's next try) calls only the rows without a recorded
    answer, and a completed run returns its manifest without calling.

    **Tracing.** Every call carries the tags ``sutro.dag_id``, ``sutro.task_id``,
    ``sutro.run_id``, ``sutro.map_index``, ``sutro.run`` and ``sutro.row`` (plus
    ``tags``), under one parent span per run (``trace_span_id`` in the manifest).

    **XCom.** The return value is the run manifest (rows, usage and cost in total
    and per model in ``usage_by_model``, failed rows, output location); rows never
    go through XCom.

    :param function_name: the Opper function (templated); or ``function_id`` and
        ``revision_id`` of a pinned v2 revision.
    :param opper_conn_id: connection of type ``opper``.
    :param instructions: the function's instructions (templated).
    :param input_schema: JSON Schema of the input (its properties are the input columns).
    :param output_schema: JSON Schema of the answer (typed result columns); without
        it the answer is text in ``<output_prefix>output``.
    :param model: model name (or ``{name, options}`` or a fallback list).
    :param examples: few-shot examples ``[{input, output, comment?}]``.
    :param examples_file: JSON/JSONL/YAML file of more examples (templated).
    :param tags: extra str→str tags on every call.
    :param concurrency: calls in flight at once.
    :param on_row_error: ``fail`` (the task fails naming the rows) or ``record``.
    :param options: more :class:`~sutro_providers.opper_rows.OpperOptions` fields.
    """

    template_fields: Sequence[str] = (*SutroBatchFunctionOperator.template_fields, "instructions", "examples_file")
    operator_extra_links = ()  # type: ignore[assignment]  # no Sutro job page
    ui_color = "#e0f0ff"

    def __init__(
        self,
        *,
        function_name: str,
        opper_conn_id: str = OpperHook.default_conn_name,
        function_id: str | None = None,
        revision_id: str | None = None,
        instructions: str | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        model: str | dict[str, Any] | list[Any] | None = None,
        examples: list[dict[str, Any]] | None = None,
        examples_file: str | None = None,
        tags: dict[str, str] | None = None,
        concurrency: int = 16,
        on_row_error: Literal["fail", "record"] = "fail",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("deferrable", False)
        super().__init__(function_name=function_name, sutro_conn_id=opper_conn_id, **kwargs)
        self.opper_conn_id = opper_conn_id
        self.function_id, self.revision_id = function_id, revision_id
        self.instructions, self.input_schema, self.output_schema = instructions, input_schema, output_schema
        self.model, self.examples, self.examples_file = model, list(examples or []), examples_file
        self.tags, self.concurrency, self.on_row_error = dict(tags or {}), concurrency, on_row_error

    @cached_property
    def hook(self) -> OpperHook:  # type: ignore[override]
        return OpperHook(self.opper_conn_id, staging_url=self.staging_url)

    @cached_property
    def opper_pipeline(self) -> OpperRowPipeline:
        return self.hook.get_opper_pipeline()

    def build_options(self) -> OpperOptions:
        storage = self.hook.storage_options() if self.output_uri or self.examples_file else {}
        return OpperOptions(
            function=self.function_name, function_id=self.function_id, revision_id=self.revision_id,
            instructions=self.instructions, input_schema=self.input_schema, output_schema=self.output_schema,
            model=self.model, examples=[FewShotExample.model_validate(e) for e in self.examples],
            examples_file=self.examples_file,
            examples_storage_options=storage if self.examples_file else {}, tags=self.tags,
            concurrency=self.concurrency, on_row_error=self.on_row_error, on_invalid_rows=self.on_invalid_rows,
            on_input_change=self.on_input_change, id_column=self.id_column, output_uri=self.output_uri,
            output_storage_options=storage if self.output_uri else {}, output_prefix=self.output_prefix,
            **self.extra_options,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        identity, options = self.identity(context), self.build_options()
        result = self.opper_pipeline.run(
            self.source(), identity, options, materialize=bool(self.destination_table),
            source_storage_options=self.hook.storage_options() if self.input_uri else None,
            on_progress=RowProgressReporter(f"Opper {options.function}", self.log.info,
                                            interval=options.progress_interval),
        )
        return self._land(context, identity, result)  # the batch operator's landing: destination, manifest

    def _log_landed(self, identity: RunIdentity, manifest: Manifest) -> None:
        self.log.info("Opper run %s: %d rows enriched (%d failed), %d input / %d output tokens, cost %s USD, "
                      "output %s, trace span %s", identity.short, manifest.rows_out, manifest.rows_failed,
                      manifest.input_tokens, manifest.output_tokens, manifest.cost_usd, manifest.output_uri,
                      manifest.trace_span_id)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError("the Opper operator never defers")

    def on_kill(self) -> None:
        """Nothing to cancel: answered rows are journaled; calls in flight end with the process."""
