"""Typed Sutro clients: :class:`SutroClient` (sync) and :class:`AsyncSutroClient`.

Every endpoint method is defined once, in :class:`SutroEndpoints`, from the sans-IO
calls of :mod:`sutro_providers.client.endpoints`; the two clients are that table on
the blocking or the async executor of :mod:`sutro_providers.client.executor`
(reply handling and retries: :mod:`sutro_providers.client.transport`). Only the
methods made of several steps (paging, downloads, the progress stream) are
written per client. Every call has an explicit timeout; connections are pooled;
redirects are not followed, so the API key never reaches another host;
pre-signed downloads go through a separate client without the key.

Example::

    from sutro_providers import SutroClient

    with SutroClient(api_url="http://127.0.0.1:8000", api_key="sk_...") as sutro:
        job_id = sutro.create_job(model="ticket-triage", inputs=[{"subject": "...", "body": "..."}])
        print(sutro.job_status(job_id))
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from tenacity import AsyncRetrying, Retrying

from sutro_providers.client import endpoints as ep
from sutro_providers.client import transport
from sutro_providers.client.config import SutroConfig
from sutro_providers.client.download import download_artifact
from sutro_providers.client.executor import AsyncExecutor, Executor, SyncExecutor, endpoint
from sutro_providers.client.models import JobRecord, ProgressUpdate


def _config(config: SutroConfig | None, api_url: str | None, api_key: str | None, kw: dict[str, Any]) -> SutroConfig:
    return config if config is not None else SutroConfig.resolve(api_url, api_key, **kw)


def _progress_line(line: str) -> ProgressUpdate | None:
    line = line.strip()
    return ProgressUpdate.model_validate_json(line) if line else None


class SutroEndpoints(Executor):
    """The one-call endpoint methods of both Sutro clients (each returns the parsed
    reply; awaitable on :class:`AsyncSutroClient`), and their constructor. Reads are
    retried, job creation and Function runs never are (see
    :mod:`sutro_providers.client.transport`)."""

    config: SutroConfig

    def __init__(
        self,
        api_url: str | None = None,
        api_key: str | None = None,
        *,
        config: SutroConfig | None = None,
        **config_kwargs: Any,
    ) -> None:
        super().__init__(_config(config, api_url, api_key, config_kwargs))

    # -- batch jobs
    create_job = endpoint(ep.submit_job)
    job_status = endpoint(ep.job_status)
    get_job = endpoint(ep.get_job)
    list_jobs = endpoint(ep.list_jobs)
    job_results = endpoint(ep.job_results)
    results_url = endpoint(ep.results_url)
    cancel_job = endpoint(ep.cancel_job)
    # -- Functions
    run_function = endpoint(ep.run_function)
    list_functions = endpoint(ep.list_functions)
    get_function = endpoint(ep.get_function)
    # -- account
    auth_check = endpoint(ep.auth_check)
    get_quotas = endpoint(ep.get_quotas)


class SutroClient(SutroEndpoints, SyncExecutor):
    """Synchronous client. Thread-safe; use as a context manager or call :meth:`close`.

    :param api_url: deployment origin (or origin + ``/v1``); default ``SUTRO_API_URL``.
    :param api_key: the deployment's API key; default ``SUTRO_API_KEY``.
    :param config: a ready :class:`SutroConfig` (overrides the two above).
    """


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

    def download_results(self, job_id: str, dest: str | os.PathLike[str], include_inputs: bool = False) -> Path:
        """Download the results Parquet of a SUCCEEDED job to ``dest`` (streamed, resumable
        within one attempt; transient failures retry with a freshly signed URL)."""
        for attempt in Retrying(**transport.retry_arguments(self.config.retry)):
            artifact = self.results_url(job_id, include_inputs)  # retried by execute() itself
            with attempt:
                return download_artifact(self.config, artifact, dest)
        raise AssertionError("unreachable")  # pragma: no cover

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
            raise transport.transport_error(self.config, call, exc) from None


class AsyncSutroClient(SutroEndpoints, AsyncExecutor):
    """Asynchronous twin of :class:`SutroClient` (same methods, awaitable). Safe on
    a shared event loop such as Airflow's triggerer: no blocking I/O."""


    async def iter_jobs(self, page_size: int = 100) -> AsyncIterator[JobRecord]:
        """Every job, newest first, following ``next_cursor``."""
        cursor: str | None = None
        while True:
            page = await self.list_jobs(limit=page_size, cursor=cursor)
            for job in page.jobs:
                yield job
            if not page.next_cursor or not page.jobs:
                return
            cursor = page.next_cursor

    async def find_jobs_by_name(self, name: str) -> list[JobRecord]:
        """Jobs whose ``name`` is exactly ``name``."""
        return [job async for job in self.iter_jobs() if job.name == name]

    async def download_results(self, job_id: str, dest: str | os.PathLike[str], include_inputs: bool = False) -> Path:
        """As :meth:`SutroClient.download_results`; the file I/O runs in a thread."""
        async for attempt in AsyncRetrying(**transport.retry_arguments(self.config.retry)):
            artifact = await self.results_url(job_id, include_inputs)  # retried by execute() itself
            with attempt:
                return await asyncio.to_thread(download_artifact, self.config, artifact, dest)
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream_progress(self, job_id: str) -> AsyncIterator[ProgressUpdate]:
        """As :meth:`SutroClient.stream_progress`."""
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
            raise transport.transport_error(self.config, call, exc) from None
