"""Tiny real HTTP servers on 127.0.0.1 for the edge cases the local Sutro server
cannot produce itself: an API host answering HTML, an "expired" pre-signed host,
and a recording proxy in front of the local server that can truncate results
downloads or serve them through a redirect. Every request's headers are recorded,
so tests can assert that no ``Authorization`` header ever reached them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Partial:
    """A 200 reply that announces ``size`` bytes, sends ``data`` (fewer) and closes."""

    size: int
    data: bytes


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Loopback:
    """A threaded HTTP server; ``answer(handler, method, path, body)`` decides the reply."""

    answer: Callable[[Loopback, str, str, dict[str, str], bytes], Reply | Partial]
    seen: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Loopback:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: paths may hold signed query strings
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.seen.append(Seen(self.command, self.path, headers))
                reply = owner.answer(owner, self.command, self.path, headers, body)
                if isinstance(reply, Partial):  # announce the full size, send less, hang up
                    self.send_response(200)
                    self.send_header("Content-Length", str(reply.size))
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(reply.data)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                status, out_headers, data = reply
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                if "content-length" not in {k.lower() for k in out_headers}:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> Loopback:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def authorized(self) -> list[Seen]:
        """Requests that carried an Authorization header."""
        return [s for s in self.seen if "authorization" in s.headers]


def html_site() -> Loopback:
    """Answers every request 200 with an HTML login page (a captive portal, a wrong URL)."""
    page = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
    return Loopback(lambda lb, m, p, h, b: (200, {"Content-Type": "text/html; charset=utf-8"}, page))


def expired_presign_host() -> Loopback:
    """Answers like S3 does for a pre-signed URL past its expiry."""
    xml = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    return Loopback(lambda lb, m, p, h, b: (403, {"Content-Type": "application/xml"}, xml))


class _ProxyHost:
    """A :class:`Loopback` server answering through ``_answer``, with an httpx client
    for whatever it forwards to; a context manager."""

    def __init__(self) -> None:
        self.loopback = Loopback(self._answer)
        self._http = httpx.Client(timeout=30)

    def __enter__(self) -> Any:
        self.loopback.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loopback.stop()
        self._http.close()

    @property
    def url(self) -> str:
        return self.loopback.url

    def _answer(self, lb: Loopback, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | Partial:
        raise NotImplementedError


class ArtifactHost(_ProxyHost):
    """Serves results artifacts at ``/artifact?u=<real pre-signed URL>``: ``serve``
    (the real bytes and headers), ``truncate`` (announces the full length, sends
    half, closes, no ETag) or ``redirect`` (307 to ``redirect_base``, another host)."""

    def __init__(self, mode: str = "serve", redirect_base: str | None = None) -> None:
        self.mode, self.redirect_base = mode, redirect_base
        super().__init__()

    @property
    def seen(self) -> list[Seen]:
        return self.loopback.seen

    def _answer(self, lb: Loopback, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | Partial:
        target = unquote(urlsplit(path).query.removeprefix("u="))
        if self.mode == "redirect":
            return 307, {"Location": f"{self.redirect_base}{path}"}, b""
        real = self._http.request(method, target, headers={k: v for k, v in headers.items() if k in ("range", "if-range")})
        size = int(real.headers.get("content-length", len(real.content)))
        if self.mode == "truncate":
            if method == "HEAD":
                return 200, {"Content-Length": str(size), "Content-Type": "application/octet-stream"}, b""
            return Partial(size, real.content[: size // 2])
        keep = {k: v for k, v in real.headers.items() if k.lower() in ("content-length", "etag", "content-type", "content-range")}
        return real.status_code, keep, real.content


class ResultsProxy(_ProxyHost):
    """A proxy in front of the local Sutro server (the configured API host) that
    rewrites the ``urls`` of ``results-url`` replies to ``artifact_base/artifact?u=...``
    (an :class:`ArtifactHost`). Records every request's headers."""

    def __init__(self, upstream: str, artifact_base: str) -> None:
        self.upstream, self.artifact_base = upstream, artifact_base
        super().__init__()

    def _answer(self, lb: Loopback, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | Partial:
        forward = {k: v for k, v in headers.items() if k in ("authorization", "content-type", "accept")}
        resp = self._http.request(method, self.upstream + path, headers=forward, content=body)
        data = resp.content
        if urlsplit(path).path.endswith("/results-url") and resp.status_code == 200:
            payload = json.loads(data)
            for key in ("get", "head"):
                payload["urls"][key] = f"{self.artifact_base}/artifact?u={quote(payload['urls'][key], safe='')}"
            data = json.dumps(payload).encode()
        return resp.status_code, {"Content-Type": resp.headers.get("content-type", "application/json")}, data
