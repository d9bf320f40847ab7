"""Run the local server as a subprocess (for tests, notebooks and benches).

Example::

    from sutro_providers.local.server import LocalSutroServer

    with LocalSutroServer(functions_dir="example_dags/functions") as srv:
        os.environ["SUTRO_API_URL"], os.environ["SUTRO_API_KEY"] = srv.url, srv.api_key
        ...
        srv.admin.set_faults([{"kind": "status", "endpoint": "job-status", "status": 524, "count": 1}])
        srv.restart()  # same port and data dir; unfinished jobs resume

The server runs ``python -m sutro_providers.local.cli serve`` on a free
loopback port; the API key is passed by environment, not argv. Its log goes
to ``<data_dir>/server.log``.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalAdmin:
    """Tiny client of the ``/_admin`` routes."""

    def __init__(self, url: str, api_key: str) -> None:
        self._url = url
        self._headers = {"Authorization": f"Key {api_key}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = httpx.request(method, self._url + "/_admin" + path, headers=self._headers, timeout=30, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def set_faults(self, rules: list[dict[str, Any]], append: bool = False) -> list[dict[str, Any]]:
        """Replace (or with ``append`` extend) the active fault rules."""
        return list(self._call("POST", "/faults", json=rules, params={"append": str(append).lower()})["rules"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/faults")["rules"])

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def release_requests(self, endpoint: str | None = None) -> int:
        """Let the requests held by ``hold_request`` rules (of ``endpoint`` only, when given) go on."""
        params = {"endpoint": endpoint} if endpoint is not None else None
        return int(self._call("POST", "/faults/release", params=params)["released"])

    def held_requests(self) -> dict[str, int]:
        """How many requests ``hold_request`` rules hold now, by route name."""
        return dict(self.stats()["held_requests"])

    def stats(self) -> dict[str, Any]:
        """``{"jobs": {...}, "requests": {...}, "faults_injected": {...}, "held_requests": {...}}``."""
        return dict(self._call("GET", "/stats"))

    def job_count(self) -> int:
        return int(self.stats()["jobs"]["total"])

    def release(self, job_id: str) -> None:
        """Let a job held by a ``hold_job`` fault finish."""
        self._call("POST", f"/jobs/{job_id}/release")

    def reset(self) -> None:
        """Drop all jobs, clear faults and counters."""
        self._call("POST", "/reset")


class LocalSutroServer:
    """A ``sutro-local serve`` subprocess on 127.0.0.1 (a context manager).

    :param functions_dir: folder of Function specs to publish.
    :param api_key: key to require; random ``sk_local_...`` when omitted.
    :param data_dir: where jobs persist; a temp dir (removed on ``stop``) when omitted.
    :param port: fixed port; a free one when omitted (kept across ``restart``).
    :param extra_args: more CLI flags, e.g. ``["--enforce-quotas"]``.
    """

    def __init__(
        self,
        functions_dir: str | Path | None = None,
        *,
        api_key: str | None = None,
        data_dir: str | Path | None = None,
        port: int | None = None,
        workers: int = 2,
        startup_seconds: float = 0.2,
        min_run_seconds: float = 0.3,
        extra_args: list[str] | None = None,
        start_timeout: float = 90.0,
    ) -> None:
        self.functions_dir = Path(functions_dir) if functions_dir else None
        self.api_key = api_key or "sk_local_" + secrets.token_hex(16)
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="sutro-local-")
        self.data_dir = Path(data_dir) if data_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.port = port or free_port()
        self.workers = workers
        self.startup_seconds = startup_seconds
        self.min_run_seconds = min_run_seconds
        self.extra_args = list(extra_args or [])
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self.admin = LocalAdmin(self.url, self.api_key)

    @property
    def url(self) -> str:
        """Origin, e.g. ``http://127.0.0.1:PORT`` (the SDK adds ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def _command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "sutro_providers.local.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
            "--workers", str(self.workers), "--startup-seconds", str(self.startup_seconds),
            "--min-run-seconds", str(self.min_run_seconds),
        ]  # fmt: skip
        if self.functions_dir:
            cmd += ["--functions", str(self.functions_dir)]
        return cmd + self.extra_args

    def start(self) -> LocalSutroServer:
        """Start the process and wait until ``/v1/auth/check`` answers 200."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SUTRO_LOCAL_API_KEY": self.api_key}
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout
        headers = {"Authorization": f"Key {self.api_key}"}
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sutro-local exited with {self._proc.returncode}; see {self.log_path}:\n{self._log_tail()}")
            try:
                if httpx.get(self.url + "/v1/auth/check", headers=headers, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop(cleanup=False)
        raise RuntimeError(f"sutro-local did not start within {self.start_timeout}s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, cleanup: bool = True) -> None:
        """SIGTERM, wait up to 15 s, then SIGKILL. Removes a temp data dir when ``cleanup``."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if cleanup and self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def restart(self) -> LocalSutroServer:
        """Stop and start again on the same port with the same data dir."""
        self.stop(cleanup=False)
        return self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def __enter__(self) -> LocalSutroServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
