"""Streamed download of a pre-signed results artifact, with Range resume.

Pre-signed URLs are bearer credentials: they are fetched with a separate HTTP
client that sends no ``Authorization`` header, and they are never logged or put in
an exception message (errors name the artifact's file name instead).

Protocol (as the official SDK): ``HEAD`` for ``Content-Length`` and ``ETag``, then a
streamed ``GET``; after a dropped connection the download resumes with
``Range: bytes=<n>-`` and ``If-Range: <etag>``. A ``200`` reply to a ranged request
restarts from zero. The final size must equal ``Content-Length``.
"""

from __future__ import annotations

import contextvars
import logging
import os
from pathlib import Path

import httpx

from sutro_providers.client.config import SutroConfig
from sutro_providers.client.models import ResultsUrlResponse
from sutro_providers.errors import (
    SutroConnectionError,
    SutroError,
    SutroRateLimitError,
    SutroResultsIncompleteError,
    SutroServerError,
)

log = logging.getLogger("sutro_providers.client.download")
CHUNK = 8 * 1024 * 1024
_DOWNLOADING: contextvars.ContextVar[bool] = contextvars.ContextVar("sutro_presigned_download", default=False)


class _SignedUrlFilter(logging.Filter):
    """httpx logs every request's full URL at INFO ("HTTP Request: GET <url> ..."):
    for a pre-signed URL that is the credential. During a download, keep only
    ``scheme://host/.../<file name>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _DOWNLOADING.get() and isinstance(record.args, tuple):
            record.args = tuple(_safe(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _safe(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode()}/.../{url.path.rsplit('/', 1)[-1]} (signed URL redacted)"


logging.getLogger("httpx").addFilter(_SignedUrlFilter())


def download_artifact(
    config: SutroConfig,
    artifact: ResultsUrlResponse,
    dest: str | os.PathLike[str],
    *,
    max_resumes: int = 5,
) -> Path:
    """Download ``artifact`` to ``dest`` (a file path) and return it.

    Raises :class:`SutroResultsIncompleteError` when the file stays shorter than announced.
    """
    token = _DOWNLOADING.set(True)
    try:
        return _download(config, artifact, dest, max_resumes)
    finally:
        _DOWNLOADING.reset(token)


def _download(config: SutroConfig, artifact: ResultsUrlResponse, dest: str | os.PathLike[str], max_resumes: int) -> Path:
    path = Path(dest)
    name = artifact.artifact.filename
    timeout = httpx.Timeout(
        connect=config.timeouts.connect, read=config.timeouts.download_read, write=30, pool=10
    )
    with httpx.Client(timeout=timeout, follow_redirects=True) as http:  # no auth header, ever
        size, etag = _head(http, artifact.urls.head, name)
        done = 0
        with path.open("wb") as out:
            for attempt in range(max_resumes + 1):
                headers = {}
                if done:
                    headers["Range"] = f"bytes={done}-"
                    if etag:
                        headers["If-Range"] = etag
                try:
                    with http.stream("GET", artifact.urls.get, headers=headers) as resp:
                        if resp.status_code == 200 and done:
                            out.seek(0)
                            out.truncate()
                            done = 0
                        elif resp.status_code not in (200, 206):
                            raise status_error(name, resp.status_code)
                        if resp.status_code == 200:
                            size = int(resp.headers.get("Content-Length", size))
                            etag = resp.headers.get("ETag", etag)
                        elif etag and resp.headers.get("ETag", etag) != etag:
                            # a 206 of another version (If-Range ignored): never splice, refetch in full
                            log.warning("results download of %s changed on the server; restarting", name)
                            out.seek(0)
                            out.truncate()
                            done = 0
                            continue
                        for chunk in resp.iter_bytes(CHUNK):
                            out.write(chunk)
                            done += len(chunk)
                except (httpx.TransportError, httpx.StreamError) as exc:
                    log.warning("results download of %s interrupted at %d bytes: %s", name, done, type(exc).__name__)
                    if attempt == max_resumes or not etag:
                        raise SutroConnectionError(
                            f"results download of {name} failed after {attempt + 1} attempts: the connection "
                            f"closed at {done} of {size} bytes ({type(exc).__name__})", endpoint="presigned"
                        ) from None
                    continue
                if done == size:
                    return path
                log.warning("results download of %s short: %d of %d bytes", name, done, size)
                if not etag:
                    break
    raise SutroResultsIncompleteError(f"results download of {name} truncated: got {done} of {size} bytes")


def _head(http: httpx.Client, url: str, name: str) -> tuple[int, str | None]:
    try:
        resp = http.head(url)
    except httpx.TransportError as exc:
        raise SutroConnectionError(f"results download of {name}: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise status_error(name, resp.status_code, "HEAD ")
    if "Content-Length" not in resp.headers:
        raise SutroError(f"results download of {name}: HEAD answered without Content-Length", endpoint="presigned")
    return int(resp.headers["Content-Length"]), resp.headers.get("ETag")


def status_error(name: str, status: int, method: str = "") -> SutroError:
    """A download's HTTP error, typed so that 429/5xx are retried (with a freshly
    signed URL: see ``SutroClient.download_results``) and others are not."""
    message = f"results download of {name}: {method}HTTP {status}"
    if status == 429:
        return SutroRateLimitError(message, endpoint="presigned", status_code=status)
    if status >= 500:
        return SutroServerError(message, endpoint="presigned", status_code=status)
    if status == 403:
        message += " (the pre-signed URL was refused: expired or invalid)"
    return SutroError(message, endpoint="presigned", status_code=status)
