"""The tree stays ruff-clean and fully typed (the packages ship py.typed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff() -> None:
    proc = subprocess.run([str(BIN / "ruff"), "check", "sutro_providers", "airflow_provider", "dagster_sutro",
                           "tests", "bench", "example_dags"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow  # a cold cache on a fresh clone: about a minute
def test_mypy() -> None:
    proc = subprocess.run([str(BIN / "mypy"), "--cache-dir", str(REPO / ".tmp" / "mypy"),
                           "sutro_providers", "airflow_provider", "dagster_sutro"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
