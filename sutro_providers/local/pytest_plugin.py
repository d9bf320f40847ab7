"""Pytest fixtures to test Sutro pipelines offline (an opt-in pytest plugin).

With ``sutro-providers[local]`` installed, enable it in the top-level
``conftest.py`` (``pytest_plugins = ["sutro_providers.local.pytest_plugin"]``) or
per run (``pytest -p sutro_providers.local.pytest_plugin``); the fixtures:

``sutro_server`` (session)
    A running :class:`~sutro_providers.local.server.LocalSutroServer`
    publishing the Functions of ``sutro_functions_dir``. Use ``.url`` (origin,
    e.g. ``http://127.0.0.1:PORT``), ``.api_key`` (random ``sk_local_test_...``)
    and ``.admin`` (faults, stats, reset, release).
``sutro_clean`` (function)
    The same server after dropping every job, fault and counter; faults are
    cleared again after the test. Request it in tests that count jobs or set faults.
``sutro_env`` (function)
    ``sutro_clean`` plus ``SUTRO_API_URL`` / ``SUTRO_API_KEY`` set for the test
    (so the official SDK and env-configured clients talk to the local server).
``sutro_functions_dir`` (session)
    The Functions folder: env ``SUTRO_LOCAL_FUNCTIONS``, else the ini option
    ``sutro_functions_dir`` (relative to the rootdir), else ``None`` (no
    Functions, standalone models only). Override the fixture to choose in code.
``sutro_s3_server`` (session)
    A moto S3 server on a free loopback port: ``.endpoint_url``,
    ``.storage_options`` (for s3fs/fsspec/pandas/polars), ``.filesystem()``,
    ``.create_bucket(name)``, ``.put(path, data)``, ``.presigned_url(path)``.
    Dummy AWS credentials are set in the environment while it runs and
    restored afterwards.
``sutro_s3_bucket`` (function)
    A fresh, empty bucket name on ``sutro_s3_server``.

Example::

    def test_triage(sutro_env, sutro_s3_server, sutro_s3_bucket):
        path = f"{sutro_s3_bucket}/in/tickets.parquet"
        sutro_s3_server.put(path, parquet_bytes)
        url = sutro_s3_server.presigned_url(path)
        ...  # run your DAG/asset against sutro_env.url

None of this imports Airflow or Dagster.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sutro_providers.local.moto_s3 import MotoS3

if TYPE_CHECKING:
    from sutro_providers.local.server import LocalSutroServer

FUNCTIONS_ENV = "SUTRO_LOCAL_FUNCTIONS"
FUNCTIONS_INI = "sutro_functions_dir"
_AWS_ENV = {**MotoS3.CREDENTIALS, "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(FUNCTIONS_INI, "Folder of Sutro Function specs the local server publishes", default="")


@pytest.fixture(scope="session")
def sutro_functions_dir(pytestconfig: pytest.Config) -> Path | None:
    """Functions folder: env SUTRO_LOCAL_FUNCTIONS, else ini sutro_functions_dir, else None."""
    value = os.environ.get(FUNCTIONS_ENV) or str(pytestconfig.getini(FUNCTIONS_INI) or "")
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        path = pytestconfig.rootpath / path
    if not path.is_dir():
        raise pytest.UsageError(f"Sutro Functions folder {path} does not exist")
    return path


@pytest.fixture(scope="session")
def sutro_server(sutro_functions_dir: Path | None) -> Iterator[LocalSutroServer]:
    """A local Sutro server for the whole session."""
    from sutro_providers.local.server import LocalSutroServer

    server = LocalSutroServer(sutro_functions_dir, api_key="sk_local_test_" + secrets.token_hex(12))
    with server:
        yield server


@pytest.fixture
def sutro_clean(sutro_server: LocalSutroServer) -> Iterator[LocalSutroServer]:
    """The session server with no jobs, faults or counters; faults cleared afterwards."""
    sutro_server.admin.reset()
    yield sutro_server
    sutro_server.admin.clear_faults()


@pytest.fixture
def sutro_env(sutro_clean: LocalSutroServer, monkeypatch: pytest.MonkeyPatch) -> LocalSutroServer:
    """``sutro_clean`` with SUTRO_API_URL/SUTRO_API_KEY pointing at it for this test."""
    monkeypatch.setenv("SUTRO_API_URL", sutro_clean.url)
    monkeypatch.setenv("SUTRO_API_KEY", sutro_clean.api_key)
    return sutro_clean


@pytest.fixture(scope="session")
def sutro_s3_server() -> Iterator[MotoS3]:
    """A moto S3 server for the session (dummy AWS env credentials while it runs)."""
    werkzeug_log = logging.getLogger("werkzeug")  # moto logs request lines, signed URLs included
    level = werkzeug_log.level
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _AWS_ENV.items():
            mp.setenv(key, value)
        werkzeug_log.setLevel(logging.WARNING)
        server = MotoS3().start()
        try:
            yield server
        finally:
            server.stop()
            werkzeug_log.setLevel(level)


@pytest.fixture
def sutro_s3_bucket(sutro_s3_server: MotoS3) -> str:
    """A new, empty bucket on ``sutro_s3_server``."""
    return sutro_s3_server.create_bucket("test-" + secrets.token_hex(6))
