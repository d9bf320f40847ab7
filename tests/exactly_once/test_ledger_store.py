"""Conditional ledger writes on a real S3 server (moto) and on local files:
created only if absent, replaced only if unchanged since read; a lost race is a
LedgerWriteConflict, never a silent overwrite."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import fsspec
import pytest

from sutro_providers.errors import SutroStagingError
from sutro_providers.submission.ledger import Ledger, LedgerRecord
from sutro_providers.submission.ledger_store import LedgerWriteConflict, S3LedgerStore, open_ledger_store


def _record(note: str = "a") -> LedgerRecord:
    return LedgerRecord(run_key="k", identity=f"test {note}", function="ticket-triage", fingerprint=note)


@pytest.fixture(params=["s3", "file"])
def ledger_pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Ledger, Ledger]:
    """Two Ledger objects on the same file, as two attempts of a run would hold."""
    if request.param == "s3":
        server = request.getfixturevalue("sutro_s3_server")
        bucket = request.getfixturevalue("sutro_s3_bucket")
        path, make = f"{bucket}/runs/k/ledger.json", server.filesystem
    else:
        path, make = str(tmp_path / "runs" / "k" / "ledger.json"), lambda: fsspec.filesystem("file")
    return Ledger(make(), path), Ledger(make(), path)


def test_only_one_first_write_wins(ledger_pair: tuple[Ledger, Ledger]) -> None:
    a, b = ledger_pair
    assert a.load() is None and b.load() is None
    a.save(_record("a"))
    with pytest.raises(LedgerWriteConflict):
        b.save(_record("b"))
    assert b.load().identity == "test a"  # type: ignore[union-attr]


def test_a_stale_update_is_refused_and_a_fresh_one_goes_through(ledger_pair: tuple[Ledger, Ledger]) -> None:
    a, b = ledger_pair
    a.save(_record("v1"))
    first, second = a.load(), b.load()
    assert first is not None and second is not None
    first.phase = "staged"
    a.save(first)  # a moves on
    second.phase = "refused"
    with pytest.raises(LedgerWriteConflict):
        b.save(second)  # b read before a's write
    fresh = b.load()
    assert fresh is not None and fresh.phase == "staged"
    fresh.phase = "submitted"
    b.save(fresh)
    assert a.load().phase == "submitted"  # type: ignore[union-attr]


def test_a_retried_write_meets_itself_and_succeeds(sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    """The storage client retried a PUT whose reply was lost: the 412 it then gets
    is its own earlier write, recognised by the stored bytes."""
    fs = sutro_s3_server.filesystem()
    store = S3LedgerStore(fs, f"{sutro_s3_bucket}/l.json")
    tag = store.create(b"one")
    assert store.create(b"one") == tag
    with pytest.raises(LedgerWriteConflict):
        store.create(b"two")
    new = store.replace(b"two", tag)
    assert store.replace(b"two", tag) == new  # stale tag, but the bytes are already ours


def _race(path: str, who: int, queue: Any, barrier: Any) -> None:
    ledger = Ledger(fsspec.filesystem("file"), path)
    ledger.load()
    barrier.wait(30)  # every attempt has read (nothing) before any writes
    try:
        ledger.save(_record(str(who)))
        queue.put(("won", who))
    except LedgerWriteConflict:
        queue.put(("lost", who))


def test_processes_racing_on_a_local_ledger(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.json")
    ctx = multiprocessing.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(6)
    procs = [ctx.Process(target=_race, args=(path, i, queue, barrier)) for i in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = [queue.get(timeout=5) for _ in procs]
    assert sum(1 for o, _ in outcomes if o == "won") == 1, outcomes


def test_a_store_without_conditional_writes_is_refused_unless_opted_in() -> None:
    fs = fsspec.filesystem("memory")
    with pytest.raises(SutroStagingError, match="unconditional_ledger_writes"):
        open_ledger_store(fs, "/runs/k/ledger.json")
    ledger = Ledger(fs, "/runs/k/ledger.json", unconditional=True)
    ledger.save(_record("x"))
    assert ledger.load().fingerprint == "x"  # type: ignore[union-attr]
