"""The shared job-status poller against the local Sutro server (real sockets)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import respx

from sutro_providers.client.config import SutroConfig
from sutro_providers.client.sutro import SutroClient
from sutro_providers.waiting import job_watch
from sutro_providers.waiting.job_watch import active_watches, watch_jobs, watching
from sutro_providers.waiting.polling import WaitResult
from tests.job_helpers import cancel_and_release, until

pytestmark = pytest.mark.timeout(90)

FAST_RETRY = {"max_attempts": 2, "max_elapsed": 5, "initial_backoff": 0.05, "max_backoff": 0.2}
WAITING = {"QUEUED", "STARTING", "RUNNING"}  # read, not UNKNOWN (held jobs keep the 2 local workers busy)
ROW = [{"subject": "Refund request", "body": "Please refund the duplicate charge."}]


def config_of(server: Any, host: str = "127.0.0.1") -> SutroConfig:
    return SutroConfig.resolve(api_url=server.url.replace("127.0.0.1", host), api_key=server.api_key, retry=FAST_RETRY)


def create(server: Any, count: int, fault: str | None = None, **rule: Any) -> list[str]:
    if fault:
        server.admin.set_faults([{"kind": fault, "count": count, **rule}], append=True)
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        return [client.create_job(model="ticket-triage", inputs=ROW) for _ in range(count)]


def requests_made(server: Any) -> int:
    counts = server.admin.stats()["requests"]
    return int(counts.get("jobs", 0)) + int(counts.get("list-jobs", 0))


async def wait_all(config: SutroConfig, jobs: list[str], **options: Any) -> list[WaitResult]:
    options = {"poll_interval": 0.1, "max_poll_interval": 0.2, "deadline": time.time() + 30, **options}
    return await asyncio.gather(*(watch_jobs(config, [job], **options) for job in jobs))


def test_many_waiters_share_one_poller_and_client(sutro_clean: Any) -> None:
    failing = create(sutro_clean, 6, "fail_job", message="model exploded")
    sutro_clean.admin.clear_faults()
    plain = create(sutro_clean, 6)  # before the held jobs: those keep the local server's workers busy
    held = create(sutro_clean, 12, "hold_job")
    cancelled, released, still_held = held[:4], held[4:8], held[8:]
    config = config_of(sutro_clean)
    before = requests_made(sutro_clean)

    async def scenario() -> tuple[list[WaitResult], list[job_watch.JobWatch], job_watch.WatchStats]:
        waits = asyncio.gather(*(watch_jobs(config, [job], poll_interval=0.1, max_poll_interval=0.2,
                                            deadline=time.time() + (4 if job in still_held else 30))
                                 for job in failing + held + plain))
        await until(lambda: bool(active_watches()) and active_watches()[0].stats.deliveries >= 24)
        watches = active_watches()
        await cancel_and_release(sutro_clean, cancelled, released)
        results = await waits
        return results, watches, watches[0].stats

    results, watches, stats = asyncio.run(scenario())
    assert len(watches) == 1  # one poller (so one client) for all 24 waiters
    outcomes = dict(zip(failing + held + plain, (r.outcome for r in results), strict=True))
    assert {outcomes[j] for j in failing} == {"failed"}
    assert {outcomes[j] for j in cancelled} == {"cancelled"}
    assert {outcomes[j] for j in released + plain} == {"success"}
    assert {outcomes[j] for j in still_held} == {"timeout"}
    failed = results[0]
    assert "model exploded" in failed.message and failed.statuses[failing[0]].value == "FAILED"
    # every status was delivered to its waiter, from far fewer HTTP calls than waiter polls
    assert requests_made(sutro_clean) - before == stats.requests
    assert stats.list_pages > 0 and stats.requests * 5 <= stats.deliveries, stats


def test_a_job_not_on_the_list_pages_is_read_with_get(sutro_clean: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_watch, "PAGE_SIZE", 2)
    monkeypatch.setattr(job_watch, "MAX_PAGES", 1)
    oldest = create(sutro_clean, 2, "hold_job")
    create(sutro_clean, 1, "hold_job")  # nobody waits for this one
    newest = create(sutro_clean, 1, "hold_job")
    config = config_of(sutro_clean)

    async def scenario() -> tuple[list[WaitResult], job_watch.WatchStats]:
        async with watching(config, []) as watch:  # keeps the watch (and its counters) for the check
            results = await wait_all(config, oldest + newest, deadline=time.time() + 1.0)
            return results, watch.stats

    results, stats = asyncio.run(scenario())
    # the one page read holds the newest job and the unwatched one: the two oldest came from GETs
    assert [r.outcome for r in results] == ["timeout"] * 3
    assert all(r.statuses[j].value in WAITING for r, j in zip(results, oldest + newest, strict=True))
    assert stats.list_pages >= 1 and stats.gets >= 2, stats


def test_list_jobs_refused_falls_back_to_get(sutro_clean: Any) -> None:
    jobs = create(sutro_clean, 4)
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "list-jobs", "status": 404}])
    config = config_of(sutro_clean)

    async def scenario() -> tuple[list[WaitResult], bool]:
        async with watching(config, []) as watch:
            return await wait_all(config, jobs), watch.list_jobs_usable

    results, usable = asyncio.run(scenario())
    assert [r.outcome for r in results] == ["success"] * 4
    assert not usable
    assert sutro_clean.admin.stats()["requests"]["list-jobs"] == 1  # asked once, then GETs only


def test_transient_list_jobs_error_is_a_failed_poll_of_the_round(sutro_clean: Any) -> None:
    jobs = create(sutro_clean, 4, "hold_job")
    sutro_clean.admin.set_faults([{"kind": "status", "endpoint": "list-jobs", "status": 503, "count": 2}])
    config = config_of(sutro_clean)  # 2 attempts per call: the first list-jobs call fails for good

    async def scenario() -> tuple[list[WaitResult], WaitResult, job_watch.JobWatch]:
        async with watching(config, []) as watch:
            strict = watch_jobs(config, jobs[:1], poll_interval=0.1, max_consecutive_errors=0)
            tolerant = wait_all(config, jobs[1:], deadline=time.time() + 1.5)
            failed, results = await asyncio.gather(strict, tolerant)
            return results, failed, watch

    results, failed, watch = asyncio.run(scenario())
    assert failed.outcome == "error" and "503" in failed.message  # the round's error reached the waiter
    assert [r.outcome for r in results] == ["timeout"] * 3  # one failed poll tolerated, then read again
    assert all(r.statuses[j].value in WAITING for r, j in zip(results, jobs[1:], strict=True))
    assert sutro_clean.admin.stats()["faults_injected"]["status"] == 2
    assert watch.list_jobs_usable and watch.stats.gets == 0 and watch.stats.list_pages > 2, watch.stats


def test_list_jobs_that_does_not_paginate_falls_back_to_get() -> None:
    """A deployment that ignores ``limit`` (respx: the local server paginates)."""
    config = SutroConfig.resolve(api_url="http://127.0.0.1:9", api_key="sk_test", retry=FAST_RETRY)
    record = {"status": "RUNNING", "datetime_created": "2026-11-21T20:00:00Z"}
    everything = [{"job_id": f"job-{i}", **record} for i in range(150)]

    async def scenario() -> tuple[list[WaitResult], job_watch.JobWatch]:
        async with watching(config, []) as watch:
            return await wait_all(config, ["job-1", "job-2", "job-3"], deadline=time.time() + 0.6), watch

    with respx.mock(base_url="http://127.0.0.1:9/v1") as mock:
        listing = mock.get("/list-jobs").respond(json={"jobs": everything})
        for i in (1, 2, 3):
            mock.get(f"/jobs/job-{i}").respond(json={"job": {"job_id": f"job-{i}", **record}})
        results, watch = asyncio.run(scenario())
    assert [r.outcome for r in results] == ["timeout"] * 3
    assert listing.call_count == 1 and not watch.list_jobs_usable
    assert watch.stats.gets >= 3


def test_poller_task_ends_with_the_last_waiter(sutro_clean: Any) -> None:
    jobs = create(sutro_clean, 3, "hold_job")
    config = config_of(sutro_clean)

    async def scenario() -> None:
        waiters = [asyncio.create_task(watch_jobs(config, [job], poll_interval=0.1)) for job in jobs]
        await until(lambda: bool(active_watches()) and active_watches()[0].stats.deliveries >= 3)
        (watch,) = active_watches()
        task = watch.task
        assert task is not None
        for waiter in waiters[:2]:
            waiter.cancel()
        await asyncio.wait(waiters[:2])
        assert not task.done() and active_watches() == [watch]  # one waiter left
        waiters[2].cancel()
        await asyncio.wait(waiters[2:])
        assert task.done() and active_watches() == []
        assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing leaked
        assert watch._task is task  # the watch is not restarted; a new waiter gets a new one

    asyncio.run(scenario())


def test_different_connections_get_different_pollers(sutro_clean: Any) -> None:
    first, second = create(sutro_clean, 2, "hold_job")
    configs = [config_of(sutro_clean), config_of(sutro_clean, host="localhost")]

    async def scenario() -> tuple[list[WaitResult], int]:
        waits = asyncio.gather(*(watch_jobs(c, [j], poll_interval=0.1) for c, j in zip(configs, (first, second), strict=True)))
        await until(lambda: sum(w.stats.deliveries > 0 for w in active_watches()) == 2)
        count = len({id(w) for w in active_watches()})
        for job in (first, second):
            await asyncio.to_thread(sutro_clean.admin.release, job)
        return await waits, count

    results, count = asyncio.run(scenario())
    assert configs[0] != configs[1]
    assert count == 2
    assert [r.outcome for r in results] == ["success", "success"]
