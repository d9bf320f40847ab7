"""The core progress reporter with an injected clock: which lines, when, and what they say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sutro_providers.client.models import JobStatus, ProgressUpdate
from sutro_providers.waiting.progress_report import (
    JobProgress,
    ProgressReporter,
    RowProgressReporter,
    duration,
)

T0 = 1_800_000_000.0  # epoch seconds of the fake clock's start
CREATED = datetime.fromtimestamp(T0 - 30, UTC)  # the job was created 30 s before the wait began


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def poll(job: str, status: JobStatus, rows: int | None = 1000, tokens: tuple[int, int] | None = None,
         cost: float | None = None, started: datetime | None = None) -> JobProgress:
    return JobProgress(job, status, rows, tokens[0] if tokens else None, tokens[1] if tokens else None, cost,
                       CREATED, started)


def progress(rows: int) -> ProgressUpdate:
    return ProgressUpdate(update_type="progress", result=rows)


def tokens(i: int, o: int) -> ProgressUpdate:
    return ProgressUpdate(update_type="tokens", result={"input_tokens": i, "output_tokens": o,
                                                        "total_tokens_processed_per_second": 12.5})


def reporter(jobs: list[str], interval: float = 60) -> tuple[ProgressReporter, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return ProgressReporter(jobs, lines.append, interval=interval, clock=clock), lines, clock


def test_a_line_at_every_status_change_and_at_most_one_per_interval_otherwise() -> None:
    r, lines, clock = reporter(["job-1"])
    r(poll("job-1", JobStatus.QUEUED))
    assert lines == ["Sutro job job-1 QUEUED: 1,000 rows; elapsed 30s"]
    clock.tick(10)
    r(poll("job-1", JobStatus.QUEUED))  # no change, interval not over: nothing
    clock.tick(5)
    r(poll("job-1", JobStatus.RUNNING, started=datetime.fromtimestamp(T0 + 15, UTC)))  # a change: at once
    assert lines[-1] == "Sutro job job-1 QUEUED -> RUNNING: 1,000 rows; elapsed 45s"
    for _ in range(5):  # 50 s of stream updates and polls: within one interval of the last line
        clock.tick(10)
        r.stream("job-1", progress(100))
        r(poll("job-1", JobStatus.RUNNING))
    assert len(lines) == 2
    clock.tick(10)  # 60 s since the last line
    r.stream("job-1", progress(250))
    assert len(lines) == 3
    # 250 rows in the 60 s since the job started: 750 left at that rate is 180 s
    assert lines[-1] == "Sutro progress: RUNNING; 250 / 1,000 rows (25.0%); elapsed 1m45s; ETA 3m00s"
    clock.tick(30)
    r(poll("job-1", JobStatus.SUCCEEDED, tokens=(12_345, 3_456), cost=0.01234))
    assert lines[-1] == ("Sutro job job-1 RUNNING -> SUCCEEDED: 1,000 / 1,000 rows (100.0%); elapsed 2m15s; "
                         "tokens 12,345 in / 3,456 out; cost $0.01234")
    assert r.lines == len(lines) == 4


def test_heartbeat_lines_come_every_interval_between_long_polls() -> None:
    """A poll interval of 10 minutes and a progress interval of 60 s: beat() gives a
    line every 60 s, saying how old its numbers are, and tells the poller when to wake."""
    r, lines, clock = reporter(["job-1"])
    r(poll("job-1", JobStatus.RUNNING))
    r.stream("job-1", progress(400))
    assert r.beat() == pytest.approx(60)
    clock.tick(59)
    assert r.beat() == pytest.approx(1) and len(lines) == 1
    clock.tick(1)
    assert r.beat() == pytest.approx(60)
    assert lines[-1] == "Sutro progress: RUNNING; 400 / 1,000 rows (40.0%); elapsed 1m30s; ETA 1m30s; last update 1m00s ago"
    for _ in range(9):
        clock.tick(60)
        r.beat()
    assert len(lines) == 11
    assert lines[-1].endswith("last update 10m00s ago")
    clock.tick(1)  # the 10-minute poll: no change, 1 s after the last line: no line
    r(poll("job-1", JobStatus.RUNNING))
    assert len(lines) == 11
    clock.tick(59)
    r.beat()
    assert "last update" not in lines[-1]  # fresh numbers


def test_several_jobs_are_summed_and_their_statuses_counted() -> None:
    r, lines, clock = reporter(["a", "b", "c"], interval=30)
    r(poll("a", JobStatus.RUNNING, rows=100, started=CREATED))
    assert lines[-1] == "Sutro job a RUNNING: 3 jobs: 1 RUNNING, 2 not polled yet; elapsed 30s"
    r(poll("b", JobStatus.RUNNING, rows=200, started=CREATED))
    r(poll("c", JobStatus.QUEUED, rows=300))
    r.stream("a", progress(50))
    clock.tick(29)
    r.stream("b", tokens(1000, 200))
    clock.tick(1)
    r.beat()
    # rows done: 50 of a (stream), b and c unknown; 600 rows in all
    assert lines[-1] == ("Sutro progress: 3 jobs: 1 QUEUED, 2 RUNNING; 50 / 600 rows (8.3%); elapsed 1m00s; "
                         "ETA 11m00s; tokens 1,000 in / 200 out")
    r(poll("a", JobStatus.SUCCEEDED, rows=100, tokens=(2000, 400), cost=0.5))
    assert lines[-1] == ("Sutro job a RUNNING -> SUCCEEDED: 3 jobs: 1 QUEUED, 1 RUNNING, 1 SUCCEEDED; "
                         "100 / 600 rows (16.7%); elapsed 1m00s; ETA 5m00s; tokens 3,000 in / 600 out; "
                         "cost $0.50 so far")


def test_counts_only_move_forward_and_heartbeat_updates_are_no_news() -> None:
    r, lines, clock = reporter(["job-1"], interval=10)
    r(poll("job-1", JobStatus.RUNNING, rows=None))
    r.stream("job-1", progress(70))
    r.stream("job-1", progress(40))  # a late, lower reading
    r.stream("job-1", tokens(500, 50))
    r.stream("job-1", tokens(100, 10))
    clock.tick(10)
    r.stream("job-1", ProgressUpdate(update_type="heartbeat"))  # no news: no line, and the last update stays old
    assert len(lines) == 1
    r.beat()
    assert lines[-1] == "Sutro progress: RUNNING; 70 rows done; elapsed 40s; tokens 500 in / 50 out; last update 10s ago"


def test_polls_alone_show_total_rows_status_and_usage() -> None:
    """A deployment without the progress stream: no rows done until the job succeeded."""
    r, lines, clock = reporter(["job-1"])
    r(poll("job-1", JobStatus.RUNNING, rows=5000))
    clock.tick(60)
    r(poll("job-1", JobStatus.RUNNING, rows=5000))
    assert lines[-1] == "Sutro progress: RUNNING; 5,000 rows; elapsed 1m30s"
    r(poll("job-1", JobStatus.FAILED, rows=5000))
    assert lines[-1] == "Sutro job job-1 RUNNING -> FAILED: 5,000 rows; elapsed 1m30s"


def test_elapsed_counts_from_the_reporter_start_when_the_api_gives_no_creation_time() -> None:
    r, lines, clock = reporter(["job-1"])
    clock.tick(5)
    r(JobProgress("job-1", JobStatus.QUEUED, None, None, None))
    assert lines == ["Sutro job job-1 QUEUED: elapsed 5s"]


def test_closed_reporter_and_unknown_jobs_are_ignored() -> None:
    r, lines, clock = reporter(["job-1"])
    r(poll("other", JobStatus.RUNNING))
    r.stream("other", progress(5))
    assert lines == [] and not r.finished("job-1")
    r(poll("job-1", JobStatus.SUCCEEDED))
    assert r.finished("job-1")
    r.close()
    clock.tick(600)
    r.stream("job-1", progress(5))
    r.beat()
    r(poll("job-1", JobStatus.FAILED))
    assert len(lines) == 1


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ProgressReporter(["j"], print, interval=0)
    with pytest.raises(ValueError, match="positive"):
        RowProgressReporter("Opper f", print, interval=-1)


def test_rows_answered_lines_come_at_most_once_per_interval_and_at_the_end() -> None:
    lines: list[str] = []
    clock = Clock()
    r = RowProgressReporter("Opper ticket-triage", lines.append, interval=60, clock=clock)
    clock.tick(10)
    r(256, 5000)  # the first count: a line at once
    assert lines == ["Opper ticket-triage: 256 / 5,000 rows answered (5.1%); elapsed 10s; ETA 3m05s"]
    for _ in range(5):  # 50 s of flushes: within one interval of the last line
        clock.tick(10)
        r(512, 5000)
    assert len(lines) == 1
    clock.tick(10)
    r(1200, 5000)  # 60 s since the last line
    assert lines[-1] == "Opper ticket-triage: 1,200 / 5,000 rows answered (24.0%); elapsed 1m10s; ETA 3m41s"
    clock.tick(1)
    r(5000, 5000)  # the last count: at once, whatever the interval, without an ETA
    assert lines[-1] == "Opper ticket-triage: 5,000 / 5,000 rows answered (100.0%); elapsed 1m11s"
    assert r.lines == len(lines) == 3
    assert r.summary(0, 0) == "0 / 0 rows answered; elapsed 1m11s"


@pytest.mark.parametrize(("seconds", "text"), [(-3, "0s"), (0.9, "0s"), (59, "59s"), (60, "1m00s"), (3599, "59m59s"),
                                                (3600, "1h00m"), (7 * 3600 + 125, "7h02m")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text
