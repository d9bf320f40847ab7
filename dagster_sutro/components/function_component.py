"""``SutroFunctionComponent``: a Sutro-enriched asset declared in ``defs.yaml``.

Example ``defs.yaml``::

    type: dagster_sutro.SutroFunctionComponent
    attributes:
      function: ticket-triage
      upstream: support/tickets
      asset_key: support/tickets_triaged
      partitions:
        start_date: "2026-11-01"
      partition_expr: created_at
      checks:
        max_low_confidence_share: 0.3
        max_cost_usd: 1.0
      resource:
        api_url: "{{ env.SUTRO_API_URL }}"
        staging_url: "s3://my-bucket/sutro"

The API key is read from the environment variable ``resource.api_key_env_var``
(default ``SUTRO_API_KEY``) at run time through :class:`dagster.EnvVar`, so it
never appears in the resolved configuration; ``api_key: "{{ env.X }}"`` also
works but resolves the value when the definitions load.

Scaffold one with ``dg scaffold defs dagster_sutro.SutroFunctionComponent my_enrichment``.
"""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg
from pydantic import Field

from dagster_sutro.asset_decorator import DEFAULT_RESOURCE_KEY, sutro_function_asset
from dagster_sutro.checks import SutroChecks
from dagster_sutro.resources import SutroResource
from sutro_providers.options import MAX_POLL_INTERVAL, POLL_INTERVAL, PROGRESS_INTERVAL


class SutroDailyPartitions(dg.Model, dg.Resolvable):
    """Daily partitions of the enriched asset (and, by identity mapping, of its upstream)."""

    start_date: str = Field(description="First partition, YYYY-MM-DD.")
    end_date: str | None = Field(default=None, description="Last partition (exclusive), YYYY-MM-DD; none: open-ended.")
    timezone: str | None = Field(default=None, description="Timezone of the partition boundaries (default UTC).")
    end_offset: int = Field(default=0, description="Extra partitions past the last complete day (1 includes today).")

    def build(self) -> dg.DailyPartitionsDefinition:
        return dg.DailyPartitionsDefinition(start_date=self.start_date, end_date=self.end_date,
                                            timezone=self.timezone, end_offset=self.end_offset)


class SutroResourceSettings(dg.Model, dg.Resolvable):
    """The :class:`SutroResource` the component provides under ``resource_key``."""

    api_url: str = Field(description="Origin of the Sutro deployment, e.g. '{{ env.SUTRO_API_URL }}'.")
    api_key: str | None = Field(default=None, description="API key; prefer api_key_env_var (read at run time, never resolved into config).")
    api_key_env_var: str = Field(default="SUTRO_API_KEY", description="Environment variable holding the API key.")
    staging_url: str = Field(description="fsspec URL (s3://bucket/prefix) where inputs are staged.")
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint for staging.")
    aws_region_name: str | None = Field(default=None, description="AWS region of the staging bucket.")
    poll_interval: float = Field(default=POLL_INTERVAL, description="First interval between status polls, in seconds.")
    max_poll_interval: float = Field(default=MAX_POLL_INTERVAL, description="Longest interval between polls, in seconds.")
    wait_timeout: float | None = Field(default=None, description="Seconds to wait for the jobs; none waits forever.")
    progress_interval: float = Field(default=PROGRESS_INTERVAL, gt=0, description="Seconds between progress lines while waiting.")
    cancel_on_termination: bool = Field(default=True, description="Cancel the jobs when the run is terminated.")

    def build(self) -> SutroResource:
        return SutroResource(
            api_url=self.api_url,
            api_key=self.api_key if self.api_key else dg.EnvVar(self.api_key_env_var),
            staging_url=self.staging_url,
            s3_endpoint_url=self.s3_endpoint_url,
            aws_region_name=self.aws_region_name,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            wait_timeout=self.wait_timeout,
            progress_interval=self.progress_interval,
            cancel_on_termination=self.cancel_on_termination,
        )


class SutroFunctionComponentScaffolder(dg.Scaffolder):
    """Writes a ``defs.yaml`` with every required attribute filled with a placeholder."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        dg.scaffold_component(
            request,
            {
                "function": "ticket-triage",
                "upstream": "support/tickets",
                "asset_key": "support/tickets_triaged",
                "checks": {"row_parity": True, "max_low_confidence_share": 0.3},
                "resource": {
                    "api_url": "{{ env.SUTRO_API_URL }}",
                    "api_key_env_var": "SUTRO_API_KEY",
                    "staging_url": "s3://my-bucket/sutro-staging",
                },
            },
        )


@dg.scaffold_with(SutroFunctionComponentScaffolder)
class SutroFunctionComponent(dg.Component, dg.Model, dg.Resolvable):
    """Runs a Sutro Function over an upstream table and materializes the enriched table.

    Builds one :func:`~dagster_sutro.sutro_function_asset` (with its asset checks)
    and, when ``resource`` is set, the :class:`~dagster_sutro.SutroResource` under
    ``resource_key``.

    Example (Python)::

        import dagster as dg
        from dagster_sutro import SutroFunctionComponent

        component = SutroFunctionComponent(function="ticket-triage", upstream="support/tickets",
                                           asset_key="support/tickets_triaged")
    """

    function: str = Field(description="The published Sutro Function to run, e.g. ticket-triage.")
    upstream: str = Field(description="Key of the table to enrich, slash-separated (support/tickets).")
    asset_key: str = Field(description="Key of the enriched asset, slash-separated (support/tickets_triaged).")
    description: str | None = Field(default=None, description="Description of the enriched asset.")
    group_name: str | None = Field(default=None, description="Asset group.")
    partitions: SutroDailyPartitions | None = Field(default=None, description="Daily partitions; none: unpartitioned.")
    partition_expr: str | None = Field(default=None, description="Output column IO managers partition by (e.g. created_at).")
    input_fields: list[dict[str, Any]] | None = Field(
        default=None, description="The Function's input fields ({name, type, required}) when the deployment does not publish them."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="More EnrichmentOptions: job_priority, max_rows_per_job, max_cost_usd, on_invalid_rows, ..."
    )
    incremental: bool = Field(default=False, description="Submit only rows without a cached result (a re-run over unchanged rows pays nothing).")
    cache_version: str | None = Field(default=None, description="Part of the results cache key: change it to stop reusing results.")
    checks: SutroChecks = Field(default_factory=SutroChecks, description="Asset checks of the enriched table.")
    output_format: Literal["polars", "pandas", "arrow"] = Field(default="polars", description="Table type given to the IO manager.")
    io_manager_key: str | None = Field(default=None, description="IO manager of the enriched table (default io_manager).")
    pool: str | None = Field(default=None, description="Concurrency pool shared by assets calling the same deployment.")
    max_retries: int = Field(default=0, description="Step retries; a retry reattaches to the jobs already submitted.")
    retry_delay_seconds: float | None = Field(default=None, description="Delay between step retries.")
    resource_key: str = Field(default=DEFAULT_RESOURCE_KEY, description="Resource key of the SutroResource.")
    progress_interval: float | None = Field(
        default=None, gt=0, description="Seconds between progress lines in the run's event log while waiting "
        "(default: the resource's, 60).")
    resource: SutroResourceSettings | None = Field(
        default=None, description="The SutroResource to provide; none when another definition provides it."
    )

    def build_asset(self) -> dg.AssetsDefinition:
        retry = dg.RetryPolicy(max_retries=self.max_retries, delay=self.retry_delay_seconds) if self.max_retries else None
        return sutro_function_asset(
            function=self.function,
            upstream=self.upstream,
            key=self.asset_key,
            description=self.description,
            group_name=self.group_name,
            partitions_def=self.partitions.build() if self.partitions else None,
            partition_expr=self.partition_expr,
            retry_policy=retry,
            pool=self.pool,
            input_fields=self.input_fields,
            options=self.options,
            incremental=self.incremental or None,
            cache_version=self.cache_version,
            checks=self.checks,
            io_manager_key=self.io_manager_key,
            output_format=self.output_format,
            resource_key=self.resource_key,
            progress_interval=self.progress_interval,
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        resources = {self.resource_key: self.resource.build()} if self.resource else {}
        return dg.Definitions(assets=[self.build_asset()], resources=resources)
