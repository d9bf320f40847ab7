"""Each benchmark script runs in its smoke mode (tiny sizes) so the scripts keep working.

The figures themselves are not asserted (shared CI machines are too noisy); only that
every script runs end to end and prints its table. See docs/benchmarks.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
]


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("script", "args", "title"), SCRIPTS, ids=[s for s, _, _ in SCRIPTS])
def test_smoke(script: str, args: list[str], title: str) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=230, cwd=BENCH.parent)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert title in proc.stdout, proc.stdout[-3000:]
    assert "machine:" in proc.stdout or script.startswith("b7"), proc.stdout[-3000:]
