"""Point the sutro_providers pytest plugin at the example Functions."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sutro_functions_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "example_dags" / "functions"
