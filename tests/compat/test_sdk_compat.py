"""The official sutro SDK 0.1.67 (unmodified, own venv) against the local server."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.local.pytest_plugin import MotoS3
from sutro_providers.local.server import LocalSutroServer
from tests.compat.sdk_venv import ensure_sdk_venv

SCRIPT = Path(__file__).resolve().parent / "sdk_against_local.py"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_official_sdk_against_local_server(
    sutro_clean: LocalSutroServer, sutro_s3_server: MotoS3, sutro_s3_bucket: str, tmp_path: Path
) -> None:
    python = ensure_sdk_venv()
    ids = ["T-9", "T-3", "T-7", "T-1"]
    table = pa.table({
        "ticket_id": ids,
        "subject": ["Refund", "Crash", "Idea", "Password"],
        "body": ["charged twice", "on start", "add export", "reset fails"],
    })  # fmt: skip
    sink = io.BytesIO()
    pq.write_table(table, sink)
    sutro_s3_server.put(f"{sutro_s3_bucket}/tickets.parquet", sink.getvalue())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),  # the SDK caches under ~/.sutro
        "SUTRO_API_URL": sutro_clean.url,
        "SUTRO_API_KEY": sutro_clean.api_key,
        "SDK_COMPAT_PARQUET_URL": sutro_s3_server.presigned_url(f"{sutro_s3_bucket}/tickets.parquet"),
        "SDK_COMPAT_TICKET_IDS": json.dumps(ids),
        # the SDK checks PyPI for a newer version (2 s timeout): make it fail at once
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.run([str(python), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout[-6000:] + "\n--- stderr ---\n" + proc.stderr[-6000:]
    assert proc.returncode == 0, output
    assert "SDK COMPAT OK" in proc.stdout, output
    assert not (tmp_path / ".sutro" / "config.json").exists()
