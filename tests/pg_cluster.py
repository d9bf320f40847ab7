"""A throwaway PostgreSQL cluster for tests and benchmarks (``initdb`` + ``pg_ctl``).

The server binaries come from the pinned ``pgserver`` wheel (a dev dependency that
ships PostgreSQL 16), so a fresh machine has them after ``make .venv/.installed-stamp``;
binaries on ``PATH`` are the fallback. Nothing is skipped: without binaries
:func:`pg_bin_dir` raises. As root the server runs as the ``postgres`` OS user
(created when missing, as pgserver does).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def pg_bin_dir() -> Path:
    """The directory of ``initdb``/``pg_ctl``/``postgres``: pgserver's, else ``PATH``'s."""
    try:
        import pgserver  # type: ignore[import-untyped]

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (bundled / "initdb").exists():
            return _reachable_by_server(bundled)
    except ImportError:
        pass
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("no PostgreSQL server binaries: install the dev extra (pgserver) or PostgreSQL itself")


def _reachable_by_server(bin_dir: Path) -> Path:
    """``bin_dir``, or (as root, when the ``postgres`` user cannot enter it: a checkout
    under a 0700 ``mktemp -d`` folder) a copy of pgserver's install and of the shared
    libraries its binaries load (``$ORIGIN/../../../pgserver.libs``) in the temp dir."""
    user = _server_user()
    if user is None or subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(bin_dir / "initdb")],
                                      capture_output=True).returncode == 0:
        return bin_dir
    package = bin_dir.parent.parent  # site-packages/pgserver
    digest = hashlib.sha256(str(package.resolve()).encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"sutro-pgserver-{digest}"
    if not (target / "pgserver" / "pginstall" / "bin" / "initdb").exists():
        staging = Path(tempfile.mkdtemp(prefix="sutro-pgserver-", dir=tempfile.gettempdir()))
        shutil.copytree(package / "pginstall", staging / "tree" / "pgserver" / "pginstall", symlinks=True)
        shutil.copytree(package.parent / "pgserver.libs", staging / "tree" / "pgserver.libs", symlinks=True)
        os.chmod(staging / "tree", 0o755)
        with contextlib.suppress(OSError):  # another test worker may have put it in place first
            os.rename(staging / "tree", target)
        shutil.rmtree(staging, ignore_errors=True)
    return target / "pgserver" / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/bin/false", "postgres"], check=True, capture_output=True)
    return "postgres"


@dataclass(frozen=True)
class PgCluster:
    host: str
    port: int
    user: str = "postgres"
    dbname: str = "postgres"

    @property
    def dsn(self) -> str:
        """libpq key/value conninfo (psycopg)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def uri(self) -> str:
        """libpq URI (ADBC)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def airflow_conn(self) -> dict[str, object]:
        return {"conn_type": "postgres", "host": self.host, "port": self.port, "login": self.user,
                "schema": self.dbname}


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    """Start a fresh cluster on a free port in a temp dir; stop and remove it at exit."""
    bindir = pg_bin_dir()
    user = _server_user()

    def as_user(cmd: list[str]) -> list[str]:
        return ["runuser", "-u", user, "--", *cmd] if user else cmd

    # Not under pytest's tmp dir: as root that dir is 0700 and the server user could not enter it.
    root = Path(tempfile.mkdtemp(prefix="sutro-pg-"))
    root.chmod(0o755)
    if user:
        shutil.chown(root, user)
    data, port = root / "data", _free_port()
    subprocess.run(as_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120)
    opts = f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off -c full_page_writes=off -c max_wal_size=4GB"
    subprocess.run(as_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "pg.log"), "-w", "-t", "60",
                            "-o", opts, "start"]), check=True, capture_output=True, timeout=90)
    try:
        yield PgCluster("127.0.0.1", port)
    finally:
        subprocess.run(as_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
