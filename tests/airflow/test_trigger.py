"""SutroJobTrigger against the local Sutro server (real sockets, no Airflow DB)."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import time
from typing import Any

import pytest

from airflow_provider.triggers.sutro import SutroJobTrigger
from sutro_providers.client.sutro import SutroClient
from tests.airflow.conftest import TICKETS
from tests.job_helpers import cancel_and_release, until

pytestmark = pytest.mark.timeout(60)


def submit(server: Any, rows: list[dict[str, Any]] = TICKETS) -> str:
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        return client.create_job(model="ticket-triage", inputs=rows)


async def first_event(trigger: SutroJobTrigger) -> dict[str, Any]:
    events = []
    async for event in trigger.run():
        events.append(event.payload)
    assert len(events) == 1, events  # exactly one event
    json.dumps(events[0])  # plain JSON
    return events[0]


def run_trigger(trigger: SutroJobTrigger) -> dict[str, Any]:
    return asyncio.run(first_event(trigger))


def trigger(job_ids: list[str], **kwargs: Any) -> SutroJobTrigger:
    kwargs = {"poll_interval": 0.1, "max_poll_interval": 0.3, "deadline": time.time() + 30, **kwargs}
    return SutroJobTrigger(job_ids=job_ids, **kwargs)


def test_serialize_round_trip() -> None:
    from airflow.sdk.serde import deserialize, serialize

    original = SutroJobTrigger(job_ids=["job-1", "job-2"], sutro_conn_id="other", deadline=1234.5,
                               poll_interval=2, max_poll_interval=30, max_consecutive_errors=3, cancel_on_kill=False,
                               progress_interval=15, progress_stream=True)
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_provider.triggers.sutro.SutroJobTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain JSON
    assert kwargs == {"job_ids": ["job-1", "job-2"], "sutro_conn_id": "other", "deadline": 1234.5,
                      "poll_interval": 2.0, "max_poll_interval": 30.0, "max_consecutive_errors": 3,
                      "cancel_on_kill": False, "progress_interval": 15.0, "progress_stream": True}
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**deserialize(serialize(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)


def test_success(sutro_conn: Any) -> None:
    job = submit(sutro_conn)
    event = run_trigger(trigger([job]))
    assert event == {"status": "success", "job_ids": [job], "message": "1 Sutro job(s) succeeded",
                     "statuses": {job: "SUCCEEDED"}}


def test_failure(sutro_conn: Any) -> None:
    sutro_conn.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "model exploded"}])
    job = submit(sutro_conn)
    event = run_trigger(trigger([job]))
    assert event["status"] == "failed"
    assert event["statuses"] == {job: "FAILED"}
    assert job in event["message"] and "model exploded" in event["message"]


def test_cancellation(sutro_conn: Any) -> None:
    sutro_conn.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job = submit(sutro_conn)

    async def scenario() -> dict[str, Any]:
        task = asyncio.create_task(first_event(trigger([job])))
        await asyncio.sleep(0.5)
        assert not task.done()
        with SutroClient(api_url=sutro_conn.url, api_key=sutro_conn.api_key) as client:
            await asyncio.to_thread(client.cancel_job, job)
        return await task

    event = asyncio.run(scenario())
    assert event["status"] == "cancelled" and job in event["message"]


def test_timeout_is_yielded_by_the_trigger(sutro_conn: Any) -> None:
    sutro_conn.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job = submit(sutro_conn)
    started = time.monotonic()
    event = run_trigger(trigger([job], deadline=time.time() + 1.0))
    assert event["status"] == "timeout"
    assert 0.9 < time.monotonic() - started < 5
    assert event["statuses"][job] in {"RUNNING", "STARTING", "QUEUED"}
    with SutroClient(api_url=sutro_conn.url, api_key=sutro_conn.api_key) as client:
        assert client.job_status(job) == "RUNNING"  # the trigger itself never cancels


def test_transient_errors_are_tolerated(sutro_conn: Any) -> None:
    job = submit(sutro_conn)
    sutro_conn.admin.set_faults([
        {"kind": "status", "endpoint": "jobs", "status": 503, "count": 3},
        {"kind": "drop_connection", "endpoint": "jobs", "count": 1},
    ])
    event = run_trigger(trigger([job]))
    assert event["status"] == "success"
    injected = sutro_conn.admin.stats()["faults_injected"]
    assert injected.get("status") == 3 and injected.get("drop_connection") == 1, injected


def test_persistent_errors_end_in_error_event_and_leave_job(sutro_conn: Any) -> None:
    sutro_conn.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job = submit(sutro_conn)
    sutro_conn.admin.set_faults([{"kind": "status", "endpoint": "jobs", "status": 503}], append=True)
    event = run_trigger(trigger([job], max_consecutive_errors=1))
    assert event["status"] == "error"
    assert "failed polls" in event["message"]
    sutro_conn.admin.clear_faults()
    with SutroClient(api_url=sutro_conn.url, api_key=sutro_conn.api_key) as client:
        # left as it was (held, not cancelled); still STARTING when the trigger gave up within the
        # server's start-up time (0.2 s)
        assert client.job_status(job) in ("STARTING", "RUNNING")


def test_bad_connection_yields_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MISSING", raising=False)
    event = run_trigger(trigger(["job-x"], sutro_conn_id="missing"))
    assert event["status"] == "error" and "missing" in event["message"]


def test_on_kill_cancels_the_jobs(sutro_conn: Any) -> None:
    sutro_conn.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job = submit(sutro_conn)
    asyncio.run(trigger([job]).on_kill())
    with SutroClient(api_url=sutro_conn.url, api_key=sutro_conn.api_key) as client:
        assert client.job_status(job) in {"CANCELLING", "CANCELLED"}


def test_cleanup_does_not_cancel(sutro_conn: Any) -> None:
    sutro_conn.admin.set_faults([{"kind": "hold_job", "count": 1}])
    job = submit(sutro_conn)
    asyncio.run(trigger([job]).cleanup())
    time.sleep(0.3)
    with SutroClient(api_url=sutro_conn.url, api_key=sutro_conn.api_key) as client:
        assert client.job_status(job) in {"QUEUED", "STARTING", "RUNNING"}


def test_no_slow_callback_in_asyncio_debug_mode(sutro_conn: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The trigger never blocks the triggerer's event loop for more than 50 ms."""
    job = submit(sutro_conn)
    sutro_conn.admin.set_faults([{"kind": "status", "endpoint": "jobs", "status": 503, "count": 1}])

    async def main() -> dict[str, Any]:
        asyncio.get_running_loop().slow_callback_duration = 0.05
        return await first_event(trigger([job]))

    caplog.set_level(logging.WARNING, logger="asyncio")
    event = asyncio.run(main(), debug=True)
    assert event["status"] == "success"
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.getMessage()]
    assert slow == [], slow


def test_many_triggers_share_one_poller_and_get_their_own_events(sutro_conn: Any) -> None:
    """12 triggers on one loop: one shared poller (one client), each trigger gets its own event."""
    from sutro_providers.waiting.job_watch import MIN_LIST_BATCH, active_watches

    sutro_conn.admin.set_faults([{"kind": "fail_job", "count": 3, "message": "model exploded"}])
    failing = [submit(sutro_conn) for _ in range(3)]
    plain = [submit(sutro_conn) for _ in range(3)]  # before the held jobs, which keep the local workers busy
    sutro_conn.admin.set_faults([{"kind": "hold_job", "count": 6}])
    held = [submit(sutro_conn) for _ in range(6)]
    cancelled, released, timed_out = held[:2], held[2:4], held[4:]
    before = sutro_conn.admin.stats()["requests"]

    async def scenario() -> tuple[list[dict[str, Any]], int, Any]:
        triggers = [trigger([job], deadline=time.time() + (3 if job in timed_out else 30)) for job in failing + plain + held]
        waits = asyncio.gather(*(first_event(t) for t in triggers))
        await until(lambda: bool(active_watches()) and active_watches()[0].stats.deliveries >= 12)
        watches = active_watches()
        await cancel_and_release(sutro_conn, cancelled, released)
        events = await waits
        assert active_watches() == [] and asyncio.all_tasks() == {asyncio.current_task()}  # the poller ended
        return events, len(watches), watches[0].stats

    events, pollers, stats = asyncio.run(scenario())
    assert pollers == 1
    by_job = {e["job_ids"][0]: e for e in events}
    assert [by_job[j]["status"] for j in failing + plain + held] == (
        ["failed"] * 3 + ["success"] * 3 + ["cancelled"] * 2 + ["success"] * 2 + ["timeout"] * 2)
    assert "model exploded" in by_job[failing[0]]["message"]
    assert {by_job[j]["statuses"][j] for j in timed_out} <= {"QUEUED", "STARTING", "RUNNING"}
    after = sutro_conn.admin.stats()["requests"]
    made = sum(after.get(r, 0) - before.get(r, 0) for r in ("jobs", "list-jobs"))
    assert made == stats.requests and after.get("list-jobs", 0) > 0
    # 12 jobs are all on the newest list page: a round reads one page, or GETs when it wants 1-2 jobs
    assert stats.list_pages <= stats.rounds, stats
    assert stats.gets <= (MIN_LIST_BATCH - 1) * (stats.rounds - stats.list_pages), stats
    # far fewer HTTP requests than trigger polls: about 4x here, 3.9x on 2 busy cores (how many
    # rounds the 1-2 job tail takes depends on timing, hence the margin)
    assert made * 2 <= stats.deliveries, (made, stats)


def test_first_run_freezes_the_garbage_collector(sutro_conn: Any) -> None:
    import gc

    job = submit(sutro_conn)
    assert run_trigger(trigger([job]))["status"] == "success"
    assert gc.get_freeze_count() > 0


def test_triggers_starting_together_share_one_connection_lookup(sutro_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider.hooks.sutro import SutroHook

    lookups: list[str] = []
    original = SutroHook.aget_connection

    async def counted(conn_id: str) -> Any:
        lookups.append(conn_id)
        return await original(conn_id)

    monkeypatch.setattr(SutroHook, "aget_connection", counted)
    jobs = [submit(sutro_conn) for _ in range(5)]

    async def scenario() -> list[dict[str, Any]]:
        together = await asyncio.gather(*(first_event(trigger([job])) for job in jobs))
        later = await first_event(trigger(jobs[:1]))  # a trigger started afterwards reads the connection again
        return [*together, later]

    events = asyncio.run(scenario())
    assert [e["status"] for e in events] == ["success"] * 6
    assert lookups == ["sutro_default", "sutro_default"]
