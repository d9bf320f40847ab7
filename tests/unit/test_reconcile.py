"""ShardSubmitter's reconciliation by job name (tenacity): how many lookups, how far
apart, and what a failing lookup does. Narrow unit test: a stub stands in for the
client's ``find_jobs_by_name`` (the end-to-end 524 cases are in tests/pipeline)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sutro_providers.client.models import JobRecord
from sutro_providers.errors import SutroConnectionError
from sutro_providers.submission import submitter
from sutro_providers.submission.submitter import ShardSubmitter


class Lookups:
    def __init__(self, answers: list[Any]) -> None:
        self.answers, self.times = answers, []  # type: list[Any], list[float]

    def find_jobs_by_name(self, name: str) -> list[JobRecord]:
        self.times.append(time.monotonic())
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, Exception):
            raise answer
        return answer


def _submitter(client: Lookups) -> ShardSubmitter:
    return ShardSubmitter(client, None, None, None, None)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def short_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submitter, "RECONCILE_PAUSE", 0.05)


def test_a_job_listed_late_is_found() -> None:
    job = JobRecord(job_id="job-1", name="n")
    client = Lookups([[], [], [job]])
    assert _submitter(client)._reconcile("n") == job
    assert len(client.times) == 3 and all(b - a >= 0.05 for a, b in zip(client.times, client.times[1:], strict=False))


def test_a_job_never_listed_is_none_after_every_try() -> None:
    client = Lookups([])
    assert _submitter(client)._reconcile("n") is None
    assert len(client.times) == submitter.RECONCILE_TRIES


def test_a_failing_lookup_raises_at_once() -> None:
    client = Lookups([[], SutroConnectionError("down")])
    with pytest.raises(SutroConnectionError, match="down"):
        _submitter(client)._reconcile("n")
    assert len(client.times) == 2
