"""Typed Opper clients: :class:`OpperClient` (sync) and :class:`AsyncOpperClient`.

They reuse the Sutro client's transport pieces: the sans-IO :class:`Call`, reply
parsing and error mapping (:func:`sutro_providers.client.transport.parse_response`, which
understands Opper's ``{"error": {"code", "message"}}`` bodies), timeouts and the
tenacity retry policy. Errors are the shared :class:`~sutro_providers.errors.SutroError`
hierarchy (401 → ``SutroAuthenticationError``, 429 → ``SutroRateLimitError``...),
with messages that start with ``Opper`` and never hold the key.

Calls are billed, so they are never retried, except a 429 carrying ``Retry-After``
when ``retry_rate_limits=True``. Span reads/updates are retried like Sutro reads.

Example::

    with OpperClient(api_key="op-...") as opper:
        result = opper.call("summarize", {"text": "..."}, output_schema=Summary)
        print(result.data_as(Summary), result.usage.output_tokens, result.cost)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, Retrying, retry_if_exception

from sutro_providers import errors
from sutro_providers.client import transport
from sutro_providers.client.endpoints import Call
from sutro_providers.opper import endpoints as ep
from sutro_providers.opper.config import OpperConfig
from sutro_providers.opper.models import OpperCallResult, RevisionCallResult, Span, V2Revision

T = TypeVar("T")


def _is_announced_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, errors.SutroRateLimitError) and exc.retry_after is not None


def _retry_arguments(config: OpperConfig, call: Call[Any]) -> dict[str, Any] | None:
    """Tenacity arguments for ``call``, or None when it must be sent exactly once."""
    arguments = transport.retry_arguments(config.retry)
    if call.retryable:
        return arguments
    if config.retry_rate_limits:
        return {**arguments, "retry": retry_if_exception(_is_announced_rate_limit)}
    return None


def _rebrand(exc: errors.SutroError) -> errors.SutroError:
    if exc.message.startswith("Sutro "):
        exc.message = "Opper " + exc.message[len("Sutro ") :]
        exc.args = (exc.message,)
    return exc


def _http_options(config: OpperConfig) -> dict[str, Any]:
    return dict(
        base_url=config.base_url + "/",
        headers={
            "Authorization": f"Bearer {config.api_key.get_secret_value()}",
            "User-Agent": config.user_agent,
            "Accept": "application/json",
        },
        timeout=config.timeouts.httpx(),
        limits=httpx.Limits(max_connections=config.max_connections),
        follow_redirects=False,
    )


class _Base:
    config: OpperConfig

    def _setup(self, config: OpperConfig | None, base_url: str | None, api_key: str | None, kw: dict[str, Any]) -> None:
        self.config = config if config is not None else OpperConfig.resolve(base_url, api_key, **kw)
        self._view = self.config.transport_view()

    def _result(self, call: Call[T], send: Callable[[], httpx.Response]) -> T:
        try:
            response = send()
        except httpx.TransportError as exc:
            raise _rebrand(transport.transport_error(call, exc)) from None
        return self._parse(call, response)

    def _parse(self, call: Call[T], response: httpx.Response) -> T:
        try:
            return transport.parse_response(self._view, call, response)
        except errors.SutroError as exc:
            raise _rebrand(exc) from None

    def _timeout(self, timeout: float | None) -> float:
        return timeout or self.config.timeouts.function_read


class OpperClient(_Base):
    """Synchronous Opper client; use as a context manager or call :meth:`close`.

    :param base_url: default ``OPPER_BASE_URL`` or ``https://api.opper.ai``.
    :param api_key: default ``OPPER_API_KEY``.
    :param config: a ready :class:`OpperConfig` (overrides the two above).
    """

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, *, config: OpperConfig | None = None, **config_kwargs: Any
    ) -> None:
        self._setup(config, base_url, api_key, config_kwargs)
        self._http = httpx.Client(**_http_options(self.config))

    def __enter__(self) -> OpperClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def execute(self, call: Call[T]) -> T:
        arguments = _retry_arguments(self.config, call)
        if arguments is None:
            return self._send(call)
        for attempt in Retrying(**arguments):
            with attempt:
                return self._send(call)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, call: Call[T]) -> T:
        kwargs = transport.request_kwargs(self._view, call)
        return self._result(call, lambda: self._http.request(call.method, call.path, **kwargs))

    def call(self, name: str, input: Any, input_schema: ep.Schema | None = None, output_schema: ep.Schema | None = None, instructions: str | None = None, model: Any = None, parent_span_id: str | None = None, timeout: float | None = None) -> OpperCallResult:
        """v3 call by name. ``input`` may be a pydantic model; schemas may be model classes."""
        return self.execute(ep.call(name, input, input_schema=input_schema, output_schema=output_schema, instructions=instructions, model=model, parent_span_id=parent_span_id, read_timeout=self._timeout(timeout)))

    def call_revision(self, function_id: str, revision_id: str, input: Any, examples: list[dict[str, Any]] | None = None, tags: dict[str, str] | None = None, parent_span_id: str | None = None, timeout: float | None = None) -> RevisionCallResult:
        """v2 call of one function revision (both ids are UUIDs)."""
        return self.execute(ep.call_revision(function_id, revision_id, input, examples=examples, tags=tags, parent_span_id=parent_span_id, read_timeout=self._timeout(timeout)))

    def call_by_name(self, name: str, input: Any, *, timeout: float | None = None, **fields: Any) -> RevisionCallResult:
        """v2 call by name (``POST /v2/call``): ``instructions``, ``input_schema``,
        ``output_schema``, ``model``, ``examples``, ``tags``, ``parent_span_id``."""
        return self.execute(ep.call_by_name(name, input, read_timeout=self._timeout(timeout), **fields))

    def get_revision(self, function_id: str, revision_id: str) -> V2Revision:
        return self.execute(ep.get_revision(function_id, revision_id))

    def list_functions(self) -> list[dict[str, Any]]:
        """``GET /v3/functions``: the v3 functions (name, schema_hash, hit_count...)."""
        return list(self.execute(ep.list_functions()).get("functions") or [])

    def create_span(self, name: str, **fields: Any) -> Span:
        return self.execute(ep.create_span(name=name, **fields))

    def get_span(self, span_id: str) -> Span:
        return self.execute(ep.get_span(span_id))

    def update_span(self, span_id: str, **fields: Any) -> Span:
        return self.execute(ep.update_span(span_id, **fields))


class AsyncOpperClient(_Base):
    """Asynchronous twin of :class:`OpperClient` (same methods, awaitable)."""

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, *, config: OpperConfig | None = None, **config_kwargs: Any
    ) -> None:
        self._setup(config, base_url, api_key, config_kwargs)
        self._http = httpx.AsyncClient(**_http_options(self.config))

    async def __aenter__(self) -> AsyncOpperClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def execute(self, call: Call[T]) -> T:
        arguments = _retry_arguments(self.config, call)
        if arguments is None:
            return await self._send(call)
        async for attempt in AsyncRetrying(**arguments):
            with attempt:
                return await self._send(call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(call.method, call.path, **transport.request_kwargs(self._view, call))
        except httpx.TransportError as exc:
            raise _rebrand(transport.transport_error(call, exc)) from None
        return self._parse(call, response)

    async def call(self, name: str, input: Any, input_schema: ep.Schema | None = None, output_schema: ep.Schema | None = None, instructions: str | None = None, model: Any = None, parent_span_id: str | None = None, timeout: float | None = None) -> OpperCallResult:
        return await self.execute(ep.call(name, input, input_schema=input_schema, output_schema=output_schema, instructions=instructions, model=model, parent_span_id=parent_span_id, read_timeout=self._timeout(timeout)))

    async def call_revision(self, function_id: str, revision_id: str, input: Any, examples: list[dict[str, Any]] | None = None, tags: dict[str, str] | None = None, parent_span_id: str | None = None, timeout: float | None = None) -> RevisionCallResult:
        return await self.execute(ep.call_revision(function_id, revision_id, input, examples=examples, tags=tags, parent_span_id=parent_span_id, read_timeout=self._timeout(timeout)))

    async def call_by_name(self, name: str, input: Any, *, timeout: float | None = None, **fields: Any) -> RevisionCallResult:
        return await self.execute(ep.call_by_name(name, input, read_timeout=self._timeout(timeout), **fields))

    async def get_revision(self, function_id: str, revision_id: str) -> V2Revision:
        return await self.execute(ep.get_revision(function_id, revision_id))

    async def create_span(self, name: str, **fields: Any) -> Span:
        return await self.execute(ep.create_span(name=name, **fields))

    async def get_span(self, span_id: str) -> Span:
        return await self.execute(ep.get_span(span_id))

    async def update_span(self, span_id: str, **fields: Any) -> Span:
        return await self.execute(ep.update_span(span_id, **fields))
