"""Opper on Dagster: :class:`OpperResource` and :func:`opper_function_asset`.

The same asset as :func:`~dagster_sutro.sutro_function_asset` (the upstream table
enriched, handed to the asset's IO manager, row-parity and cost checks, partitions,
``stream``) with the rows answered by Opper, one function call per row
(:class:`~sutro_providers.opper_rows.OpperRowPipeline`), inside the asset step.

**Retries and re-executions.** The run is named by asset key, partition and root
run id, as for Sutro. Answers are journaled on the staging store as calls
complete, so a step retry or a re-execution of the run calls only the rows without
a recorded answer; a completed run returns its result without a call (for the
input it ran on only). Two attempts of one run at the same time never both call a
row (see :mod:`sutro_providers.opper_rows.run_record`).

**Tracing.** Every call carries the tags ``sutro.asset_key``, ``sutro.partition_key``,
``sutro.root_run_id``, ``sutro.run`` and ``sutro.row`` (plus ``call_tags``) under one
parent span per run (``opper/trace_span_id`` in the metadata).

**Metadata** (besides the ``sutro/`` keys of every enriched asset: rows, tokens,
``sutro/cost_usd``, table schema): per model ``opper.{model}.calls``,
``.input_tokens``, ``.output_tokens``, ``.cost_usd`` (dagster-openai style, for
Insights), and ``opper/trace_span_id``, ``opper/rows_failed``, ``opper/cached_calls``,
``opper/row_errors`` (a markdown table of the first failed rows).

Example::

    import dagster as dg
    from dagster_sutro import OpperResource, SutroChecks, opper_function_asset

    triaged = opper_function_asset(
        function="ticket-triage",
        upstream="support/tickets",
        key="support/tickets_triaged",
        instructions="Classify the support ticket",
        input_schema={"type": "object", "properties": {"subject": {"type": "string"}, "body": {"type": "string"}}},
        output_schema={"type": "object", "properties": {"label": {"type": "string"}}},
        model="openai/gpt-4o-mini",
        checks=SutroChecks(max_cost_usd=1.0),
    )
    defs = dg.Definitions(
        assets=[triaged],
        resources={"opper": OpperResource(api_key=dg.EnvVar("OPPER_API_KEY"), staging_url="s3://my-bucket/opper")},
    )
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from dagster._core.definitions.metadata import NamespacedMetadataSet
from pydantic import Field

from dagster_sutro.asset_decorator import sutro_function_asset
from dagster_sutro.checks import SutroChecks
from dagster_sutro.enrichment import key_of
from dagster_sutro.execution import AssetRun, failure
from dagster_sutro.frames import OutputFormat
from dagster_sutro.staging_resource import StagingResource
from sutro_providers.client.config import RetryPolicy, Timeouts
from sutro_providers.errors import SutroError, SutroInputError, SutroRowsFailedError
from sutro_providers.function_spec import InputField
from sutro_providers.manifest import Manifest
from sutro_providers.opper.client import OpperClient
from sutro_providers.opper.config import DEFAULT_BASE_URL, OpperConfig
from sutro_providers.opper_rows.options import FewShotExample, OpperOptions
from sutro_providers.waiting.progress_report import RowProgressReporter

if TYPE_CHECKING:
    from sutro_providers.opper_rows import OpperRowPipeline

DEFAULT_OPPER_RESOURCE_KEY = "opper"


class OpperResource(StagingResource):
    """Connection to Opper plus where inputs are staged and answers journaled.

    Secrets come from the environment: ``api_key=dg.EnvVar("OPPER_API_KEY")``. The
    staging settings are :class:`~dagster_sutro.staging_resource.StagingResource`'s
    (as :class:`~dagster_sutro.SutroResource`'s); Opper needs no pre-signed URLs, so a
    local folder works for staging too (one machine only).

    Example::

        import dagster as dg
        from dagster_sutro import OpperResource

        opper = OpperResource(api_key=dg.EnvVar("OPPER_API_KEY"), staging_url="s3://acme-opper/staging")
    """

    api_key: str = Field(description="Opper API key. Use dg.EnvVar('OPPER_API_KEY'); it is never logged.")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="Opper API base URL (http:// only on loopback).")
    staging_url: str = Field(
        description="fsspec URL (s3://bucket/prefix, or a local folder) where inputs are staged as Parquet and the "
        "run record and the answers journal are kept."
    )
    connect_timeout: float = Field(default=10.0, description="Seconds to connect to the Opper API.")
    read_timeout: float = Field(default=120.0, description="Seconds to wait for each Opper API reply other than a call.")
    call_timeout: float = Field(default=300.0, description="Seconds to wait for one function call's reply (per row).")
    max_retry_attempts: int = Field(
        default=6, description="Attempts of each retryable API read (span reads and updates; row calls retry per "
        "max_row_attempts of the asset's options).")

    def opper_config(self) -> OpperConfig:
        """The validated client configuration (raises on a malformed URL or empty key)."""
        return OpperConfig.resolve(
            self.base_url, self.api_key,
            timeouts=Timeouts(connect=self.connect_timeout, read=self.read_timeout, function_read=self.call_timeout),
            retry=RetryPolicy(max_attempts=self.max_retry_attempts),
            user_agent="sutro-providers-dagster-opper",
        )

    def get_client(self) -> OpperClient:
        """A new synchronous :class:`OpperClient` (close it, or use it as a context manager)."""
        return OpperClient(config=self.opper_config())

    def get_pipeline(self) -> OpperRowPipeline:
        """An :class:`~sutro_providers.opper_rows.OpperRowPipeline` for this resource."""
        from sutro_providers.opper_rows import OpperRowPipeline

        return OpperRowPipeline(self.opper_config(), self.staging_location())

    def enrich(
        self,
        context: dg.AssetExecutionContext,
        source: Any,
        *,
        options: OpperOptions,
        output_format: OutputFormat = "polars",
        checks: SutroChecks | None = None,
        stream: bool = False,
        asset_key: dg.AssetKey | None = None,
        output_name: str | None = None,
    ) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
        """Run the Opper function of ``options`` over ``source`` for the asset being
        materialized and yield its :class:`dagster.Output` and check results (see the
        module docstring); the counterpart of :meth:`SutroResource.enrich`."""
        yield from run_opper_enrichment(self, context, source, options=options, output_format=output_format,
                                        checks=checks, stream=stream, asset_key=asset_key, output_name=output_name)


class OpperMetadataSet(NamespacedMetadataSet):
    """The ``opper/`` metadata namespace of an asset enriched through Opper."""

    trace_span_id: str | None = None
    rows_failed: int | None = None
    cached_calls: int | None = None

    @classmethod
    def namespace(cls) -> str:
        return "opper"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> OpperMetadataSet:
        return cls(trace_span_id=manifest.trace_span_id, rows_failed=manifest.rows_failed,
                   cached_calls=sum(u.cached_calls for u in manifest.usage_by_model.values()))


def opper_metadata(manifest: Manifest) -> dict[str, Any]:
    """The ``opper/`` keys, with ``opper/row_errors`` when rows failed (``on_row_error="record"``)."""
    metadata: dict[str, Any] = dict(OpperMetadataSet.from_manifest(manifest))
    if manifest.row_errors:
        lines = ["| row | id | reason |", "|---:|---|---|"]
        lines += [f"| {e.row} | {e.id or ''} | {e.reason.replace('|', '/')[:200]} |" for e in manifest.row_errors]
        metadata["opper/row_errors"] = dg.MetadataValue.md("\n".join(lines))
    return metadata


def _failure(exc: SutroError) -> dg.Failure:
    return failure(exc, {"opper/rows_failed": len(exc.rows)} if isinstance(exc, SutroRowsFailedError) else None)


def run_opper_enrichment(
    resource: OpperResource,
    context: dg.AssetExecutionContext,
    source: Any,
    *,
    options: OpperOptions,
    output_format: OutputFormat = "polars",
    checks: SutroChecks | None = None,
    stream: bool = False,
    asset_key: dg.AssetKey | None = None,
    output_name: str | None = None,
) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
    """Enrich ``source`` through Opper for the asset being materialized (``asset_key`` /
    ``output_name``: which asset of a multi-asset, default the step's only one). Core errors
    become :class:`dagster.Failure` (:func:`sutro_providers.errors.worth_retrying` says
    which allow a step retry: failed rows do, a retry calls only those); a
    terminated run keeps what was answered."""
    run = AssetRun.start(context, source, asset_key, output_name)
    identity, log = run.identity, run.log
    pipeline = resource.get_pipeline()
    options = run.staged_output(options, pipeline.area, stream)
    log.info(f"Opper run of {options.function!r} for {identity.describe()} (run key {identity.short}), "
             f"{options.concurrency} calls at a time")
    progress = RowProgressReporter(f"Opper {options.function}", log.info, interval=options.progress_interval)
    try:
        result = pipeline.run(run.source, identity, options, on_progress=progress, materialize=not stream)
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
        log.warning("run terminated: the answers recorded so far are kept; re-executing this run calls only "
                    "the rows without one")
        raise
    except SutroError as exc:
        raise _failure(exc) from exc
    manifest, table = result.manifest, result.table
    log.info(f"Opper run done: {manifest.rows_out} rows, {manifest.rows_failed} failed, "
             f"{manifest.input_tokens}/{manifest.output_tokens} tokens in/out, cost {manifest.cost_usd}, "
             f"trace span {manifest.trace_span_id}")
    yield from run.outputs(manifest, table, options, output_format, checks, extra_metadata=opper_metadata(manifest))


def build_opper_options(
    function: str,
    *,
    instructions: str | None = None,
    input_schema: Mapping[str, Any] | None = None,
    output_schema: Mapping[str, Any] | None = None,
    model: str | Mapping[str, Any] | Sequence[Any] | None = None,
    examples: Sequence[FewShotExample | Mapping[str, Any]] | None = None,
    examples_file: str | None = None,
    call_tags: Mapping[str, str] | None = None,
    concurrency: int | None = None,
    on_row_error: Literal["fail", "record"] | None = None,
    input_fields: Sequence[InputField | Mapping[str, Any]] | None = None,
    options: OpperOptions | Mapping[str, Any] | None = None,
) -> OpperOptions:
    """The asset's :class:`OpperOptions`, validated at definition time (a typo fails
    the code location load); the named arguments win over ``options``."""
    data: dict[str, Any] = options.model_dump(exclude_unset=True) if isinstance(options, OpperOptions) else dict(options or {})
    named: dict[str, Any] = dict(instructions=instructions, input_schema=input_schema, output_schema=output_schema,
                                 model=model, examples_file=examples_file, concurrency=concurrency,
                                 on_row_error=on_row_error)
    data.update({k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, Sequence) and not isinstance(v, str)
                     else v) for k, v in named.items() if v is not None})
    if examples is not None:
        data["examples"] = [e if isinstance(e, FewShotExample) else FewShotExample.model_validate(e) for e in examples]
    if call_tags is not None:
        data["tags"] = dict(call_tags)
    if input_fields is not None:
        data["input_fields"] = [InputField.model_validate(f) if isinstance(f, Mapping) else f for f in input_fields]
    data["function"] = function
    return OpperOptions(**data)


def opper_function_asset(
    *,
    function: str,
    upstream: dg.AssetKey | str | Sequence[str] | dg.AssetsDefinition | dg.AssetSpec,
    instructions: str | None = None,
    input_schema: Mapping[str, Any] | None = None,
    output_schema: Mapping[str, Any] | None = None,
    model: str | Mapping[str, Any] | Sequence[Any] | None = None,
    examples: Sequence[FewShotExample | Mapping[str, Any]] | None = None,
    examples_file: str | None = None,
    call_tags: Mapping[str, str] | None = None,
    concurrency: int | None = None,
    on_row_error: Literal["fail", "record"] | None = None,
    input_fields: Sequence[InputField | Mapping[str, Any]] | None = None,
    options: OpperOptions | Mapping[str, Any] | None = None,
    checks: SutroChecks | None = None,
    description: str | None = None,
    output_format: OutputFormat = "polars",
    resource_key: str = DEFAULT_OPPER_RESOURCE_KEY,
    kinds: set[str] | None = None,
    **asset_kwargs: Any,
) -> dg.AssetsDefinition:
    """An asset whose value is ``upstream`` enriched by the Opper function ``function``.

    Args:
        function: the Opper function name (created on first call with ``instructions``,
            the schemas and ``model``), or pass ``function_id`` and ``revision_id`` in
            ``options`` to call one pinned revision.
        upstream: the table to enrich: an asset, asset spec or key.
        instructions, input_schema, output_schema, model: the function (see
            :class:`~sutro_providers.opper_rows.OpperOptions`); the properties of
            ``input_schema`` are the input columns (or pass ``input_fields``), those of
            ``output_schema`` the typed result columns (without it: one text column
            ``<output_prefix>output``).
        examples, examples_file: few-shot examples sent with every call.
        call_tags: extra str→str tags on every call (the run identity and the row are
            always added).
        concurrency: calls in flight at once (default 16).
        on_row_error: ``fail`` (default: the step fails naming the rows; a retry calls
            only the rows without an answer) or ``record`` (kept with null results and
            the reason in ``sutro_skip_reason``; row parity then fails).
        options: further :class:`OpperOptions` fields (``max_row_attempts``,
            ``id_column``, ``output_prefix``, ``on_input_change``, ``journal_chunk_rows``...).
        checks: default :class:`SutroChecks` (row parity); ``max_cost_usd`` bounds the
            run's summed call cost. Opper answers carry no confidence, so
            ``max_low_confidence_share`` is refused.
        resource_key: the key of the :class:`OpperResource` (default ``opper``).
        asset_kwargs: the asset arguments of :func:`~dagster_sutro.sutro_function_asset`
            (``key``, ``name``, ``key_prefix``, ``group_name``, ``partitions_def``,
            ``partition_mapping``, ``partition_expr``, ``backfill_policy``,
            ``retry_policy``, ``pool``, ``io_manager_key``, ``stream``, ``metadata``,
            ``tags``, ``owners``).
    """
    opper = build_opper_options(function, instructions=instructions, input_schema=input_schema,
                                output_schema=output_schema, model=model, examples=examples,
                                examples_file=examples_file, call_tags=call_tags, concurrency=concurrency,
                                on_row_error=on_row_error, input_fields=input_fields, options=options)
    try:
        opper.input_field_list()  # the input columns must be known before any call: fail the load, not the run
    except SutroInputError as exc:
        raise dg.DagsterInvalidDefinitionError(str(exc)) from None
    checks = checks if checks is not None else SutroChecks()
    if checks.max_low_confidence_share is not None:
        raise dg.DagsterInvalidDefinitionError(
            f"opper_function_asset {function!r}: Opper answers carry no confidence score; drop "
            "max_low_confidence_share from its checks")
    upstream_name = key_of(upstream).to_user_string()
    return sutro_function_asset(
        function=function, upstream=upstream, options=opper, checks=checks, output_format=output_format,
        resource_key=resource_key,
        description=description or f"`{upstream_name}` enriched by the Opper function `{function}`.",
        kinds=kinds or {"opper", output_format if output_format != "arrow" else "pyarrow"},
        **asset_kwargs,
    )
