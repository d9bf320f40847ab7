"""One request model for the sync and the async clients (httpx's model).

An endpoint is written once, as a sans-IO builder of a :class:`~sutro_providers.client.endpoints.Call`
(:mod:`sutro_providers.client.endpoints`, :mod:`sutro_providers.opper.endpoints`);
:class:`endpoint` makes it a method of both clients: on a :class:`SyncExecutor` the
method returns the parsed value, on an :class:`AsyncExecutor` it is a coroutine.
The two executors differ only in how a call is sent and retried (blocking, or
awaited); headers, reply parsing, error mapping and the retry policy come from
:mod:`sutro_providers.client.transport`.

Every call has an explicit timeout; connections are pooled; redirects are not
followed, so the API key never reaches another host.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx
from tenacity import AsyncRetrying, Retrying

from sutro_providers.client import transport
from sutro_providers.client.config import ClientConfig
from sutro_providers.client.endpoints import Call

P = ParamSpec("P")
T = TypeVar("T")

URL_CACHE_SIZE = 256


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client (httpx's default settings).

    Building a context loads the CA bundle: ~50 ms of CPU and ~0.8 MB each, which
    1,000 triggers on one triggerer would otherwise pay 1,000 times (bench B5)."""
    return httpx.create_ssl_context()


def url_cache(http: httpx.Client | httpx.AsyncClient) -> Callable[[str], httpx.URL]:
    """Absolute request URLs by API path, each built once by the client itself.

    Given a relative path, httpx parses it and joins it to ``base_url`` on every
    request (~7% of the CPU of a real-time call, bench B6); an absolute
    :class:`httpx.URL` passes through. Bounded (least recently used out): paths carry job ids."""
    return functools.lru_cache(maxsize=URL_CACHE_SIZE)(lambda path: http.build_request("GET", path).url)


def http_options(config: ClientConfig) -> dict[str, Any]:
    """The ``httpx.Client``/``AsyncClient`` arguments of an API client."""
    return dict(
        base_url=config.api_root + "/",
        verify=ssl_context(),
        headers=transport.auth_headers(config),
        timeout=config.timeouts.httpx(),
        limits=httpx.Limits(max_connections=config.max_connections, max_keepalive_connections=config.max_connections),
        follow_redirects=False,
    )


class Executor:
    """What both executors share: the config and which calls are retried. An endpoint
    table (e.g. :class:`~sutro_providers.client.sutro.SutroEndpoints`) subclasses it to
    resolve its config once for both clients."""

    config: ClientConfig

    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    def _retry_arguments(self, call: Call[Any]) -> dict[str, Any] | None:
        """Tenacity arguments for ``call``, or None when it must be sent exactly once."""
        return transport.retry_arguments(self.config.retry) if call.retryable else None


class SyncExecutor(Executor):
    """Sends calls on an ``httpx.Client``. Thread-safe; use as a context manager or
    call :meth:`close`."""

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config)
        self._http = httpx.Client(**http_options(config))
        self._url = url_cache(self._http)

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def execute(self, call: Call[T]) -> T:
        """Send one call, retrying it if it is retryable (see :mod:`sutro_providers.client.transport`)."""
        arguments = self._retry_arguments(call)
        if arguments is None:
            return self._send(call)
        for attempt in Retrying(**arguments):
            with attempt:
                return self._send(call)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, call: Call[T]) -> T:
        try:
            response = self._http.request(call.method, self._url(call.path), **transport.request_kwargs(self.config, call))
        except httpx.TransportError as exc:
            raise transport.transport_error(self.config, call, exc) from None
        return transport.parse_response(self.config, call, response)

    def _bind(self, build: Callable[P, Call[T]]) -> Callable[P, T]:
        execute = self.execute

        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return execute(build(*args, **kwargs))

        return method


class AsyncExecutor(Executor):
    """Sends calls on an ``httpx.AsyncClient``: no blocking I/O, so safe on a shared
    event loop such as Airflow's triggerer."""

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config)
        self._http = httpx.AsyncClient(**http_options(config))
        self._url = url_cache(self._http)

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def execute(self, call: Call[T]) -> T:
        """Send one call, retrying it if it is retryable."""
        arguments = self._retry_arguments(call)
        if arguments is None:
            return await self._send(call)
        async for attempt in AsyncRetrying(**arguments):
            with attempt:
                return await self._send(call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, self._url(call.path), **transport.request_kwargs(self.config, call)
            )
        except httpx.TransportError as exc:
            raise transport.transport_error(self.config, call, exc) from None
        return transport.parse_response(self.config, call, response)

    def _bind(self, build: Callable[P, Call[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        execute = self.execute

        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await execute(build(*args, **kwargs))

        return method


_S = TypeVar("_S", bound=SyncExecutor)
_A = TypeVar("_A", bound=AsyncExecutor)


class endpoint(Generic[P, T]):  # noqa: N801 (used like a decorator)
    """A client method defined once for both executors: ``job_status = endpoint(ep.job_status)``.

    ``client.job_status(job_id)`` builds the call with the builder's arguments
    (validation errors are raised before anything is sent) and executes it; on an
    async client it returns a coroutine. The builder's docstring and signature are
    the method's."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__wrapped__ = build

    def __set_name__(self, owner: type, name: str) -> None:
        self.__name__ = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> endpoint[P, T]: ...

    @overload
    def __get__(self, instance: SyncExecutor, owner: type | None = None) -> Callable[P, T]: ...

    @overload
    def __get__(self, instance: AsyncExecutor, owner: type | None = None) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        method = instance._bind(self.build)
        method.__doc__, method.__wrapped__ = self.__doc__, self.build
        return method
