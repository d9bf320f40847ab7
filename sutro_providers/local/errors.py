"""JSON error bodies for every failure: ``{"detail", "code", "request_id"}``.

The official SDK calls ``response.json()`` on error responses, so no route,
including unknown ones, 405s and FastAPI's own 422 validation errors, may
answer with HTML or plain text.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("sutro_providers.local")

_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}


class ApiError(Exception):
    """An error answered as JSON with a stable machine-readable ``code``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def new_request_id() -> str:
    """A fresh opaque request id (``req_<hex>``)."""
    return "req_" + uuid.uuid4().hex


def error_body(detail: str, code: str) -> dict[str, Any]:
    """The one error shape used everywhere."""
    return {"detail": detail, "code": code, "request_id": new_request_id()}


def json_error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(error_body(detail, code), status_code=status, headers=headers)


def api_error_response(exc: ApiError) -> JSONResponse:
    """The answer to an :class:`ApiError`."""
    return json_error(exc.status, exc.code, exc.detail, exc.headers)


def unexpected_error_response(exc: Exception) -> JSONResponse:
    """The answer to a bug: logged (type and traceback), a generic 500 to the client."""
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return json_error(500, "internal_error", "internal server error")


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Make FastAPI/Starlette answer JSON errors in our shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such route"
        return json_error(exc.status_code, code, detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return json_error(422, "validation_error", _describe_validation(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response(exc)
