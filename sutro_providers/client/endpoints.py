"""Sans-IO endpoint table: each function builds one :class:`Call` (method, path,
query, body, whether it may be retried, how to parse the reply).

Both transports (:class:`~sutro_providers.client.sutro.SutroClient` and
:class:`~sutro_providers.client.sutro.AsyncSutroClient`) execute these, so every endpoint
is written once. Building a call validates the request; a bad request raises
:class:`~sutro_providers.errors.SutroValidationError` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from sutro_providers.client.models import (
    AuthCheck,
    BatchInferenceRequest,
    CancelResult,
    CreateJobResponse,
    FunctionRunRequest,
    FunctionRunResult,
    JobPage,
    JobRecord,
    JobResults,
    JobResultsRequest,
    JobStatus,
    QuotasResponse,
    ResultsUrlResponse,
)
from sutro_providers.errors import SutroValidationError
from sutro_providers.function_spec import FunctionSpec

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange with the Sutro API, independent of the transport.

    ``retryable`` is False for job creation and Function runs (not idempotent:
    a retry could pay twice). ``read_timeout`` overrides the client's read timeout;
    a call that ``runs_function`` (a billed model run) waits up to the config's
    ``timeouts.function_read`` when it gives none.
    """

    name: str
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None
    retryable: bool = True
    read_timeout: float | None = None
    job_name: str | None = field(default=None)
    runs_function: bool = False


def build(model: type[M], /, **values: Any) -> M:
    """Validate a request model; errors name the field but never echo its value
    (an input URL is a pre-signed bearer credential)."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise SutroValidationError(f"invalid {model.__name__}: {problems}") from None


def _parse(model: type[M], key: str | None = None) -> Callable[[Any], M]:
    def parse(payload: Any) -> M:
        return model.model_validate(payload[key] if key else payload)

    return parse


def _seg(value: str) -> str:
    return quote(value, safe="")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def submit_job(**request: Any) -> Call[str]:
    """``POST batch-inference`` → job id. Keyword arguments are the fields of
    :class:`~sutro_providers.client.models.BatchInferenceRequest`; they are validated
    before anything is sent. Never retried: see
    :class:`~sutro_providers.errors.SutroSubmissionOutcomeUnknownError`."""
    return create_job(build(BatchInferenceRequest, **request))


def create_job(request: BatchInferenceRequest) -> Call[str]:
    """``POST batch-inference`` → job id. Never retried (see errors module)."""
    return Call(
        "batch-inference",
        "POST",
        "batch-inference",
        lambda p: CreateJobResponse.model_validate(p).job_id,
        json=request.to_body(),
        retryable=False,
        job_name=request.name,
    )


def job_status(job_id: str) -> Call[JobStatus]:
    """``GET job-status/{id}``; accepts the map form and the legacy bare string."""

    def parse(payload: Any) -> JobStatus:
        value = payload.get("job_status") if isinstance(payload, dict) else None
        if isinstance(value, dict):
            value = value.get(job_id, next(iter(value.values()), None))
        return JobStatus.parse(value)

    return Call("job-status", "GET", f"job-status/{_seg(job_id)}", parse)


def get_job(job_id: str) -> Call[JobRecord]:
    return Call("jobs", "GET", f"jobs/{_seg(job_id)}", _parse(JobRecord, "job"))


def list_jobs(limit: int | None = None, cursor: str | None = None) -> Call[JobPage]:
    params = {k: v for k, v in {"limit": limit, "cursor": cursor}.items() if v is not None}
    return Call("list-jobs", "GET", "list-jobs", _parse(JobPage), params=params or None)


def job_results(
    job_id: str, include_inputs: bool = False, include_cumulative_logprobs: bool = False
) -> Call[JobResults]:
    body = JobResultsRequest(
        job_id=job_id,
        include_inputs=include_inputs,
        include_cumulative_logprobs=include_cumulative_logprobs,
    )
    return Call("job-results", "POST", "job-results", _parse(JobResults), json=body.model_dump())


def results_url(
    job_id: str,
    include_inputs: bool = False,
    include_cumulative_logprobs: bool = False,
    expires_in_seconds: int = 3600,
) -> Call[ResultsUrlResponse]:
    """``GET jobs/{id}/results-url``: the pre-signed results artifact. Its ``urls`` are
    bearer credentials."""
    if not 1 <= expires_in_seconds <= 604800:
        raise SutroValidationError("expires_in_seconds must be between 1 and 604800")
    params = {
        "format": "parquet",
        "include_inputs": _flag(include_inputs),
        "include_cumulative_logprobs": _flag(include_cumulative_logprobs),
        "expires_in_seconds": expires_in_seconds,
    }
    return Call(
        "results-url",
        "GET",
        f"jobs/{_seg(job_id)}/results-url",
        _parse(ResultsUrlResponse),
        params=params,
    )


def cancel_job(job_id: str) -> Call[CancelResult]:
    """``GET job-cancel/{id}`` (the SDK's method). Safe to repeat."""
    return Call("job-cancel", "GET", f"job-cancel/{_seg(job_id)}", _parse(CancelResult))


def stream_progress(job_id: str) -> Call[None]:
    """``GET stream-job-progress/{id}``: NDJSON; the transports stream it line by line."""
    return Call(
        "stream-job-progress", "GET", f"stream-job-progress/{_seg(job_id)}", lambda _: None
    )


def run_function(
    name: str, input: dict[str, Any] | str, confidence_scoring: bool | None = None, timeout: float | None = None
) -> Call[FunctionRunResult]:
    """``POST functions/{name}/run``: one real-time call. Never retried automatically
    (each call is billed). ``timeout`` (seconds) defaults to ``timeouts.function_read``."""
    body = build(FunctionRunRequest, input=input, confidence_scoring=confidence_scoring)
    return Call(
        "functions-run",
        "POST",
        f"functions/{_seg(name)}/run",
        _parse(FunctionRunResult),
        json=body.to_body(),
        retryable=False,
        read_timeout=timeout,
        runs_function=True,
    )


def auth_check() -> Call[bool]:
    return Call("auth-check", "GET", "auth/check", lambda p: AuthCheck.model_validate(p).authenticated)


def get_quotas() -> Call[QuotasResponse]:
    return Call("get-quotas", "GET", "get-quotas", _parse(QuotasResponse))


def list_functions() -> Call[list[FunctionSpec]]:
    """Local-server extension ``GET functions``: the published Function specs."""
    return Call(
        "functions",
        "GET",
        "functions",
        lambda p: [FunctionSpec.model_validate(f) for f in p.get("functions", [])],
    )


def get_function(name: str) -> Call[FunctionSpec]:
    """Local-server extension ``GET functions/{name}``; real deployments answer 404."""
    return Call(
        "function", "GET", f"functions/{_seg(name)}", _parse(FunctionSpec, "function")
    )
