"""The official opperai SDK 2.1.1 (unmodified, own venv) against the local server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from sutro_providers.local.server import LocalSutroServer
from tests.compat.sdk_venv import ensure_opper_sdk_venv

SCRIPT = Path(__file__).resolve().parent / "opper_sdk_against_local.py"
STEPS = 13


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_official_opper_sdk_against_local_server(sutro_clean: LocalSutroServer, tmp_path: Path) -> None:
    python = ensure_opper_sdk_venv()
    httpx.post(f"{sutro_clean.url}/_opper/reset", timeout=10).raise_for_status()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "OPPER_BASE_URL": sutro_clean.url,
        "OPPER_API_KEY": sutro_clean.api_key,
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.run([str(python), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout[-6000:] + "\n--- stderr ---\n" + proc.stderr[-6000:]
    assert proc.returncode == 0, output
    assert f"OPPER SDK COMPAT OK ({STEPS} steps)" in proc.stdout, output
    assert sutro_clean.api_key not in proc.stdout + proc.stderr
