"""Typed Opper clients: :class:`OpperClient` (sync) and :class:`AsyncOpperClient`.

They are the Sutro client's machinery with Opper's endpoint table: the sans-IO
:class:`~sutro_providers.client.endpoints.Call`, the two executors of
:mod:`sutro_providers.client.executor`, reply parsing and error mapping
(:func:`sutro_providers.client.transport.parse_response`, which understands Opper's
``{"error": {"code", "message"}}`` bodies), timeouts and the tenacity retry policy.
Errors are the shared :class:`~sutro_providers.errors.SutroError` hierarchy
(401 → ``SutroAuthenticationError``, 429 → ``SutroRateLimitError``...), with
messages that start with ``Opper`` and never hold the key.

Calls are billed, so they are never retried, except a 429 carrying ``Retry-After``
when ``retry_rate_limits=True``. Span reads/updates are retried like Sutro reads.

Example::

    with OpperClient(api_key="op-...") as opper:
        result = opper.call("summarize", {"text": "..."}, output_schema=Summary)
        print(result.data_as(Summary), result.usage.output_tokens, result.cost)
"""

from __future__ import annotations

from typing import Any

from tenacity import retry_if_exception

from sutro_providers import errors
from sutro_providers.client import transport
from sutro_providers.client.endpoints import Call
from sutro_providers.client.executor import AsyncExecutor, Executor, SyncExecutor, endpoint
from sutro_providers.opper import endpoints as ep
from sutro_providers.opper.config import OpperConfig


def _is_announced_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, errors.SutroRateLimitError) and exc.retry_after is not None


def _config(config: OpperConfig | None, base_url: str | None, api_key: str | None, kw: dict[str, Any]) -> OpperConfig:
    return config if config is not None else OpperConfig.resolve(base_url, api_key, **kw)


class OpperEndpoints(Executor):
    """The endpoint methods of both Opper clients (awaitable on :class:`AsyncOpperClient`),
    and their constructor."""

    config: OpperConfig

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, *, config: OpperConfig | None = None, **config_kwargs: Any
    ) -> None:
        super().__init__(_config(config, base_url, api_key, config_kwargs))

    call = endpoint(ep.call)
    call_revision = endpoint(ep.call_revision)
    create_span = endpoint(ep.create_span)
    get_span = endpoint(ep.get_span)
    update_span = endpoint(ep.update_span)

    def _retry_arguments(self, call: Call[Any]) -> dict[str, Any] | None:
        """Reads as Sutro's; a billed call only on an announced 429, and only when
        ``retry_rate_limits`` is set."""
        arguments = transport.retry_arguments(self.config.retry)
        if call.retryable:
            return arguments
        if self.config.retry_rate_limits:
            return {**arguments, "retry": retry_if_exception(_is_announced_rate_limit)}
        return None


class OpperClient(OpperEndpoints, SyncExecutor):
    """Synchronous Opper client; use as a context manager or call :meth:`close`.

    :param base_url: default ``OPPER_BASE_URL`` or ``https://api.opper.ai``.
    :param api_key: default ``OPPER_API_KEY``.
    :param config: a ready :class:`OpperConfig` (overrides the two above).
    """


class AsyncOpperClient(OpperEndpoints, AsyncExecutor):
    """Asynchronous twin of :class:`OpperClient` (same methods, awaitable)."""
