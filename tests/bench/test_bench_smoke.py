"""Each benchmark script runs in its smoke mode (tiny sizes) so the scripts keep working.

The figures themselves are not asserted (shared CI machines are too noisy); only that
every script runs end to end and prints its table. The scripts reuse the session's
local Sutro server and moto S3 server (``BENCH_*`` variables, see bench/_common.py)
instead of starting their own. See docs/benchmarks.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = [
    ("b1_staging.py", ["--smoke"], "B1 "),
    ("b2_collect.py", ["--smoke"], "B2 "),
    ("b3_submit.py", ["--smoke"], "B3 "),
    ("b4_pipeline_memory.py", ["--smoke"], "B4 "),
    ("b5_triggers.py", ["--smoke"], "B5 "),
    ("b6_realtime.py", ["--smoke"], "B6 "),
    ("b7_local_server_1m.py", ["--rows", "2000"], "B7 "),
    # one size, not --smoke's two: each size is six fresh processes (Airflow imports); one runs every step
    ("b8_sql_postgres.py", ["--sizes", "5000"], "B8 "),
    ("b9_dagster_stream.py", ["--smoke"], "B9 "),
    ("b0_sdk_peer.py", ["--smoke"], "B0 "),
    ("b10_incremental.py", ["--smoke"], "B10 "),
    ("b11_opper.py", ["--smoke"], "B11 "),
]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize(("script", "args", "title"), SCRIPTS, ids=[s for s, _, _ in SCRIPTS])
def test_smoke(script: str, args: list[str], title: str, sutro_server: Any, sutro_s3_server: Any) -> None:
    env = {**os.environ, "BENCH_SUTRO_URL": sutro_server.url, "BENCH_SUTRO_KEY": sutro_server.api_key,
           "BENCH_S3_ENDPOINT": sutro_s3_server.endpoint_url}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=230, cwd=BENCH.parent, env=env)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert title in proc.stdout, proc.stdout[-3000:]
    assert "machine:" in proc.stdout or script.startswith("b7"), proc.stdout[-3000:]
