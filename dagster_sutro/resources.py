"""The Sutro resource: connection, staging and waiting settings for Dagster assets.

:class:`SutroResource` holds configuration only. It builds the plain
:class:`~sutro_providers.client.sutro.SutroClient` (HTTP calls and retries) and the
:class:`~sutro_providers.pipeline.EnrichmentPipeline` (staging, idempotent
submission, waiting, collection); :meth:`SutroResource.enrich` runs one
enrichment for an asset (see :mod:`dagster_sutro.execution`).

Example::

    import dagster as dg
    from dagster_sutro import SutroResource

    sutro = SutroResource(
        api_url=dg.EnvVar("SUTRO_API_URL"),
        api_key=dg.EnvVar("SUTRO_API_KEY"),
        staging_url="s3://my-bucket/sutro-staging",
    )
    defs = dg.Definitions(assets=[], resources={"sutro": sutro})
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from dagster_sutro.execution import identity_of, run_enrichment
from dagster_sutro.frames import OutputFormat
from dagster_sutro.metadata import DEFAULT_JOB_URL_TEMPLATE
from dagster_sutro.staging_resource import StagingResource
from sutro_providers.client.config import RetryPolicy, SutroConfig, Timeouts
from sutro_providers.client.sutro import SutroClient
from sutro_providers.options import (
    MAX_POLL_INTERVAL,
    POLL_INTERVAL,
    PROGRESS_INTERVAL,
    EnrichmentOptions,
    StagingLocation,
)

if TYPE_CHECKING:
    from dagster_sutro.checks import SutroChecks
    from sutro_providers.pipeline import EnrichmentPipeline

class SutroResource(StagingResource):
    """Connection to a Sutro deployment plus where inputs are staged.

    Secrets come from the environment: ``api_key=dg.EnvVar("SUTRO_API_KEY")``.
    S3 settings are either the ``s3_*``/``aws_*`` fields or a nested dagster-aws
    :class:`~dagster_aws.s3.S3Resource` (``s3=``), whose endpoint, region and
    credentials are used for staging (:class:`~dagster_sutro.staging_resource.StagingResource`).

    Example::

        import dagster as dg
        from dagster_aws.s3 import S3Resource
        from dagster_sutro import SutroResource

        sutro = SutroResource(
            api_url="https://acme.sutro.example",
            api_key=dg.EnvVar("SUTRO_API_KEY"),
            staging_url="s3://acme-sutro/staging",
            s3=S3Resource(region_name="eu-west-1"),
            cancel_on_termination=True,
        )
    """

    api_url: str = Field(description="Origin of the Sutro deployment (or origin + /v1), e.g. https://acme.sutro.example.")
    api_key: str = Field(description="API key of the deployment. Use dg.EnvVar('SUTRO_API_KEY'); it is never logged.")
    staging_url: str = Field(
        description="fsspec URL (e.g. s3://bucket/prefix) where inputs are staged as Parquet and the run ledger is kept. "
        "Sutro reads the staged files through pre-signed URLs."
    )
    signed_url_expiry: int = Field(
        default=7 * 24 * 3600, description="Seconds the pre-signed input URLs stay valid; must cover queueing and running."
    )
    connect_timeout: float = Field(default=10.0, description="Seconds to connect to the Sutro API.")
    read_timeout: float = Field(default=60.0, description="Seconds to wait for each Sutro API reply.")
    max_retry_attempts: int = Field(default=6, description="Attempts of each retryable API read (job creation is never retried blindly).")
    poll_interval: float = Field(default=POLL_INTERVAL, description="First interval between job status polls, in seconds.")
    max_poll_interval: float = Field(default=MAX_POLL_INTERVAL, description="Longest interval between polls (the interval grows 1.5x per poll).")
    progress_interval: float = Field(
        default=PROGRESS_INTERVAL, gt=0,
        description="Seconds between progress lines (rows done / total, percent, ETA, tokens, cost) in the run's "
        "event log while waiting; a line also at every status change. An asset's own progress_interval wins.",
    )
    wait_timeout: float | None = Field(default=None, description="Seconds to wait for the jobs before failing; none waits forever.")
    cancel_on_timeout: bool = Field(default=True, description="Cancel the jobs when wait_timeout passes.")
    cancel_on_termination: bool = Field(
        default=True,
        description="Cancel the Sutro jobs when the Dagster run is terminated while waiting. Off: the jobs keep "
        "running and a re-execution of the run attaches to them.",
    )
    job_url_template: str = Field(
        default=DEFAULT_JOB_URL_TEMPLATE,
        description="Link shown for each job in the materialization metadata; {origin} and {job_id} are filled in.",
    )

    # ------------------------------------------------------------ builders
    def client_config(self) -> SutroConfig:
        """The validated client configuration (raises on a malformed URL or empty key)."""
        return SutroConfig.resolve(
            self.api_url,
            self.api_key,
            timeouts=Timeouts(connect=self.connect_timeout, read=self.read_timeout),
            retry=RetryPolicy(max_attempts=self.max_retry_attempts),
            user_agent="sutro-providers-dagster",
        )

    def get_client(self) -> SutroClient:
        """A new :class:`SutroClient` (close it, or use it as a context manager)."""
        return SutroClient(config=self.client_config())

    def staging_location(self) -> StagingLocation:
        return super().staging_location().model_copy(update={"signed_url_expiry": self.signed_url_expiry})

    def get_pipeline(self, client: SutroClient | None = None) -> EnrichmentPipeline:
        """An :class:`EnrichmentPipeline` on ``client`` (a new one when omitted)."""
        from sutro_providers.pipeline import EnrichmentPipeline

        return EnrichmentPipeline(client or self.get_client(), self.staging_location())

    def apply_defaults(self, options: EnrichmentOptions) -> EnrichmentOptions:
        """``options`` with the resource's wait settings where the asset left them unset."""
        defaults = {
            "poll_interval": self.poll_interval,
            "max_poll_interval": max(self.max_poll_interval, self.poll_interval),
            "progress_interval": self.progress_interval,
            "timeout": self.wait_timeout,
            "cancel_on_timeout": self.cancel_on_timeout,
        }
        update = {k: v for k, v in defaults.items() if k not in options.model_fields_set}
        return options.model_copy(update=update) if update else options

    # ------------------------------------------------------------ running
    def enrich(
        self,
        context: dg.AssetExecutionContext,
        source: Any,
        *,
        options: EnrichmentOptions,
        output_format: OutputFormat = "polars",
        checks: SutroChecks | None = None,
        stream: bool = False,
    ) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
        """Run ``options.function`` over ``source`` for the asset being materialized and
        yield its :class:`dagster.Output` (enriched table + metadata) and check results.

        The run is named by asset key, partition and root run id, so a re-execution
        or a step retry reattaches to the jobs an earlier attempt paid for. ``stream``:
        the output is the enriched Parquet as a :class:`~dagster_sutro.streams.ParquetTable`
        (for ``source``, pass a :class:`~sutro_providers.inputs.sources.SourceReader`).
        """
        yield from run_enrichment(self, context, source, options=options, output_format=output_format, checks=checks,
                                  stream=stream)

    def cancel_run(self, asset_key: dg.AssetKey | str | Sequence[str], partition: str | None,
                   root_run_id: str) -> list[str]:
        """Cancel the Sutro jobs of one asset materialization that are not finished, and
        return their ids. Idempotent; safe when the run has no jobs (returns ``[]``).

        For a run whose process died mid-wait (SIGKILL, lost node, OOM): nothing else
        cancels its jobs, and ``cancel_on_termination`` cannot run. Either re-execute
        the run (same root run id: it reattaches to the jobs and lands their results)
        or cancel them with this, from a script, an op or a sensor::

            SutroResource(...).cancel_run("support/tickets_triaged", "2026-11-20", run.root_run_id or run.run_id)

        ``partition`` is the partition key (``"start...end"`` for a range, ``None`` when
        unpartitioned). The run's ledger keeps the cancelled job ids: a re-execution of
        that run fails as cancelled (a step failure naming the jobs); a new run submits anew.
        """
        with self.get_client() as client:
            return self.get_pipeline(client).cancel(identity_of(asset_key, partition, root_run_id))
