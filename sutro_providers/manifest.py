"""The run manifest: a small JSON-serialisable summary of one enrichment run.

Orchestrators put it in XCom (Airflow) or materialization metadata (Dagster). It
holds job ids, row counts, usage, cost, timings and where the output is; never a
secret and never a pre-signed URL.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

RunState = Literal["noop", "submitted", "succeeded", "failed", "cancelled", "timeout", "estimating", "estimated"]
"""``estimating``: the cost-estimate jobs run (``estimate_job_ids``), nothing else was
submitted yet; ``estimated``: an estimate-only run ended (``cost_estimate_usd``), no run job."""


class ShardInfo(BaseModel):
    """One Sutro job of a run (a run has one shard unless it was split)."""

    index: int
    job_id: str | None = None
    job_name: str
    rows: int
    status: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


class ResultSummary(BaseModel):
    """What the enriched rows look like, for logs and metadata."""

    label_counts: dict[str, int] | None = None
    mean_confidence: float | None = None
    min_confidence: float | None = None
    rows_below_confidence: int | None = None
    confidence_threshold: float | None = None


class ModelUsage(BaseModel):
    """Calls, tokens and USD cost of one model within a run (per-row backends)."""

    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


class RowError(BaseModel):
    """A row whose call failed after its retries: row number, id (``id_column``
    value, when set) and the reason."""

    row: int
    id: str | None = None
    reason: str


class Manifest(BaseModel):
    run_key: str
    identity: str
    function: str
    model: str | None = None
    state: RunState
    shards: list[ShardInfo] = Field(default_factory=list)
    rows_in: int = 0
    rows_submitted: int = 0
    rows_out: int = 0
    rows_skipped: int = 0
    rows_reused: int = 0  # incremental runs: rows whose results came from the results cache
    cost_avoided_usd: float | None = None  # what the reused rows cost when they were run
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    cost_estimate_usd: float | None = None
    estimate_job_ids: list[str] = Field(default_factory=list)
    staging_prefix: str | None = None
    output_uri: str | None = None
    output_columns: list[str] = Field(default_factory=list)
    summary: ResultSummary = Field(default_factory=ResultSummary)
    timings: dict[str, float] = Field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    message: str | None = None
    backend: Literal["sutro", "opper"] = "sutro"
    usage_by_model: dict[str, ModelUsage] = Field(default_factory=dict)
    rows_failed: int = 0
    row_errors: list[RowError] = Field(default_factory=list)
    trace_span_id: str | None = None

    @property
    def job_ids(self) -> list[str]:
        return [s.job_id for s in self.shards if s.job_id]

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types only (for XCom and metadata)."""
        data = self.model_dump(mode="json")
        data["job_ids"] = self.job_ids
        return data
