"""Job routes: create, status, record, list, cancel, progress stream, auth, quotas."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from sutro_providers.local.errors import ApiError
from sutro_providers.local.inputs import parse_body, plan_job
from sutro_providers.local.state import LocalState, State
from sutro_providers.local.store import TERMINAL, StoredJob

router = APIRouter()
HEARTBEAT_SECONDS = 1.0


def load_job(state: LocalState, job_id: str) -> StoredJob:
    """The job or a 404 ``job_not_found``."""
    job = state.store.get(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"Job {job_id} not found")
    return job


@router.post("/batch-inference")
async def batch_inference(request: Request, state: State) -> dict[str, Any]:
    """Create a job. Always 200 on success (the SDK rejects 201/202)."""
    body = parse_body(await request.body())
    plan = await run_in_threadpool(plan_job, body, state.functions, state.settings)
    job_id = await run_in_threadpool(state.manager.submit, plan)
    return {"metadata": {"job_id": job_id, "message": "Job created successfully"}, "results": job_id}


@router.get("/job-status/{job_id}")
def job_status(job_id: str, state: State) -> dict[str, Any]:
    """``{"job_status": {"<id>": "RUNNING"}}`` (map form, upper case)."""
    return {"job_status": {job_id: load_job(state, job_id).status}}


@router.get("/jobs/{job_id}")
def job_record(job_id: str, state: State) -> dict[str, Any]:
    return {"job": load_job(state, job_id).record}


def _decode_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode().removeprefix("seq:"))
    except ValueError:
        raise ApiError(400, "invalid_cursor", "cursor is not a value returned as next_cursor") from None


@router.get("/list-jobs")
def list_jobs(
    state: State,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first. With ``limit``, page with the returned ``next_cursor``."""
    before = _decode_cursor(cursor) if cursor else None
    jobs = state.store.page(None if limit is None else limit + 1, before)
    next_cursor = None
    if limit is not None and len(jobs) > limit:
        jobs = jobs[:limit]
        next_cursor = base64.urlsafe_b64encode(f"seq:{jobs[-1].seq}".encode()).decode().rstrip("=")
    return {
        "message": "Jobs retrieved successfully.",
        "jobs": [j.record for j in jobs],
        "next_cursor": next_cursor,
    }


@router.api_route("/job-cancel/{job_id}", methods=["GET", "POST"])
def job_cancel(job_id: str, state: State) -> dict[str, Any]:
    cancelled, message = state.manager.cancel(load_job(state, job_id))
    return {"cancelled": cancelled, "message": message}


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\n").encode()


async def _progress_lines(state: LocalState, job_id: str, drop_early: bool) -> AsyncIterator[bytes]:
    sent: tuple[int, int, int] | None = None
    last_beat = 0.0
    while True:
        job = state.store.get(job_id)
        if job is None:
            return
        live = state.manager.progress(job_id)
        if job.status == "SUCCEEDED":
            counts = (int(job.record["num_rows"]), int(job.record["input_tokens"] or 0), int(job.record["output_tokens"] or 0))
            rate = 0.0
        elif live is not None:
            counts = (live.rows_done, live.input_tokens, live.output_tokens)
            rate = live.tokens_per_second()
        else:
            counts, rate = (0, 0, 0), 0.0
        if counts != sent:
            yield _line({"update_type": "progress", "result": counts[0]})
            if drop_early:
                return
            tokens = {"input_tokens": counts[1], "output_tokens": counts[2], "total_tokens_processed_per_second": rate}
            yield _line({"update_type": "tokens", "result": tokens})
            sent = counts
        if job.status in TERMINAL or state.manager.stopping.is_set():
            return
        if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
            yield _line({"update_type": "heartbeat"})
            last_beat = time.monotonic()
        await asyncio.sleep(0.1)


@router.get("/stream-job-progress/{job_id}")
def stream_job_progress(job_id: str, state: State) -> StreamingResponse:
    """NDJSON: ``progress`` / ``tokens`` lines on change, ``heartbeat`` every ~1 s.

    Ends when the job is terminal (the final counts are sent first).
    """
    load_job(state, job_id)
    drop = state.faults.take(("stream_drop",), "stream-job-progress", "GET") is not None
    return StreamingResponse(
        _progress_lines(state, job_id, drop),
        media_type="application/x-ndjson",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/auth/check")
def auth_check() -> dict[str, Any]:
    return {"authenticated": True}


@router.get("/get-quotas")
def get_quotas(state: State) -> dict[str, Any]:
    """Row/token quotas indexed by priority (0, 1)."""
    return {"quotas": [{"row_quota": q.row_quota, "token_quota": q.token_quota} for q in state.settings.quotas]}
