"""Result routes: JSON columns, pre-signed Parquet artifacts and their download."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from sutro_providers.local.errors import ApiError, json_error
from sutro_providers.local.inputs import parse_body
from sutro_providers.local.routes_jobs import load_job
from sutro_providers.local.state import LocalState, State
from sutro_providers.local.store import StoredJob

router = APIRouter()
presigned_router = APIRouter()
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_bool(value: str | bool | None, name: str) -> bool:
    """Query booleans: True/true/1/yes and False/false/0/no (case-insensitive)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off", ""):
        return False
    raise ApiError(400, "invalid_request", f"{name}: expected a boolean, got {value!r}")


def results_job(state: LocalState, job_id: str, endpoint: str) -> StoredJob:
    """A SUCCEEDED full job, else 409 ``job_not_succeeded`` / ``results_not_ready``."""
    job = load_job(state, job_id)
    if job.status != "SUCCEEDED":
        raise ApiError(409, "job_not_succeeded", f"Job {job_id} is {job.status}; results exist only after SUCCEEDED")
    if job.config.get("cost_estimate"):
        raise ApiError(409, "no_results", f"Job {job_id} is a cost estimate and has no results")
    if state.faults.take(("results_not_ready",), endpoint) is not None:
        raise ApiError(409, "results_not_ready", f"Results of job {job_id} are not ready yet; retry shortly")
    return job


def _columns(state: LocalState, job: StoredJob, inputs: bool, logprobs: bool) -> list[str]:
    names = pq.read_schema(state.store.job_dir(job.job_id) / "results.parquet").names
    drop = {n for n, keep in (("inputs", inputs), ("cumulative_logprobs", logprobs)) if not keep}
    return [n for n in names if n not in drop]


@router.post("/job-results")
async def job_results(request: Request, state: State) -> dict[str, Any]:
    """Columns of parallel lists under ``results``, in input order."""
    body = parse_body(await request.body())
    job_id = body.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise ApiError(400, "invalid_request", "job_id: is required")
    inputs = parse_bool(body.get("include_inputs"), "include_inputs")
    logprobs = parse_bool(body.get("include_cumulative_logprobs"), "include_cumulative_logprobs")
    job = results_job(state, job_id, "job-results")

    def read() -> dict[str, list[Any]]:
        path = state.store.job_dir(job_id) / "results.parquet"
        return pq.read_table(path, columns=_columns(state, job, inputs, logprobs)).to_pydict()

    results = await run_in_threadpool(read)
    return {"results": results, "message": f"Results retrieved successfully for job {job_id}"}


def _artifact(state: LocalState, job: StoredJob, inputs: bool, logprobs: bool) -> Path:
    """Build (once) the Parquet artifact for this include-flag combination."""
    name = f"sutro-results~{job.job_id}~inputs={int(inputs)}~logprobs={int(logprobs)}.parquet"
    out_dir = state.store.job_dir(job.job_id) / "artifacts"
    path = out_dir / name
    if not path.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        table = pq.read_table(state.store.job_dir(job.job_id) / "results.parquet", columns=_columns(state, job, inputs, logprobs))
        tmp = out_dir / f".{uuid.uuid4().hex}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)
    return path


@router.get("/jobs/{job_id}/results-url")
async def results_url(
    job_id: str,
    request: Request,
    state: State,
    format: str = "parquet",
    include_inputs: str | None = None,
    include_cumulative_logprobs: str | None = None,
    expires_in_seconds: int = 3600,
) -> dict[str, Any]:
    """Pre-signed GET/HEAD URLs of a Parquet artifact served by this server."""
    if format.lower() != "parquet":
        raise ApiError(400, "unsupported_format", f"format: only 'parquet' is supported, got {format!r}")
    if not 1 <= expires_in_seconds <= 604800:
        raise ApiError(400, "invalid_request", "expires_in_seconds: must be between 1 and 604800")
    inputs = parse_bool(include_inputs, "include_inputs")
    logprobs = parse_bool(include_cumulative_logprobs, "include_cumulative_logprobs")
    job = results_job(state, job_id, "results-url")
    path = await run_in_threadpool(_artifact, state, job, inputs, logprobs)
    origin = str(request.base_url).rstrip("/")
    url = origin + state.presigner.path(job_id, path.name, expires_in_seconds)
    return {
        "job_id": job_id,
        "format": "parquet",
        "include_inputs": inputs,
        "include_cumulative_logprobs": logprobs,
        "expires_in_seconds": expires_in_seconds,
        "artifact": {
            "bucket": "sutro-local",
            "key": f"jobs/local/{job_id}/results/{path.name}",
            "filename": path.name,
            "size_bytes": path.stat().st_size,
        },
        "urls": {"get": url, "head": url},
    }


@presigned_router.api_route("/_presigned/{token}/{filename}", methods=["GET", "HEAD"])
def presigned(token: str, filename: str, request: Request, state: State) -> Response:
    """Serve an artifact: HEAD (Content-Length, ETag), GET with Range/If-Range."""
    q = request.query_params
    target = state.presigner.verify(token, filename, q.get("X-Amz-Expires"), q.get("X-Amz-Signature"))
    path = state.store.job_dir(target.job_id) / "artifacts" / target.filename
    if not path.is_file():
        return json_error(404, "artifact_not_found", "The artifact no longer exists")
    stat = path.stat()
    etag = '"' + hashlib.sha256(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:32] + '"'
    wanted = request.headers.get("range")
    if wanted is not None:
        m = _RANGE.match(wanted.strip())
        if m is None or not (m.group(1) or m.group(2)):
            return json_error(400, "invalid_range", "Range: only a single 'bytes=start-[end]' range is supported")
        if m.group(1) and int(m.group(1)) >= stat.st_size:
            return json_error(416, "range_not_satisfiable", "Range starts beyond the end of the artifact", {"Content-Range": f"bytes */{stat.st_size}"})
    return FileResponse(path, media_type="application/vnd.apache.parquet", filename=target.filename, headers={"ETag": etag}, stat_result=stat)
