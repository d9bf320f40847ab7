"""What both HTTP transports share: headers, turning replies into values or typed
errors, and the retry policy (tenacity).

Retry semantics, in one place:

* calls marked ``retryable`` (every read, and ``job-results``) are retried on
  429, 500/502/503/504/524, dropped connections and ``results_not_ready``, with exponential
  backoff and full jitter, honouring ``Retry-After``, bounded by
  :class:`~sutro_providers.client.config.RetryPolicy` (attempts and total time);
* job creation is never retried: a 5xx/524 or a connection dropped after the
  request was sent raises :class:`SutroSubmissionOutcomeUnknownError`; a failure to
  connect at all raises :class:`SutroConnectionError` (nothing was sent);
* Function runs are never retried here (each call is billed); the real-time
  runner retries 429s per row itself.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, TypeVar

import httpx
from tenacity import (
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from sutro_providers import errors
from sutro_providers.client.config import RETIRED_API_MESSAGE, ClientConfig, RetryPolicy
from sutro_providers.client.endpoints import Call
from sutro_providers.client.models import JobPage, JobRecord

T = TypeVar("T")
log = logging.getLogger("sutro_providers.client.sutro")


def auth_headers(config: ClientConfig) -> dict[str, str]:
    return {
        "Authorization": f"{config.auth_scheme} {config.api_key.get_secret_value()}",
        "User-Agent": config.user_agent,
        "Accept": "application/json",
    }


def request_kwargs(config: ClientConfig, call: Call[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"params": call.params}
    if call.json is not None:
        kwargs["content"] = json.dumps(_finite(call.json), allow_nan=False, default=str).encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    read = call.read_timeout or (config.timeouts.function_read if call.runs_function else None)
    if read is not None:
        kwargs["timeout"] = config.timeouts.httpx(read=read)
    return kwargs


def _finite(value: Any) -> Any:
    """NaN/inf (pandas' missing values) become ``null``, as strict JSON requires."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _body(response: httpx.Response) -> tuple[Any, bool]:
    try:
        return response.json(), True
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None, False


def _describe(payload: Any) -> tuple[Any, str | None, str | None]:
    """(detail, code, request_id) from Sutro's ``{"detail","code","request_id"}``,
    Opper's ``{"error": {"code","message"}}`` or older ``{"error","details"}`` bodies."""
    if not isinstance(payload, dict):
        return payload, None, None
    err = payload.get("error")
    if isinstance(err, dict):
        return err.get("message") or err.get("details"), err.get("code"), payload.get("request_id")
    detail = payload.get("detail", payload.get("message", err))
    return detail, payload.get("code"), payload.get("request_id")


def parse_response(config: ClientConfig, call: Call[T], response: httpx.Response) -> T:
    """The parsed value of a 2xx reply, or the typed error for anything else."""
    payload, is_json = _body(response)
    if response.is_success and is_json:
        try:
            return _scrub(call.parse(payload), config.api_key.get_secret_value())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            msg = f"{config.product} {call.name}: unexpected reply shape ({type(exc).__name__})"
            kw: dict[str, Any] = dict(endpoint=call.name, status_code=response.status_code)
            if call.name == "batch-inference":  # a 2xx we cannot read: the job may exist
                raise errors.SutroSubmissionOutcomeUnknownError(msg, job_name=call.job_name, **kw) from None
            raise errors.SutroServerError(msg, **kw) from None
    raise error_for(config, call, response, payload, is_json)


def _scrub(value: T, key: str) -> T:
    """Server-supplied failure reasons end up in exception messages and logs: make
    sure none of them carries the API key back to us."""
    jobs = value.jobs if isinstance(value, JobPage) else [value] if isinstance(value, JobRecord) else []
    for job in jobs:
        reason = job.failure_reason
        if reason is not None and isinstance(reason.message, str):
            reason.message = errors.redact(reason.message, [key])
    return value


def error_for(
    config: ClientConfig, call: Call[Any], response: httpx.Response, payload: Any, is_json: bool
) -> errors.SutroError:
    status = response.status_code
    secrets = [config.api_key.get_secret_value()]
    if not is_json:
        ctype = response.headers.get("content-type", "unknown").split(";")[0]
        msg = f"{config.product} {call.name}: HTTP {status} with a non-JSON body ({ctype}); is the API URL right?"
        if call.name == "batch-inference" and (status >= 500 or response.is_success):
            return errors.SutroSubmissionOutcomeUnknownError(
                errors.redact(msg, secrets), endpoint=call.name, status_code=status, job_name=call.job_name
            )
        return errors.SutroServerError(errors.redact(msg, secrets), endpoint=call.name, status_code=status)
    detail, code, request_id = _describe(payload)
    if detail is not None:  # the error object carries no secret either (it is pickled, logged)
        detail = json.loads(errors.redact(json.dumps(detail, default=str), secrets))
    text = errors.redact(str(detail), secrets) if detail is not None else response.reason_phrase
    msg = f"{config.product} {call.name}: HTTP {status}: {text}"
    if code:
        msg += f" (code={code})"
    if request_id:
        msg += f" (request_id={request_id})"
    kw: dict[str, Any] = dict(
        endpoint=call.name, status_code=status, detail=detail, code=code, request_id=request_id
    )
    if status == 410 and detail == RETIRED_API_MESSAGE:
        return errors.SutroConfigurationError(msg, **kw)
    if status in (401, 403):
        return errors.SutroAuthenticationError(msg, **kw)
    if status == 404:
        return errors.SutroNotFoundError(msg, **kw)
    if status == 409 and code == "results_not_ready":
        return errors.SutroResultsNotReadyError(msg, **kw)
    if status == 429:
        return errors.SutroRateLimitError(msg, retry_after=_retry_after(response), **kw)
    if status >= 500 and call.name == "batch-inference":
        return errors.SutroSubmissionOutcomeUnknownError(
            msg + "; the job may have been created", job_name=call.job_name, **kw
        )
    if status >= 500:
        return errors.SutroServerError(msg, **kw)
    if code == "quota_exceeded":
        return errors.SutroQuotaExceededError(msg, **kw)
    if status in (400, 413, 422):
        return errors.SutroValidationError(msg, **kw)
    return errors.SutroError(msg, **kw)


def transport_error(config: ClientConfig, call: Call[Any], exc: httpx.TransportError) -> errors.SutroError:
    """Map an httpx failure. Only a failure to connect proves nothing was sent."""
    kind = type(exc).__name__
    if call.name == "batch-inference" and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return errors.SutroSubmissionOutcomeUnknownError(
            f"{config.product} {call.name}: connection failed after sending ({kind}); the job may have been created",
            endpoint=call.name,
            job_name=call.job_name,
        )
    return errors.SutroConnectionError(f"{config.product} {call.name}: {kind}{_where(exc)}", endpoint=call.name)


def _where(exc: httpx.TransportError) -> str:
    """`` (cannot reach http://host:port)``: the origin only, never a path or query."""
    try:
        url = exc.request.url
    except RuntimeError:  # no request attached
        return ""
    verb = "cannot reach" if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) else "talking to"
    return f" ({verb} {url.scheme}://{url.netloc.decode()})"


class WaitHonouringRetryAfter(wait_random_exponential):
    """Full-jitter exponential backoff, never shorter than the server's Retry-After."""

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = super().__call__(retry_state)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return max(delay, float(retry_after)) if retry_after else delay


def _log_retry(retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    sleep = retry_state.next_action.sleep if retry_state.next_action else 0
    log.warning("retrying after %s (attempt %d, sleeping %.1fs)", exc, retry_state.attempt_number, sleep)


def retry_arguments(policy: RetryPolicy) -> dict[str, Any]:
    """Keyword arguments for ``tenacity.Retrying``/``AsyncRetrying``."""
    return dict(
        stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_elapsed),
        wait=WaitHonouringRetryAfter(multiplier=policy.initial_backoff, max=policy.max_backoff),
        retry=retry_if_exception(errors.is_transient),
        before_sleep=_log_retry,
        reraise=True,
    )
