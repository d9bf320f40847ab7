"""Staging on worker threads, the versioned input fingerprint and the ledger writes
around submission, against the moto S3 server and the local Sutro server."""

from __future__ import annotations

import json
import threading
from typing import Any

import pyarrow as pa
import pytest

from sutro_providers.errors import SutroInputError, SutroLedgerConflictError
from sutro_providers.function_spec import FieldType, InputField
from sutro_providers.identity import RunIdentity
from sutro_providers.inputs.sources import open_source
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.options import StagingLocation
from sutro_providers.prefetch import Lane
from sutro_providers.staging.area import FINGERPRINT_VERSION, StagingArea, _StageWriter
from sutro_providers.submission.ledger import Ledger
from tests.pipeline.conftest import options, tickets

ROWS = tickets(300)
FIELDS = [InputField(name="subject", type=FieldType.STRING), InputField(name="body", type=FieldType.STRING)]


class Boom(Exception):
    """Stands for a failure on one of the staging threads (e.g. the store refusing a write)."""


@pytest.fixture
def area(sutro_s3_server: Any, sutro_s3_bucket: str) -> StagingArea:
    return StagingArea(StagingLocation(url=f"s3://{sutro_s3_bucket}/sutro", storage_options=sutro_s3_server.storage_options))


def _stage(area: StagingArea, identity: RunIdentity, rows: list[dict[str, Any]] = ROWS, **kw: Any) -> Any:
    validator = InputValidator("ticket-triage", FIELDS)
    return area.stage(identity, open_source(rows, batch_size=50), validator, **{"shard_size": 120, **kw})


def _files(area: StagingArea, identity: RunIdentity) -> list[str]:
    prefix = area.run_prefix(identity)
    return sorted(p.rsplit("/", 1)[-1] for p in area.fs.find(prefix, refresh=True)) if area.fs.exists(prefix) else []


def test_staging_writes_every_batch_to_the_snapshot_and_the_shards(area: StagingArea) -> None:
    identity = RunIdentity.of("test", case="threads-ok")
    staged = _stage(area, identity)
    assert staged.shard_rows == [120, 120, 60] and staged.fingerprint_version == FINGERPRINT_VERSION
    assert _files(area, identity) == ["input-s0000.parquet", "input-s0001.parquet", "input-s0002.parquet", "source.parquet"]
    source = pa.Table.from_batches(list(area.read_source(identity, 1000)))
    assert source["ticket_id"].to_pylist() == [r["ticket_id"] for r in ROWS]  # every column, in order
    assert source["__sutro_row_id"].to_pylist() == list(range(len(ROWS)))


@pytest.mark.parametrize("failing", ["_write_source", "_write_shard", "_close_shard"])
def test_an_error_on_a_writer_thread_stops_staging_and_removes_partial_files(
    area: StagingArea, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    identity = RunIdentity.of("test", case="threads-fail", failing=failing)
    original = getattr(_StageWriter, failing)
    calls = []

    def fail_on_third(self: _StageWriter, *args: Any) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise Boom(f"{failing} failed")
        original(self, *args)

    monkeypatch.setattr(_StageWriter, failing, fail_on_third)
    with pytest.raises(Boom, match=f"{failing} failed"):
        _stage(area, identity)
    assert all(name.startswith("sutro-staging-") for name in calls)  # it ran on a worker thread
    assert _files(area, identity) == []  # shard 0 (closed, uploaded) and the snapshot are removed too


def test_invalid_rows_in_a_later_batch_remove_what_the_threads_already_wrote(area: StagingArea) -> None:
    identity = RunIdentity.of("test", case="threads-invalid")
    rows = [dict(r) for r in ROWS]
    rows[260]["subject"] = None  # batch 6 of 50 rows: shards 0 and 1 are already written
    with pytest.raises(SutroInputError, match="row 260"):
        _stage(area, identity, rows)
    assert _files(area, identity) == []


def test_lane_raises_the_first_error_and_skips_what_was_queued_after_it() -> None:
    lane, ran, release = Lane("test", depth=3), [], threading.Event()

    def task(i: int) -> None:
        release.wait(5)
        ran.append(i)
        if i == 1:
            raise Boom("task 1")

    for i in range(3):
        lane.submit(task, i)
    release.set()
    with pytest.raises(Boom, match="task 1"):
        lane.drain()
    assert ran == [0, 1]


def test_fingerprint_versions_differ_and_each_is_stable(area: StagingArea) -> None:
    identity = RunIdentity.of("test", case="fingerprints")
    v1 = [_stage(area, identity, write=False, fingerprint_version=1).fingerprint for _ in range(2)]
    v2 = [_stage(area, identity, write=False).fingerprint for _ in range(2)]
    assert v1[0] == v1[1] and v2[0] == v2[1] and v1[0] != v2[0]
    changed = [dict(r, body=r["body"] + "!") if i == 7 else r for i, r in enumerate(ROWS)]
    assert _stage(area, identity, changed, write=False, fingerprint_version=1).fingerprint != v1[0]
    assert _files(area, identity) == []  # write=False stages nothing


def _as_written_before_versioning(pipeline: Any, identity: RunIdentity, rows: list[dict[str, Any]]) -> None:
    """Rewrite the run's ledger as an earlier release wrote it: a version-1 fingerprint
    (blake2b over IPC streams, batches of the default size) and no fingerprint_version."""
    ledger = Ledger(pipeline.area.fs, pipeline.area.ledger_path(identity))
    validator, _ = pipeline._validator(options())
    v1 = pipeline.area.stage(identity, open_source(rows), validator, shard_size=2**62, write=False, fingerprint_version=1)
    data = json.loads(pipeline.area.fs.cat_file(ledger.path))
    data.pop("fingerprint_version")
    data["fingerprint"] = v1.fingerprint
    pipeline.area.fs.pipe_file(ledger.path, json.dumps(data).encode())
    assert ledger.load().fingerprint_version == 1  # type: ignore[union-attr]


def test_a_retry_across_the_fingerprint_upgrade_reattaches(pipeline: Any, sutro_clean: Any) -> None:
    identity = RunIdentity.of("test", case="fingerprint-upgrade")
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    first = pipeline.submit(ROWS, identity, options())
    _as_written_before_versioning(pipeline, identity, ROWS)
    again = pipeline.submit(ROWS, identity, options())  # checked with version 1: the same input
    assert again.job_ids == first.job_ids and sutro_clean.admin.job_count() == 1
    changed = [dict(r, body=r["body"] + " urgent") for r in ROWS]
    with pytest.raises(SutroLedgerConflictError, match="changed since its earlier attempt"):
        pipeline.submit(changed, identity, options())  # and a real change is still seen
    pipeline.cancel(identity)


def test_a_ledger_from_a_newer_release_is_refused_clearly(pipeline: Any, sutro_clean: Any) -> None:
    identity = RunIdentity.of("test", case="fingerprint-future")
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    pipeline.submit(ROWS, identity, options())
    ledger = Ledger(pipeline.area.fs, pipeline.area.ledger_path(identity))
    record = ledger.load()
    record.fingerprint_version = 99
    ledger.save(record)
    with pytest.raises(SutroLedgerConflictError, match="fingerprint version 99.*upgrade sutro-providers"):
        pipeline.submit(ROWS, identity, options())
    assert sutro_clean.admin.job_count() == 1
    pipeline.cancel(identity)


def test_a_first_submit_writes_the_ledger_at_intent_and_at_submitted_only(
    pipeline: Any, sutro_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = RunIdentity.of("test", case="ledger-writes")
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    saves: list[tuple[str, list[str], bool]] = []
    original = Ledger.save

    def save(self: Ledger, record: Any) -> None:
        jobs = sutro_clean.admin.job_count()
        saves.append((record.phase, [s.state for s in record.shards], jobs > 0))
        original(self, record)

    monkeypatch.setattr(Ledger, "save", save)
    manifest = pipeline.submit(ROWS, identity, options())
    assert saves == [("staged", ["intent"], False), ("submitted", ["submitted"], True)]
    assert Ledger(pipeline.area.fs, pipeline.area.ledger_path(identity)).load().shards[0].job_id == manifest.job_ids[0]  # type: ignore[union-attr]
    saves.clear()
    assert pipeline.submit(ROWS, identity, options()).job_ids == manifest.job_ids  # a retry reattaches
    assert saves == []  # without writing: the ledger already says submitted
    pipeline.cancel(identity)
