"""The real-time runner's 429 retries (tenacity), against the local server's faults."""

from __future__ import annotations

from typing import Any

import pytest

from sutro_providers import SutroClient
from sutro_providers.errors import SutroRateLimitError
from sutro_providers.options import EnrichmentOptions
from sutro_providers.realtime import run_realtime

ROWS = [{"subject": f"Refund {i}", "body": f"I was charged twice, order {i}"} for i in range(6)]


def _run(server: Any, rows: list[dict[str, Any]], **kwargs: Any) -> Any:
    with SutroClient(server.url, server.api_key) as client:
        return run_realtime(client, rows, EnrichmentOptions(function="ticket-triage"), **kwargs)


def _calls(server: Any) -> int:
    return int(server.admin.stats()["requests"].get("functions-run", 0))


def test_429s_are_retried_per_row_and_give_the_same_table(sutro_clean: Any) -> None:
    clean = _run(sutro_clean, ROWS, concurrency=2).table
    sutro_clean.admin.reset()
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "functions-run", "status": 429, "count": 4,
                                   "retry_after": 0.05}])
    retried = _run(sutro_clean, ROWS, concurrency=2, max_rate_limit_retries=3).table
    assert retried.equals(clean)
    assert _calls(sutro_clean) == len(ROWS) + 4


def test_a_429_without_retry_after_is_retried_too(sutro_clean: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "functions-run", "status": 429, "count": 2}])
    assert _run(sutro_clean, ROWS[:1], concurrency=1, max_rate_limit_retries=2).table.num_rows == 1
    assert _calls(sutro_clean) == 3


@pytest.mark.parametrize("retries", [0, 2])
def test_429s_beyond_the_retries_fail_the_run(sutro_clean: Any, retries: int) -> None:
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "functions-run", "status": 429, "count": 10,
                                   "retry_after": 0.01}])
    with pytest.raises(SutroRateLimitError):
        _run(sutro_clean, ROWS[:1], concurrency=1, max_rate_limit_retries=retries)
    assert _calls(sutro_clean) == retries + 1
