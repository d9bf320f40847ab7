"""``build_sutro_jobs_sensor`` against the local server: jobs started by the plain
client (no Dagster), each finished one observed exactly once across ticks (the
cursor), running ones only once they finish; the tick's paging stops at what an
earlier tick settled. Also the library registry entry."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from dagster_sutro import build_sutro_jobs_sensor
from dagster_sutro.sensors import JobsCursor, scan_jobs
from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.client.sutro import SutroClient
from sutro_providers.identity import RunIdentity

ADHOC = dg.AssetKey(["support", "tickets_triaged_adhoc"])
ROW = {"subject": "Charged twice", "body": "My card was charged twice this month."}


def _wait_finished(client: SutroClient, *job_ids: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(client.get_job(j).status.is_terminal for j in job_ids):
            return
        time.sleep(0.1)
    raise AssertionError(f"jobs not finished: {job_ids}")


def _tick(sensor: dg.SensorDefinition, resource: Any, instance: Any, cursor: str | None,
          definitions: dg.Definitions | None = None) -> Any:
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"sutro": resource},
                                 definitions=definitions) as context:
        return sensor.evaluate_tick(context)


def _observed(data: Any) -> dict[str, dict[str, Any]]:
    """job id -> metadata values of the tick's observations (each job at most once)."""
    ids = [e.metadata["sutro/job_id"].value for e in data.asset_events]
    assert len(ids) == len(set(ids)), ids
    return {e.metadata["sutro/job_id"].value: {k: v.value for k, v in e.metadata.items()} for e in data.asset_events}


def test_finished_jobs_are_observed_once(sutro_clean: Any, sutro_resource: Any, instance: Any) -> None:
    sensor = build_sutro_jobs_sensor(asset_key=ADHOC, job_name_prefix="adhoc-")
    with SutroClient(api_url=sutro_clean.url, api_key=sutro_clean.api_key) as client:
        done = client.create_job(model="ticket-triage", inputs=[ROW, ROW], name="adhoc-done")
        sutro_clean.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "worker lost"}])
        failed = client.create_job(model="ticket-triage", inputs=[ROW], name="adhoc-failed")
        sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
        held = client.create_job(model="ticket-triage", inputs=[ROW], name="adhoc-held")
        sutro_clean.admin.clear_faults()
        other = client.create_job(model="ticket-triage", inputs=[ROW], name="nightly-other")  # another prefix
        _wait_finished(client, done, failed, other)
        assert client.get_job(held).status is JobStatus.RUNNING

        first = _tick(sensor, sutro_resource, instance, None)
        seen = _observed(first)
        assert set(seen) == {done, failed}  # not the running one, not the other prefix
        assert all(e.asset_key == ADHOC for e in first.asset_events)
        assert seen[done]["sutro/state"] == "succeeded" and seen[done]["sutro/function"] == "ticket-triage"
        assert seen[done]["sutro/rows_out"] == 2 and seen[done]["sutro/cost_usd"] > 0
        assert seen[done]["sutro.ticket-triage.input_tokens"] > 0
        assert seen[done]["sutro/job"] == f"{sutro_clean.url}/jobs/{done}"
        assert seen[failed]["sutro/state"] == "failed" and seen[failed]["sutro/failure_reason"] == "worker lost"
        assert JobsCursor.parse(first.cursor).open.keys() == {held}  # type: ignore[union-attr]

        second = _tick(sensor, sutro_resource, instance, first.cursor)
        assert _observed(second) == {}  # nothing new: the finished jobs are not observed again

        sutro_clean.admin.release(held)
        later = client.create_job(model="ticket-triage", inputs=[ROW], name="adhoc-later")
        _wait_finished(client, held, later)
        third = _tick(sensor, sutro_resource, instance, second.cursor)
        assert set(_observed(third)) == {held, later}
        assert _observed(_tick(sensor, sutro_resource, instance, third.cursor)) == {}
        assert JobsCursor.parse(third.cursor).open == {}  # type: ignore[union-attr]

    text = serialize_value([first.asset_events, third.asset_events]) + "".join(
        str(t.cursor) for t in (first, second, third))
    assert sutro_clean.api_key not in text and "X-Amz-Signature" not in text


def test_package_jobs_left_out_and_run_requests(sutro_clean: Any, sutro_resource: Any, instance: Any) -> None:
    """Without a prefix every job counts except this package's own; with
    ``asset_selection`` each SUCCEEDED job requests one run, keyed by its id."""

    @dg.asset(key=ADHOC)
    def adhoc() -> None: ...

    sensor = build_sutro_jobs_sensor(asset_key=lambda job: ["sutro", job.model or "unknown"],
                                     asset_selection=[ADHOC], function="ticket-triage")
    package_name = RunIdentity.dagster("support/tickets_triaged", None, "run-1").job_name(0)
    with SutroClient(api_url=sutro_clean.url, api_key=sutro_clean.api_key) as client:
        mine = client.create_job(model="ticket-triage", inputs=[ROW], name="notebook")
        unnamed = client.create_job(model="ticket-triage", inputs=[ROW])
        ours = client.create_job(model="ticket-triage", inputs=[ROW], name=package_name)
        sutro_clean.admin.set_faults([{"kind": "fail_job", "count": 1}])
        failed = client.create_job(model="ticket-triage", inputs=[ROW], name="notebook-2")
        sutro_clean.admin.clear_faults()
        other_function = client.create_job(model="lead-extractor", inputs=[{"message": "hi"}], name="leads")
        _wait_finished(client, mine, unnamed, ours, failed, other_function)
    data = _tick(sensor, sutro_resource, instance, None, dg.Definitions(assets=[adhoc], sensors=[sensor]))
    assert set(_observed(data)) == {mine, unnamed, failed}
    assert {e.asset_key for e in data.asset_events} == {dg.AssetKey(["sutro", "ticket-triage"])}
    assert sorted(r.run_key for r in data.run_requests) == sorted([mine, unnamed])  # not the failed one
    assert all(r.tags["sutro/job_id"] == r.run_key for r in data.run_requests)


def test_definition_errors() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="asset_key, asset_selection"):
        build_sutro_jobs_sensor()
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="final job statuses"):
        build_sutro_jobs_sensor(asset_key=ADHOC, statuses=["RUNNING"])


# -- the tick logic alone: paging stops at what an earlier tick settled

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def _job(n: int, status: str = "SUCCEEDED", seconds: float | None = None) -> JobRecord:
    created = T0 + dt.timedelta(seconds=n if seconds is None else seconds)
    return JobRecord(job_id=f"job-{n}", status=status, name=f"j{n}", datetime_created=created)


class Listing:
    """Jobs newest first, counting how many a tick read."""

    def __init__(self, jobs: list[JobRecord]) -> None:
        self.jobs = sorted(jobs, key=lambda j: j.datetime_created or T0, reverse=True)
        self.read = 0

    def __iter__(self) -> Iterator[JobRecord]:
        for job in self.jobs:
            self.read += 1
            yield job


def _scan(jobs: Listing, cursor: JobsCursor | None, now: float | None = None) -> Any:
    return scan_jobs(iter(jobs), cursor, now=now or T0.timestamp() + 10_000, initial_lookback_seconds=1e9,
                     matches=lambda job: True)


def test_tick_stops_below_the_settled_jobs() -> None:
    old = [_job(n) for n in range(50)]
    running = _job(50, "RUNNING")
    first = _scan(Listing([*old, running]), None)
    assert [j.job_id for j in first.finished] == [f"job-{n}" for n in range(50)]  # oldest first
    assert first.cursor.open == {"job-50": running.datetime_created.timestamp()}  # type: ignore[union-attr]

    # the running job finishes, two new ones arrive: the tick reads down to the open job and stops
    listing = Listing([*old, _job(50), _job(51), _job(52, "QUEUED")])
    second = _scan(listing, first.cursor)
    assert [j.job_id for j in second.finished] == ["job-50", "job-51"]
    assert listing.read == 4  # job-52, 51, 50, and job-49 (below the settled line: stop)
    third_listing = Listing([*old, _job(50), _job(51), _job(52)])
    third = _scan(third_listing, second.cursor)
    assert [j.job_id for j in third.finished] == ["job-52"] and third_listing.read == 2


def test_tick_keeps_jobs_created_at_the_same_instant_apart() -> None:
    first = _scan(Listing([_job(1, seconds=5)]), None)
    # a second job with the very same creation time appears after the tick
    second = _scan(Listing([_job(1, seconds=5), _job(2, seconds=5)]), first.cursor)
    assert [j.job_id for j in second.finished] == ["job-2"]
    assert second.cursor.at_horizon == {"job-1", "job-2"}
    assert _scan(Listing([_job(1, seconds=5), _job(2, seconds=5)]), second.cursor).finished == []


def test_first_tick_looks_back_only_so_far() -> None:
    now = T0.timestamp() + 100
    jobs = Listing([_job(n, seconds=n * 10) for n in range(10)])  # created 0..90 s after T0
    result = scan_jobs(iter(jobs), None, now=now, initial_lookback_seconds=35, matches=lambda job: True)
    assert [j.job_id for j in result.finished] == ["job-7", "job-8", "job-9"]


def test_registered_in_the_dagster_library_registry() -> None:
    from dagster_shared.libraries import DagsterLibraryRegistry

    import dagster_sutro

    version = importlib.metadata.version("sutro-providers")
    assert dagster_sutro.__version__ == version
    assert DagsterLibraryRegistry.get()["dagster-sutro"] == version
