"""Build (once) the isolated venv holding the official ``sutro`` SDK 0.1.67.

``.venv-sdk`` at the repo root, pinned by ``tests/compat/constraints-sdk.txt``
(regenerate with ``uv pip compile --python-version 3.11
tests/compat/requirements-sdk.in -o tests/compat/constraints-sdk.txt``).
Idempotent: an existing venv with the right SDK version is reused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK_VENV = ROOT / ".venv-sdk"
CONSTRAINTS = Path(__file__).resolve().parent / "constraints-sdk.txt"
SDK_VERSION = "0.1.67"


def sdk_python() -> Path:
    return SDK_VENV / "bin" / "python"


def _ready() -> bool:
    if not sdk_python().exists():
        return False
    probe = "import importlib.metadata as m, sutro, boto3; print(m.version('sutro'))"
    out = subprocess.run([str(sdk_python()), "-c", probe], capture_output=True, text=True, timeout=120)
    return out.returncode == 0 and out.stdout.strip() == SDK_VERSION


def ensure_sdk_venv() -> Path:
    """Return the SDK venv's python, creating the venv if needed (~30 s with uv)."""
    if _ready():
        return sdk_python()
    base = shutil.which("python3.11") or sys.executable
    subprocess.run([base, "-m", "venv", str(SDK_VENV)], check=True, timeout=300)
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists() and shutil.which("uv") is None:
        subprocess.run([str(sdk_python()), "-m", "pip", "install", "-q", "uv"], check=True, timeout=300)
        uv = str(SDK_VENV / "bin" / "uv")
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(sdk_python()), "-c", str(CONSTRAINTS), f"sutro=={SDK_VERSION}", "boto3"],
        check=True,
        timeout=600,
    )
    if not _ready():
        raise RuntimeError(f"{SDK_VENV} was built but sutro {SDK_VERSION} does not import")
    return sdk_python()
