"""docs/reliability.md lists every bad-input case (and only existing ones)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_bad_input_case_has_a_row_in_the_docs() -> None:
    tests = set(re.findall(r"^def (test_\w+)", (ROOT / "tests/reliability/test_bad_inputs.py").read_text(), re.M))
    rows = set(re.findall(r"^\| \d+ \| `(test_\w+)`", (ROOT / "docs/reliability.md").read_text(), re.M))
    assert len(tests) >= 30
    assert tests == rows, f"missing rows: {sorted(tests - rows)}; rows without a test: {sorted(rows - tests)}"
