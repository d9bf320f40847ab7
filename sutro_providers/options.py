"""What a caller chooses for one enrichment run, and where staging happens.

These are plain pydantic models so orchestrators can build them from templated
operator arguments, resource config or component YAML, and serialise them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sutro_providers.function_spec import InputField


class StagingLocation(BaseModel):
    """Where inputs are staged as Parquet and the ledger is kept: any fsspec URL
    that can be pre-signed (``s3://bucket/prefix``). ``storage_options`` go to
    fsspec (for s3fs: ``key``, ``secret``, ``client_kwargs={"endpoint_url": ...}``).
    ``signed_url_expiry`` (seconds) must cover the queue and run time of the job.
    ``unconditional_ledger_writes`` (UNSAFE, off by default) allows a store without
    conditional writes (neither S3 nor a local path): two overlapping attempts of a
    run may then both submit and pay (see :mod:`sutro_providers.submission.ledger_store`)."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(min_length=1)
    storage_options: dict[str, Any] = Field(default_factory=dict, repr=False)
    signed_url_expiry: int = Field(default=7 * 24 * 3600, ge=60, le=7 * 24 * 3600)
    unconditional_ledger_writes: bool = False


# Waiting defaults, shared by the options below, the pollers, the Airflow operator,
# sensor and trigger, and the Dagster resource and component.
POLL_INTERVAL = 10.0
"""First interval between two polls of a job's status, in seconds (grows 1.5x per poll)."""
MAX_POLL_INTERVAL = 60.0
"""Longest interval between two polls, in seconds."""
MAX_CONSECUTIVE_POLL_ERRORS = 5
"""Failed polls in a row tolerated (after the client's own retries) before a wait gives up."""
PROGRESS_INTERVAL = 60.0
"""At most one progress line per this many seconds while waiting (status changes always get one)."""


class EnrichmentOptions(BaseModel):
    """One run's choices. Everything here is safe to log (no secrets).

    :param function: the published Sutro Function name (sent as ``model``).
    :param input_fields: the Function's inputs, when the server does not publish
        specs (real deployments); otherwise read from ``GET functions/{name}``.
    :param job_priority: 0 (prototyping) or 1 (production, higher quotas).
    :param max_rows_per_job: split into shards of at most this many rows (also
        split when the deployment's row quota is lower).
    :param max_concurrent_jobs: how many shard submissions are sent in parallel (every
        shard is submitted before the wait; Sutro queues the jobs).
    :param sampling_params: model sampling parameters (vLLM ``SamplingParams`` keys:
        ``temperature``, ``top_p``, ``top_k``, ``max_tokens``, ``seed``...; numbers or
        booleans), merged over the Function's defaults by Sutro.
    :param random_seed_per_input: give each row its own random seed (Batch API
        ``random_seed_per_input``; default off).
    :param truncate_rows: truncate rows longer than the model's context window
        instead of failing the job (Batch API ``truncate_rows``; default off).
    :param max_cost_usd: run a cost-estimate job first and refuse to submit above it.
    :param on_invalid_rows: ``fail`` (default: nothing is submitted) or ``skip``
        (invalid rows are kept in the output with null results and a reason).
    :param on_concurrent_attempt: another attempt of the same run is creating a
        shard's job right now (a "dead" worker that is not, a run re-executed twice at
        once): ``wait`` (default) for its job id and reattach, or ``fail`` at once.
    :param claim_lease_seconds: how long a claim on a shard's job creation holds when
        its holder stops answering (a holder on the same host whose process is gone
        loses it at once); must exceed one job-creation call.
    :param on_input_change: when a retry finds a different input than the attempt
        it continues: ``fail`` (default) or ``resubmit`` (new jobs, old ones cancelled).
    :param id_column: an existing unique column to identify rows (strings, integers or
        UUIDs; kept in the output with its type);
        by default rows are numbered.
    :param output_uri: write the enriched table as Parquet here (fsspec URL).
    :param output_prefix: prefix for the result columns (avoid clashes with inputs).
    :param poll_interval: first poll interval in seconds (grows to ``max_poll_interval``).
    :param progress_interval: a progress line (rows done / total, percent, elapsed,
        ETA, tokens, cost) at most every this many seconds while waiting, and at every
        status change; a heartbeat line comes every interval even when polls are
        further apart (see :mod:`sutro_providers.waiting.progress_report`).
    :param progress_stream: also read ``stream-job-progress`` while waiting (rows
        done so far; one connection per job, at most ``MAX_STREAMS`` jobs); off: the
        polls alone (total rows, status, tokens and cost once reported).
    :param timeout: seconds to wait for the jobs; ``cancel_on_timeout`` cancels them.
    :param keep_staged: keep the signed input shards after success (by default they
        are removed; the source snapshot is removed too when ``output_uri`` is set).
    :param incremental: pay only for rows without an earlier result: each row's content
        key (Function, revision, sampling parameters, the values of the fields it reads)
        is looked up in the results cache on the staging store; only missed rows are
        submitted; the output has every row, in input order, with ``sutro_reused``
        (see :mod:`sutro_providers.incremental`).
    :param cache_version: part of the cache key: change it to stop reusing results
        (required when the deployment does not publish the Function's spec).
    :param refresh: with ``incremental``: look nothing up, submit every row, and cache
        the fresh results (they win over older entries of the same key).
    :param cache_retention_days: entries older than this are dropped from the cache
        (bounds its size; ``None``: kept until the namespace folder is removed).
    """

    model_config = ConfigDict(extra="forbid")

    function: str = Field(min_length=1)
    input_fields: list[InputField] | None = None
    job_priority: int = Field(default=1, ge=0, le=1)
    sampling_params: dict[str, Any] | None = None
    random_seed_per_input: bool = False
    truncate_rows: bool = False
    description: str | None = Field(default=None, max_length=512)
    max_rows_per_job: int | None = Field(default=None, ge=1)
    max_concurrent_jobs: int = Field(default=4, ge=1, le=64)
    max_cost_usd: float | None = Field(default=None, ge=0)
    on_invalid_rows: Literal["fail", "skip"] = "fail"
    on_input_change: Literal["fail", "resubmit"] = "fail"
    on_concurrent_attempt: Literal["wait", "fail"] = "wait"
    claim_lease_seconds: float = Field(default=600.0, gt=0)
    id_column: str | None = None
    output_uri: str | None = None
    output_storage_options: dict[str, Any] = Field(default_factory=dict, repr=False)
    output_prefix: str = ""
    confidence_threshold: float = Field(default=0.5, ge=0, le=1)
    max_row_chars: int = Field(default=200_000, ge=1)
    poll_interval: float = Field(default=POLL_INTERVAL, gt=0)
    max_poll_interval: float = Field(default=MAX_POLL_INTERVAL, gt=0)
    max_consecutive_poll_errors: int = Field(default=MAX_CONSECUTIVE_POLL_ERRORS, ge=0)
    progress_interval: float = Field(default=PROGRESS_INTERVAL, gt=0)
    progress_stream: bool = True
    timeout: float | None = Field(default=None, gt=0)
    cancel_on_timeout: bool = True
    keep_staged: bool = False
    batch_size: int = Field(default=65_536, ge=1)
    incremental: bool = False
    cache_version: str | None = Field(default=None, max_length=128)
    refresh: bool = False
    cache_retention_days: float | None = Field(default=90.0, gt=0)
