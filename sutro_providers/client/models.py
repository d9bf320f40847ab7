"""Pydantic v2 models for every Sutro request and response body.

Responses are parsed tolerantly (unknown keys are kept, status values in any case),
because deployments add fields over time. Requests are strict and validated
client-side before anything is sent, mirroring the official SDK's limits. Both
bases (:mod:`sutro_providers.client.wire`) are shared with the Opper models.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sutro_providers.client.wire import WireRequest, WireResponse

JOB_NAME_MAX = 45
JOB_DESCRIPTION_MAX = 512


class JobStatus(StrEnum):
    """Job states. ``is_terminal`` is True for SUCCEEDED, FAILED and CANCELLED.
    CANCELLING means "will not succeed" but is still polled until CANCELLED."""

    UNKNOWN = "UNKNOWN"
    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @classmethod
    def parse(cls, value: object) -> JobStatus:
        """Any case; unknown values (e.g. legacy ``pending``) become UNKNOWN."""
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_success(self) -> bool:
        return self is JobStatus.SUCCEEDED

    @property
    def will_not_succeed(self) -> bool:
        return self in {JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.CANCELLING}


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


# ---------------------------------------------------------------- batch jobs


class BatchInferenceRequest(WireRequest):
    """Body of ``POST batch-inference``. ``inputs`` is a list of prompts or row
    objects, or one http(s) URL of a CSV/Parquet file (how this package submits)."""

    model: str = Field(min_length=1)
    inputs: list[str] | list[dict[str, Any]] | str
    job_priority: int = 0
    json_schema: dict[str, Any] | None = None
    system_prompt: str | None = None
    cost_estimate: bool = False
    sampling_params: dict[str, Any] | None = None
    random_seed_per_input: bool = False
    truncate_rows: bool = False
    name: str | None = Field(default=None, max_length=JOB_NAME_MAX)
    description: str | None = Field(default=None, max_length=JOB_DESCRIPTION_MAX)
    column_name: str | None = None
    id_column_name: str | None = None

    @field_validator("job_priority")
    @classmethod
    def _priority(cls, value: int) -> int:
        if value not in (0, 1):
            raise ValueError(f"job_priority must be 0 or 1, got {value}")
        return value

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: list[Any] | str) -> list[Any] | str:
        if isinstance(value, str):
            if value.startswith("dataset-"):
                raise ValueError("dataset ids are not supported; pass rows or an http(s) URL")
            if not value.startswith(("http://", "https://")):
                raise ValueError("a string input must be an http(s) URL of a CSV or Parquet file")
        elif not value:
            raise ValueError("inputs is empty: there is nothing to run")
        return value

    @field_validator("sampling_params")
    @classmethod
    def _sampling(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for key, item in (value or {}).items():
            if item is not None and not isinstance(item, int | float | bool):
                raise ValueError(f"sampling_params[{key!r}] must be a number or boolean")
        return value

    @model_validator(mode="after")
    def _url_only_columns(self) -> BatchInferenceRequest:
        is_url = isinstance(self.inputs, str)
        if self.id_column_name is not None and not is_url:
            raise ValueError("id_column_name works only with a URL input")
        if self.column_name is not None and not is_url:
            raise ValueError("column_name works only with a URL input")
        return self

    def to_body(self) -> dict[str, Any]:
        """Every key the official SDK sends (nulls included); the URL-only keys only when set."""
        body = self.model_dump(mode="json", exclude={"column_name", "id_column_name"})
        for key in ("column_name", "id_column_name"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


class CreateJobResponse(WireResponse):
    results: str
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return str(self.metadata.get("job_id") or self.results)


class FailureReason(WireResponse):
    message: str | None = None
    additional_context: Any = None


class JobRecord(WireResponse):
    """The job record of ``GET jobs/{id}`` and ``list-jobs``."""

    job_id: str
    status: JobStatus = JobStatus.UNKNOWN
    model: str | None = None
    name: str | None = None
    description: str | None = None
    job_priority: int | None = None
    num_rows: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    job_cost: float | None = None
    cost_estimate: float | None = None
    failure_reason: FailureReason | None = None
    run_type: str | None = None
    datetime_created: datetime | None = None
    datetime_started: datetime | None = None
    datetime_completed: datetime | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> JobStatus:
        return JobStatus.parse(value)

    @field_validator("failure_reason", mode="before")
    @classmethod
    def _failure(cls, value: object) -> object:
        return {"message": value} if isinstance(value, str) else value


class JobPage(WireResponse):
    jobs: list[JobRecord] = Field(default_factory=list)
    next_cursor: str | None = None


class JobResultsRequest(WireRequest):
    job_id: str
    include_inputs: bool = False
    include_cumulative_logprobs: bool = False


class JobResults(WireResponse):
    """Columns of parallel lists, in input order (``outputs`` always present)."""

    results: dict[str, list[Any]]

    @model_validator(mode="after")
    def _parallel(self) -> JobResults:
        lengths = {name: len(col) for name, col in self.results.items()}
        if "outputs" not in lengths:
            raise ValueError("job-results has no 'outputs' column")
        if len(set(lengths.values())) > 1:
            raise ValueError(f"job-results columns differ in length: {lengths}")
        return self


class ResultsArtifact(WireResponse):
    bucket: str | None = None
    key: str | None = None
    filename: str
    size_bytes: int | None = None


class ResultsUrls(WireResponse):
    get: str
    head: str


class ResultsUrlResponse(WireResponse):
    """``GET jobs/{id}/results-url``. ``urls`` are bearer credentials: never log them."""

    job_id: str | None = None
    format: str = "parquet"
    expires_in_seconds: int | None = None
    artifact: ResultsArtifact
    urls: ResultsUrls

    def __repr_args__(self) -> Any:  # keep signed URLs out of reprs and logs
        for key, value in super().__repr_args__():
            yield key, ("<redacted>" if key == "urls" else value)


class CancelResult(WireResponse):
    cancelled: bool = False
    message: str | None = None


class ProgressUpdate(WireResponse):
    """One NDJSON line of ``stream-job-progress``."""

    update_type: str
    result: Any = None

    @property
    def rows_done(self) -> int | None:
        return int(self.result) if self.update_type == "progress" else None

    @property
    def tokens(self) -> tuple[int, int] | None:
        if self.update_type != "tokens" or not isinstance(self.result, dict):
            return None
        return int(self.result.get("input_tokens") or 0), int(self.result.get("output_tokens") or 0)


class Quota(WireResponse):
    row_quota: int | None = None
    token_quota: int | None = None


class QuotasResponse(WireResponse):
    quotas: list[Quota] = Field(default_factory=list)

    def for_priority(self, priority: int) -> Quota:
        return self.quotas[priority] if priority < len(self.quotas) else Quota()


# ------------------------------------------------------------ real-time Functions


class FunctionRunRequest(WireRequest):
    input: dict[str, Any] | str
    confidence_scoring: bool | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"input": self.input}
        if self.confidence_scoring is False:  # sent only when turned off, as the SDK does
            body["confidence_scoring"] = False
        return body


class Prediction(WireResponse):
    label: str
    confidence: float


class Usage(WireResponse):
    input_tokens: int | None = None
    output_tokens: int | None = None
    estimated_cost_usd: float | None = None


class FunctionInfo(WireResponse):
    name: str | None = None
    model: str | None = None
    model_source: str | None = None


class FunctionRunResult(WireResponse):
    """``POST functions/{name}/run``. Both documented shapes parse: extraction
    (``output`` object) and classification (``response`` label + ``predictions``)."""

    output: Any = None
    response: Any = None
    confidence: float | None = None
    predictions: list[Prediction] | None = None
    rationale: str | None = None
    usage: Usage | None = None
    request_id: str | None = None
    function: FunctionInfo | None = None

    @property
    def kind(self) -> Literal["classification", "extraction"]:
        if self.predictions is not None or (self.output is None and self.response is not None):
            return "classification"
        return "extraction"

    @property
    def value(self) -> Any:
        """The answer: ``output``, falling back to the classification ``response``."""
        return self.output if self.output is not None else self.response


class AuthCheck(WireResponse):
    authenticated: bool = False
