"""A local, Sutro-compatible batch-LLM server for offline development and tests.

Run it with ``sutro-local serve --functions DIR --api-key KEY --data-dir DIR``
or from Python with :class:`sutro_providers.local.server.LocalSutroServer`.
It speaks the wire API the official ``sutro`` SDK uses (``/v1/...``), runs
jobs with a deterministic fake inference engine, persists every job in
SQLite + Parquet under the data dir, and can inject faults on demand
(``/_admin/faults``). See ``sutro_providers.local.pytest_plugin`` for pytest fixtures.
"""

from __future__ import annotations

__all__ = ["create_app", "LocalSutroServer", "ServerSettings"]


def __getattr__(name: str) -> object:
    # Lazy: importing the package must not pull in FastAPI for users of the runner.
    if name == "create_app":
        from sutro_providers.local.app import create_app

        return create_app
    if name == "LocalSutroServer":
        from sutro_providers.local.server import LocalSutroServer

        return LocalSutroServer
    if name == "ServerSettings":
        from sutro_providers.local.settings import ServerSettings

        return ServerSettings
    raise AttributeError(name)
