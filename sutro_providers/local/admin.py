"""Admin routes under ``/_admin`` (same API key as ``/v1``).

* ``POST /_admin/faults`` body: a list of rules (or ``{"rules": [...]}``);
  replaces the active rules, ``?append=true`` adds to them.
* ``GET /_admin/faults``, ``DELETE /_admin/faults`` (also releases held requests).
* ``POST /_admin/faults/release``: let the requests held by ``hold_request``
  rules go on (``?endpoint=`` a route name or glob: only those); ``{"released": n}``.
* ``GET /_admin/stats``: ``{"jobs": {"total", "by_status", "by_name"},
  "requests": {route: count}, "faults_injected": {kind: count},
  "held_requests": {route: count held now}}``.
* ``POST /_admin/jobs/{id}/release``: let a ``hold_job`` job finish.
* ``POST /_admin/reset``: drop every job, clear faults and counters.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from sutro_providers.local.errors import ApiError
from sutro_providers.local.state import State

router = APIRouter()


@router.post("/faults")
async def set_faults(request: Request, state: State, append: bool = False) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"[]")
    except ValueError:
        raise ApiError(400, "invalid_json", "body must be a JSON list of fault rules") from None
    rules = body.get("rules") if isinstance(body, dict) else body
    if not isinstance(rules, list):
        raise ApiError(400, "invalid_request", "body must be a list of fault rules or {'rules': [...]}")
    try:
        state.faults.set(rules, append=append)
    except ValidationError as exc:
        raise ApiError(422, "invalid_fault_rule", str(exc).replace("\n", " ")) from None
    return {"rules": state.faults.rules()}


@router.get("/faults")
def get_faults(state: State) -> dict[str, Any]:
    return {"rules": state.faults.rules()}


@router.delete("/faults")
def clear_faults(state: State) -> dict[str, Any]:
    state.faults.clear()
    return {"rules": []}


@router.post("/faults/release")
def release_held(state: State, endpoint: str | None = None) -> dict[str, Any]:
    return {"released": state.faults.release_held(endpoint)}


@router.get("/stats")
def stats(state: State) -> dict[str, Any]:
    with state.lock:
        requests = dict(state.requests)
    return {
        "jobs": state.store.summary(),
        "requests": requests,
        "faults_injected": dict(state.faults.injected),
        "held_requests": state.faults.held(),
    }


@router.post("/jobs/{job_id}/release")
def release(job_id: str, state: State) -> dict[str, Any]:
    if not state.manager.release(job_id):
        raise ApiError(404, "job_not_found", f"Job {job_id} not found")
    return {"released": True, "job_id": job_id}


@router.post("/reset")
async def reset(state: State) -> dict[str, Any]:
    await run_in_threadpool(state.manager.reset)
    state.faults.clear()
    state.faults.injected.clear()
    with state.lock:
        state.requests.clear()
    return {"reset": True}

