"""A run SIGKILLed halfway and run again calls no recorded row twice: the server's
call log (every answered call with its ``sutro.row`` tag) says so."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from tests.opper.opper_harness import OpperServer

CHILD = Path(__file__).resolve().parent / "rows_child.py"
REPO = Path(__file__).resolve().parents[2]
ROWS = 200


def recorded_rows(staging: Path) -> set[int]:
    found: set[int] = set()
    for part in staging.rglob("opper-journal/part-*.parquet"):
        table = pq.read_table(part)
        found.update(r for r, e in zip(table["__sutro_row_id"].to_pylist(), table["error"].to_pylist(), strict=True)
                     if e is None)
    return found


def test_killed_run_resumes_without_calling_recorded_rows_again(opper: OpperServer, tmp_path: Path) -> None:
    opper.emulator.faults.set([{"kind": "latency", "endpoint": "opper-call-revision", "latency_ms": 20}])
    staging = tmp_path / "staging"
    args = [sys.executable, str(CHILD), opper.url, opper.api_key, str(staging), str(ROWS)]
    child = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(opper.emulator.calls) < ROWS // 2:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child made too few calls"
        time.sleep(0.01)
    child.kill()  # SIGKILL: no finally, no last flush
    child.wait(timeout=10)
    before = Counter(c["tags"]["sutro.row"] for c in opper.emulator.calls)
    recorded = recorded_rows(staging)
    assert 0 < len(recorded) < ROWS and len(before) < ROWS

    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"ROWS_OUT {ROWS}" in done.stdout
    after = Counter(c["tags"]["sutro.row"] for c in opper.emulator.calls)
    assert set(after) == {str(i) for i in range(ROWS)}  # every row answered
    twice = {int(r) for r, n in after.items() if n > 1}
    assert not (twice & recorded), f"recorded rows called again: {sorted(twice & recorded)}"
    # only rows in flight or not yet flushed at the kill were called again
    assert len(twice) <= 8 + 5 + 8, twice
    print(json.dumps({"calls_before_kill": sum(before.values()), "recorded": len(recorded),
                      "calls_total": sum(after.values()), "called_twice": len(twice)}))
