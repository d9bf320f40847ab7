"""Progress lines of both pollers against the local Sutro server (real sockets): heartbeat
lines between long polls, rows done from the progress stream, the final line's usage."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import pytest

from sutro_providers.client.config import SutroConfig
from sutro_providers.client.sutro import SutroClient
from sutro_providers.waiting import progress_stream
from sutro_providers.waiting.job_watch import watch_jobs
from sutro_providers.waiting.polling import wait_for_jobs
from sutro_providers.waiting.progress_report import ProgressReporter

pytestmark = pytest.mark.timeout(90)

ROWS = [{"subject": f"Ticket {i}", "body": "Please refund the duplicate charge."} for i in range(3)]
HELD = 2.5  # seconds the job is held RUNNING with no row done


def held_job(server: Any) -> str:
    server.admin.set_faults([{"kind": "hold_job", "count": 1}])
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        return client.create_job(model="ticket-triage", inputs=ROWS)


def release_later(server: Any, job_id: str) -> threading.Timer:
    timer = threading.Timer(HELD, server.admin.release, args=(job_id,))
    timer.start()
    return timer


def check_lines(lines: list[tuple[float, str]], job_id: str, streamed: bool, api_key: str) -> None:
    texts = [text for _, text in lines]
    changes = [text for text in texts if text.startswith(f"Sutro job {job_id} ")]
    assert len(changes) >= 2 and " -> " not in changes[0], texts  # the first status seen, then each change
    heartbeats = [(t, text) for t, text in lines if text.startswith("Sutro progress: RUNNING")]
    # polls 1 s apart growing 1.5x to 10 s: 3 polls in the 2.5 s held; the lines come every 0.3 s regardless
    assert len(heartbeats) >= 4, texts
    gaps = [b[0] - a[0] for a, b in zip(lines, lines[1:], strict=False)]
    assert max(gaps) < 0.3 + 0.45, (gaps, texts)  # never a silence of much more than the interval
    if streamed:  # rows done while held come from the stream only
        assert any("0 / 3 rows (0.0%)" in text for _, text in heartbeats), texts
    else:
        assert all("; 3 rows;" in text for _, text in heartbeats), texts
    final = texts[-1]
    assert re.match(rf"Sutro job {job_id} RUNNING -> SUCCEEDED: 3 / 3 rows \(100\.0%\); elapsed \d+s; "
                    r"tokens [\d,]+ in / [\d,]+ out; cost \$[\d.]+$", final), final
    assert not any(api_key in text or "http" in text for text in texts)


@pytest.mark.parametrize("streamed", [True, False])
def test_sync_wait_beats_between_long_polls_and_reads_the_stream(sutro_clean: Any, streamed: bool) -> None:
    job_id = held_job(sutro_clean)
    lines: list[tuple[float, str]] = []
    reporter = ProgressReporter([job_id], lambda text: lines.append((time.monotonic(), text)), interval=0.3)
    timer = release_later(sutro_clean, job_id)
    with SutroClient(api_url=sutro_clean.url, api_key=sutro_clean.api_key) as client:
        result = wait_for_jobs(client, [job_id], poll_interval=1.0, max_poll_interval=10, deadline=time.time() + 60,
                               progress=reporter, progress_stream=streamed)
    timer.join()
    assert result.outcome == "success"
    check_lines(lines, job_id, streamed, sutro_clean.api_key)
    streams = sutro_clean.admin.stats()["requests"].get("stream-job-progress", 0)
    assert (streams >= 1) if streamed else streams == 0


@pytest.mark.parametrize("streamed", [True, False])
def test_async_wait_beats_between_long_polls_and_reads_the_stream(sutro_clean: Any, streamed: bool) -> None:
    job_id = held_job(sutro_clean)
    lines: list[tuple[float, str]] = []
    reporter = ProgressReporter([job_id], lambda text: lines.append((time.monotonic(), text)), interval=0.3)
    config = SutroConfig.resolve(api_url=sutro_clean.url, api_key=sutro_clean.api_key)
    timer = release_later(sutro_clean, job_id)

    async def wait() -> Any:
        result = await watch_jobs(config, [job_id], poll_interval=1.0, max_poll_interval=10,
                                  deadline=time.time() + 60, progress=reporter, progress_stream=streamed)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return result, leftover

    result, leftover = asyncio.run(wait())
    timer.join()
    assert result.outcome == "success"
    assert leftover == []  # the heartbeat and stream tasks ended with the wait
    check_lines(lines, job_id, streamed, sutro_clean.api_key)
    streams = sutro_clean.admin.stats()["requests"].get("stream-job-progress", 0)
    assert (streams >= 1) if streamed else streams == 0


def test_a_refused_stream_is_given_up_and_the_wait_goes_on(sutro_clean: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment without ``stream-job-progress`` (404): one try, no reopen, the polls report."""
    monkeypatch.setattr(progress_stream, "REOPEN_DELAY", 0.05)
    job_id = held_job(sutro_clean)
    sutro_clean.admin.set_faults([{"kind": "status", "status": 404, "endpoint": "stream-job-progress", "count": 10}],
                                 append=True)
    lines: list[str] = []
    reporter = ProgressReporter([job_id], lines.append, interval=0.3)
    timer = release_later(sutro_clean, job_id)
    with SutroClient(api_url=sutro_clean.url, api_key=sutro_clean.api_key) as client:
        result = wait_for_jobs(client, [job_id], poll_interval=0.2, max_poll_interval=1, deadline=time.time() + 60,
                               progress=reporter, progress_stream=True)
    timer.join()
    assert result.outcome == "success"
    assert sutro_clean.admin.stats()["faults_injected"].get("status") == 1, sutro_clean.admin.stats()
    assert lines[-1].startswith(f"Sutro job {job_id} RUNNING -> SUCCEEDED: 3 / 3 rows (100.0%)")


def test_a_dropped_stream_is_opened_again(sutro_clean: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams that end after their first line (an idle timeout, a proxy) are reopened: the
    rows done keep coming for the whole wait."""
    monkeypatch.setattr(progress_stream, "REOPEN_DELAY", 0.05)
    job_id = held_job(sutro_clean)
    sutro_clean.admin.set_faults([{"kind": "stream_drop", "endpoint": "stream-job-progress", "count": 5}],
                                 append=True)
    lines: list[str] = []
    reporter = ProgressReporter([job_id], lines.append, interval=0.3)
    timer = release_later(sutro_clean, job_id)
    with SutroClient(api_url=sutro_clean.url, api_key=sutro_clean.api_key) as client:
        result = wait_for_jobs(client, [job_id], poll_interval=0.2, max_poll_interval=1, deadline=time.time() + 60,
                               progress=reporter, progress_stream=True)
    timer.join()
    assert result.outcome == "success"
    stats = sutro_clean.admin.stats()
    assert stats["faults_injected"].get("stream_drop") == 5, stats  # more drops than MAX_REOPENS, all reopened
    assert stats["requests"]["stream-job-progress"] >= 6, stats
    assert any("0 / 3 rows (0.0%)" in line for line in lines), lines
