"""Build (once) the isolated venvs holding the official SDKs, unmodified:
``sutro`` 0.1.67 in ``.venv-sdk`` and ``opperai`` 2.1.1 in ``.venv-opper-sdk``
(repo root), each pinned by its constraints file beside this module (regenerate
with ``uv pip compile --python-version 3.11 tests/compat/requirements-<sdk>.in
-o tests/compat/constraints-<sdk>.txt``). Idempotent: an existing venv with the
right SDK version is reused.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SdkVenv:
    venv: Path
    distribution: str
    version: str
    constraints: Path
    imports: str  # what the probe imports
    extra: tuple[str, ...] = ()

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def ready(self) -> bool:
        if not self.python.exists():
            return False
        probe = f"import importlib.metadata as m, {self.imports}; print(m.version({self.distribution!r}))"
        out = subprocess.run([str(self.python), "-c", probe], capture_output=True, text=True, timeout=120)
        return out.returncode == 0 and out.stdout.strip() == self.version

    def ensure(self) -> Path:
        """The venv's python, creating the venv if needed (~30 s with uv). One process
        builds it at a time (an ``flock`` beside the venv): the xdist workers start the
        slow tests first, so the compat tests and the B0 smoke run ask for it at once."""
        with (self.venv.parent / f"{self.venv.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            return self._ensure()

    def _ensure(self) -> Path:
        if self.ready():
            return self.python
        base = shutil.which("python3.11") or sys.executable
        subprocess.run([base, "-m", "venv", str(self.venv)], check=True, timeout=300)
        uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
        if not Path(uv).exists() and shutil.which("uv") is None:
            subprocess.run([str(self.python), "-m", "pip", "install", "-q", "uv"], check=True, timeout=300)
            uv = str(self.venv / "bin" / "uv")
        subprocess.run(
            [uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(self.python), "-c", str(self.constraints),
             f"{self.distribution}=={self.version}", *self.extra],
            check=True,
            timeout=600,
        )
        if not self.ready():
            raise RuntimeError(f"{self.venv} was built but {self.distribution} {self.version} does not import")
        return self.python


SUTRO_SDK = SdkVenv(ROOT / ".venv-sdk", "sutro", "0.1.67", HERE / "constraints-sdk.txt", "sutro, boto3", ("boto3",))
OPPER_SDK = SdkVenv(ROOT / ".venv-opper-sdk", "opperai", "2.1.1", HERE / "constraints-opper-sdk.txt", "opperai")
SDK_VENV = SUTRO_SDK.venv
CONSTRAINTS = SUTRO_SDK.constraints
SDK_VERSION = SUTRO_SDK.version


def sdk_python() -> Path:
    return SUTRO_SDK.python


def ensure_sdk_venv() -> Path:
    """The ``sutro`` SDK venv's python (built on first use)."""
    return SUTRO_SDK.ensure()


def ensure_opper_sdk_venv() -> Path:
    """The ``opperai`` SDK venv's python (built on first use)."""
    return OPPER_SDK.ensure()
