"""Typed Sutro clients: :class:`SutroClient` (sync) and :class:`AsyncSutroClient`.

Both execute the same sans-IO calls from :mod:`sutro_providers.client.endpoints` and
share reply handling and retries (:mod:`sutro_providers.client.transport`), so each
endpoint is written once. Every call has an explicit timeout; connections are
pooled; redirects are not followed, so the API key never reaches another host;
pre-signed downloads go through a separate client without the key.

Example::

    from sutro_providers import SutroClient

    with SutroClient(api_url="http://127.0.0.1:8000", api_key="sk_...") as sutro:
        job_id = sutro.create_job(model="ticket-triage", inputs=[{"subject": "...", "body": "..."}])
        print(sutro.job_status(job_id))
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, Retrying

from sutro_providers.client import endpoints as ep
from sutro_providers.client import transport
from sutro_providers.client.config import SutroConfig
from sutro_providers.client.download import download_artifact
from sutro_providers.client.models import (
    BatchInferenceRequest,
    CancelResult,
    FunctionRunResult,
    JobPage,
    JobRecord,
    JobResults,
    JobStatus,
    ProgressUpdate,
    QuotasResponse,
    ResultsUrlResponse,
)
from sutro_providers.function_spec import FunctionSpec

T = TypeVar("T")


def _config(config: SutroConfig | None, api_url: str | None, api_key: str | None, kw: dict[str, Any]) -> SutroConfig:
    return config if config is not None else SutroConfig.resolve(api_url, api_key, **kw)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client (httpx's default settings).

    Building a context loads the CA bundle: ~50 ms of CPU and ~0.8 MB each, which
    1,000 triggers on one triggerer would otherwise pay 1,000 times (bench B5)."""
    return httpx.create_ssl_context()


def _http_options(config: SutroConfig) -> dict[str, Any]:
    return dict(
        base_url=config.api_url + "/",
        verify=_ssl_context(),
        headers=transport.auth_headers(config),
        timeout=config.timeouts.httpx(),
        limits=httpx.Limits(max_connections=config.max_connections, max_keepalive_connections=config.max_connections),
        follow_redirects=False,
    )


URL_CACHE_SIZE = 256


def _url_cache(http: httpx.Client | httpx.AsyncClient) -> Callable[[str], httpx.URL]:
    """Absolute request URLs by API path, each built once by the client itself.

    Given a relative path, httpx parses it and joins it to ``base_url`` on every
    request (~7% of the CPU of a real-time call, bench B6); an absolute
    :class:`httpx.URL` passes through. Bounded (least recently used out): paths carry job ids."""
    return functools.lru_cache(maxsize=URL_CACHE_SIZE)(lambda path: http.build_request("GET", path).url)


def _progress_line(line: str) -> ProgressUpdate | None:
    line = line.strip()
    return ProgressUpdate.model_validate_json(line) if line else None


class SutroClient:
    """Synchronous client. Thread-safe; use as a context manager or call :meth:`close`.

    :param api_url: deployment origin (or origin + ``/v1``); default ``SUTRO_API_URL``.
    :param api_key: the deployment's API key; default ``SUTRO_API_KEY``.
    :param config: a ready :class:`SutroConfig` (overrides the two above).
    """

    def __init__(
        self,
        api_url: str | None = None,
        api_key: str | None = None,
        *,
        config: SutroConfig | None = None,
        **config_kwargs: Any,
    ) -> None:
        self.config = _config(config, api_url, api_key, config_kwargs)
        self._http = httpx.Client(**_http_options(self.config))
        self._url = _url_cache(self._http)

    def __enter__(self) -> SutroClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def execute(self, call: ep.Call[T]) -> T:
        """Send one call, retrying it if it is retryable (see :mod:`sutro_providers.client.transport`)."""
        if not call.retryable:
            return self._send(call)
        for attempt in Retrying(**transport.retry_arguments(self.config.retry)):
            with attempt:
                return self._send(call)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, call: ep.Call[T]) -> T:
        try:
            response = self._http.request(call.method, self._url(call.path), **transport.request_kwargs(self.config, call))
        except httpx.TransportError as exc:
            raise transport.transport_error(call, exc) from None
        return transport.parse_response(self.config, call, response)

    # -- batch jobs
    def create_job(self, **request: Any) -> str:
        """``POST batch-inference`` → job id. Keyword arguments are the fields of
        :class:`BatchInferenceRequest`; they are validated before anything is sent.
        Never retried: see :class:`~sutro_providers.errors.SutroSubmissionOutcomeUnknownError`."""
        return self.execute(ep.create_job(ep.build(BatchInferenceRequest, **request)))

    def job_status(self, job_id: str) -> JobStatus:
        return self.execute(ep.job_status(job_id))

    def get_job(self, job_id: str) -> JobRecord:
        return self.execute(ep.get_job(job_id))

    def list_jobs(self, limit: int | None = None, cursor: str | None = None) -> JobPage:
        return self.execute(ep.list_jobs(limit, cursor))

    def iter_jobs(self, page_size: int = 100) -> Iterator[JobRecord]:
        """Every job, newest first, following ``next_cursor``."""
        cursor: str | None = None
        while True:
            page = self.list_jobs(limit=page_size, cursor=cursor)
            yield from page.jobs
            if not page.next_cursor or not page.jobs:
                return
            cursor = page.next_cursor

    def find_jobs_by_name(self, name: str) -> list[JobRecord]:
        """Jobs whose ``name`` is exactly ``name`` (how a lost submission is reconciled)."""
        return [job for job in self.iter_jobs() if job.name == name]

    def job_results(self, job_id: str, include_inputs: bool = False, include_cumulative_logprobs: bool = False) -> JobResults:
        return self.execute(ep.job_results(job_id, include_inputs, include_cumulative_logprobs))

    def results_url(self, job_id: str, include_inputs: bool = False, include_cumulative_logprobs: bool = False, expires_in_seconds: int = 3600) -> ResultsUrlResponse:
        """The pre-signed results artifact. Its ``urls`` are bearer credentials."""
        return self.execute(ep.results_url(job_id, include_inputs, include_cumulative_logprobs, expires_in_seconds))

    def download_results(self, job_id: str, dest: str | os.PathLike[str], include_inputs: bool = False) -> Path:
        """Download the results Parquet of a SUCCEEDED job to ``dest`` (streamed, resumable
        within one attempt; transient failures retry with a freshly signed URL)."""
        for attempt in Retrying(**transport.retry_arguments(self.config.retry)):
            artifact = self.results_url(job_id, include_inputs)  # retried by execute() itself
            with attempt:
                return download_artifact(self.config, artifact, dest)
        raise AssertionError("unreachable")  # pragma: no cover

    def cancel_job(self, job_id: str) -> CancelResult:
        return self.execute(ep.cancel_job(job_id))

    def stream_progress(self, job_id: str) -> Iterator[ProgressUpdate]:
        """Live NDJSON updates until the server closes the stream (not retried:
        the caller falls back to polling when it ends)."""
        call = ep.stream_progress(job_id)
        try:
            with self._http.stream("GET", call.path, timeout=self.config.timeouts.httpx(read=30)) as resp:
                if not resp.is_success:
                    resp.read()
                    transport.parse_response(self.config, call, resp)
                for line in resp.iter_lines():
                    update = _progress_line(line)
                    if update is not None:
                        yield update
        except httpx.TransportError as exc:
            raise transport.transport_error(call, exc) from None

    # -- Functions
    def run_function(self, name: str, input: dict[str, Any] | str, confidence_scoring: bool | None = None, timeout: float | None = None) -> FunctionRunResult:
        """One real-time call; never retried automatically (each call is billed)."""
        call = ep.run_function(name, input, confidence_scoring)
        return self.execute(_with_timeout(call, timeout or self.config.timeouts.function_read))

    def list_functions(self) -> list[FunctionSpec]:
        return self.execute(ep.list_functions())

    def get_function(self, name: str) -> FunctionSpec:
        return self.execute(ep.get_function(name))

    # -- account
    def auth_check(self) -> bool:
        return self.execute(ep.auth_check())

    def get_quotas(self) -> QuotasResponse:
        return self.execute(ep.get_quotas())


class AsyncSutroClient:
    """Asynchronous twin of :class:`SutroClient` (same methods, awaitable). Safe on
    a shared event loop such as Airflow's triggerer: no blocking I/O."""

    def __init__(
        self,
        api_url: str | None = None,
        api_key: str | None = None,
        *,
        config: SutroConfig | None = None,
        **config_kwargs: Any,
    ) -> None:
        self.config = _config(config, api_url, api_key, config_kwargs)
        self._http = httpx.AsyncClient(**_http_options(self.config))
        self._url = _url_cache(self._http)

    async def __aenter__(self) -> AsyncSutroClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def execute(self, call: ep.Call[T]) -> T:
        if not call.retryable:
            return await self._send(call)
        async for attempt in AsyncRetrying(**transport.retry_arguments(self.config.retry)):
            with attempt:
                return await self._send(call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, call: ep.Call[T]) -> T:
        try:
            response = await self._http.request(call.method, self._url(call.path), **transport.request_kwargs(self.config, call))
        except httpx.TransportError as exc:
            raise transport.transport_error(call, exc) from None
        return transport.parse_response(self.config, call, response)

    async def create_job(self, **request: Any) -> str:
        return await self.execute(ep.create_job(ep.build(BatchInferenceRequest, **request)))

    async def job_status(self, job_id: str) -> JobStatus:
        return await self.execute(ep.job_status(job_id))

    async def get_job(self, job_id: str) -> JobRecord:
        return await self.execute(ep.get_job(job_id))

    async def list_jobs(self, limit: int | None = None, cursor: str | None = None) -> JobPage:
        return await self.execute(ep.list_jobs(limit, cursor))

    async def iter_jobs(self, page_size: int = 100) -> AsyncIterator[JobRecord]:
        cursor: str | None = None
        while True:
            page = await self.list_jobs(limit=page_size, cursor=cursor)
            for job in page.jobs:
                yield job
            if not page.next_cursor or not page.jobs:
                return
            cursor = page.next_cursor

    async def find_jobs_by_name(self, name: str) -> list[JobRecord]:
        return [job async for job in self.iter_jobs() if job.name == name]

    async def job_results(self, job_id: str, include_inputs: bool = False, include_cumulative_logprobs: bool = False) -> JobResults:
        return await self.execute(ep.job_results(job_id, include_inputs, include_cumulative_logprobs))

    async def results_url(self, job_id: str, include_inputs: bool = False, include_cumulative_logprobs: bool = False, expires_in_seconds: int = 3600) -> ResultsUrlResponse:
        return await self.execute(ep.results_url(job_id, include_inputs, include_cumulative_logprobs, expires_in_seconds))

    async def download_results(self, job_id: str, dest: str | os.PathLike[str], include_inputs: bool = False) -> Path:
        """As :meth:`SutroClient.download_results`; the file I/O runs in a thread."""
        async for attempt in AsyncRetrying(**transport.retry_arguments(self.config.retry)):
            artifact = await self.results_url(job_id, include_inputs)  # retried by execute() itself
            with attempt:
                return await asyncio.to_thread(download_artifact, self.config, artifact, dest)
        raise AssertionError("unreachable")  # pragma: no cover

    async def cancel_job(self, job_id: str) -> CancelResult:
        return await self.execute(ep.cancel_job(job_id))

    async def stream_progress(self, job_id: str) -> AsyncIterator[ProgressUpdate]:
        call = ep.stream_progress(job_id)
        try:
            async with self._http.stream("GET", call.path, timeout=self.config.timeouts.httpx(read=30)) as resp:
                if not resp.is_success:
                    await resp.aread()
                    transport.parse_response(self.config, call, resp)
                async for line in resp.aiter_lines():
                    update = _progress_line(line)
                    if update is not None:
                        yield update
        except httpx.TransportError as exc:
            raise transport.transport_error(call, exc) from None

    async def run_function(self, name: str, input: dict[str, Any] | str, confidence_scoring: bool | None = None, timeout: float | None = None) -> FunctionRunResult:
        call = ep.run_function(name, input, confidence_scoring)
        return await self.execute(_with_timeout(call, timeout or self.config.timeouts.function_read))

    async def list_functions(self) -> list[FunctionSpec]:
        return await self.execute(ep.list_functions())

    async def get_function(self, name: str) -> FunctionSpec:
        return await self.execute(ep.get_function(name))

    async def auth_check(self) -> bool:
        return await self.execute(ep.auth_check())

    async def get_quotas(self) -> QuotasResponse:
        return await self.execute(ep.get_quotas())


def _with_timeout(call: ep.Call[T], read_timeout: float) -> ep.Call[T]:
    return replace(call, read_timeout=read_timeout)
