"""``OpperFunctionComponent``: an asset enriched through Opper, declared in ``defs.yaml``.

The counterpart of :class:`~dagster_sutro.SutroFunctionComponent`: the same
upstream, key, partitions, checks and IO manager attributes, the Opper function
instead of a Sutro Function, and an :class:`~dagster_sutro.OpperResource` instead
of a Sutro one.

Example ``defs.yaml``::

    type: dagster_sutro.OpperFunctionComponent
    attributes:
      function: ticket-triage
      upstream: support/tickets
      asset_key: support/tickets_triaged
      instructions: Classify the support ticket
      input_schema:
        type: object
        properties: {subject: {type: string}, body: {type: string}}
      output_schema:
        type: object
        properties: {label: {type: string}, urgent: {type: boolean}}
      opper_model: openai/gpt-4o-mini
      concurrency: 16
      checks:
        max_cost_usd: 1.0
      resource:
        staging_url: "s3://my-bucket/opper"

The API key is read from the environment variable ``resource.api_key_env_var``
(default ``OPPER_API_KEY``) at run time through :class:`dagster.EnvVar`. The model
attribute is ``opper_model`` (``model`` is taken by the component machinery).

Scaffold one with ``dg scaffold defs dagster_sutro.OpperFunctionComponent my_enrichment``.
"""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg
from pydantic import Field

from dagster_sutro.checks import SutroChecks
from dagster_sutro.components.function_component import SutroDailyPartitions
from dagster_sutro.opper import DEFAULT_OPPER_RESOURCE_KEY, OpperResource, opper_function_asset
from sutro_providers.opper.config import DEFAULT_BASE_URL


class OpperResourceSettings(dg.Model, dg.Resolvable):
    """The :class:`OpperResource` the component provides under ``resource_key``."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="Opper API base URL.")
    api_key: str | None = Field(default=None, description="API key; prefer api_key_env_var (read at run time, never resolved into config).")
    api_key_env_var: str = Field(default="OPPER_API_KEY", description="Environment variable holding the API key.")
    staging_url: str = Field(description="fsspec URL (s3://bucket/prefix, or a local folder) where inputs are staged.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint for staging.")
    aws_region_name: str | None = Field(default=None, description="AWS region of the staging bucket.")
    call_timeout: float = Field(default=300.0, description="Seconds to wait for one function call's reply.")

    def build(self) -> OpperResource:
        return OpperResource(
            base_url=self.base_url,
            api_key=self.api_key if self.api_key else dg.EnvVar(self.api_key_env_var),
            staging_url=self.staging_url,
            s3_endpoint_url=self.s3_endpoint_url,
            aws_region_name=self.aws_region_name,
            call_timeout=self.call_timeout,
        )


class OpperFunctionComponentScaffolder(dg.Scaffolder):
    """Writes a ``defs.yaml`` with every required attribute filled with a placeholder."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        dg.scaffold_component(
            request,
            {
                "function": "ticket-triage",
                "upstream": "support/tickets",
                "asset_key": "support/tickets_triaged",
                "instructions": "Classify the support ticket",
                "input_schema": {"type": "object", "properties": {"subject": {"type": "string"},
                                                                  "body": {"type": "string"}}},
                "output_schema": {"type": "object", "properties": {"label": {"type": "string"}}},
                "checks": {"row_parity": True, "max_cost_usd": 1.0},
                "resource": {"api_key_env_var": "OPPER_API_KEY", "staging_url": "s3://my-bucket/opper-staging"},
            },
        )


@dg.scaffold_with(OpperFunctionComponentScaffolder)
class OpperFunctionComponent(dg.Component, dg.Model, dg.Resolvable):
    """Runs an Opper function over an upstream table, one call per row, and
    materializes the enriched table (:func:`~dagster_sutro.opper_function_asset`).

    Example (Python)::

        from dagster_sutro import OpperFunctionComponent

        component = OpperFunctionComponent(function="summarize", upstream="support/tickets",
                                           asset_key="support/tickets_summarized",
                                           input_schema={"type": "object", "properties": {"body": {"type": "string"}}})
    """

    function: str = Field(description="The Opper function name (created on first call).")
    upstream: str = Field(description="Key of the table to enrich, slash-separated (support/tickets).")
    asset_key: str = Field(description="Key of the enriched asset, slash-separated (support/tickets_triaged).")
    instructions: str | None = Field(default=None, description="The function's instructions.")
    input_schema: dict[str, Any] | None = Field(default=None, description="JSON Schema of the input; its properties are the input columns.")
    output_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the answer (typed result columns); none: one text column 'output'.")
    opper_model: str | dict[str, Any] | list[Any] | None = Field(
        default=None, description="The model: a name (openai/gpt-4o-mini), {name, options} or a fallback list.")
    examples: list[dict[str, Any]] | None = Field(default=None, description="Few-shot examples [{input, output, comment?}].")
    examples_file: str | None = Field(default=None, description="JSON / JSON lines / YAML file of more examples (fsspec URL).")
    call_tags: dict[str, str] | None = Field(default=None, description="Extra tags on every call.")
    concurrency: int | None = Field(default=None, description="Calls in flight at once (default 16).")
    on_row_error: Literal["fail", "record"] | None = Field(default=None, description="A row failing after its tries: fail (default) or record.")
    description: str | None = Field(default=None, description="Description of the enriched asset.")
    group_name: str | None = Field(default=None, description="Asset group.")
    partitions: SutroDailyPartitions | None = Field(default=None, description="Daily partitions; none: unpartitioned.")
    partition_expr: str | None = Field(default=None, description="Output column IO managers partition by (e.g. created_at).")
    options: dict[str, Any] = Field(
        default_factory=dict, description="More OpperOptions: max_row_attempts, id_column, output_prefix, on_input_change, ...")
    checks: SutroChecks = Field(default_factory=SutroChecks, description="Asset checks of the enriched table.")
    output_format: Literal["polars", "pandas", "arrow"] = Field(default="polars", description="Table type given to the IO manager.")
    io_manager_key: str | None = Field(default=None, description="IO manager of the enriched table (default io_manager).")
    pool: str | None = Field(default=None, description="Concurrency pool shared by assets calling Opper.")
    max_retries: int = Field(default=0, description="Step retries; a retry calls only the rows without a recorded answer.")
    retry_delay_seconds: float | None = Field(default=None, description="Delay between step retries.")
    resource_key: str = Field(default=DEFAULT_OPPER_RESOURCE_KEY, description="Resource key of the OpperResource.")
    resource: OpperResourceSettings | None = Field(
        default=None, description="The OpperResource to provide; none when another definition provides it.")

    def build_asset(self) -> dg.AssetsDefinition:
        retry = dg.RetryPolicy(max_retries=self.max_retries, delay=self.retry_delay_seconds) if self.max_retries else None
        return opper_function_asset(
            function=self.function, upstream=self.upstream, key=self.asset_key, instructions=self.instructions,
            input_schema=self.input_schema, output_schema=self.output_schema, model=self.opper_model,
            examples=self.examples, examples_file=self.examples_file, call_tags=self.call_tags,
            concurrency=self.concurrency, on_row_error=self.on_row_error, options=self.options,
            checks=self.checks, description=self.description, group_name=self.group_name,
            partitions_def=self.partitions.build() if self.partitions else None, partition_expr=self.partition_expr,
            retry_policy=retry, pool=self.pool, io_manager_key=self.io_manager_key,
            output_format=self.output_format, resource_key=self.resource_key,
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        resources = {self.resource_key: self.resource.build()} if self.resource else {}
        return dg.Definitions(assets=[self.build_asset()], resources=resources)
