"""The Opper run record (``<staging>/runs/<run key>/opper-run.json``) and the claim
that lets one attempt of a run call its rows at a time.

The record is written only through conditional writes
(:class:`~sutro_providers.submission.record_file.RecordFile`: S3 ``If-None-Match`` /
``If-Match``, ``flock`` on local files), so two attempts of one run that overlap (a
"dead" worker that is not, a run re-executed twice at once) cannot both pay for the
same rows:

* a first attempt stages its input, then *creates* the record (only if absent) with
  itself as the claim's ``holder``; the attempt whose create loses removes its
  staged folder and continues from the winner's record;
* before calling, an attempt takes the claim (``holder`` = itself, ``claimed_until``
  = now + ``claim_lease_seconds``) with a conditional replace, and renews it every
  third of the lease while it calls; it reads the journal only once it holds the
  claim, so it calls only the rows nobody answered;
* another attempt that finds a claim in force waits until it ends and starts over
  from the record (``on_concurrent_attempt="wait"``: usually the run is completed
  then, and it returns the result without a call), or fails at once (``"fail"``);
* a claim ends when its holder completes the run or fails (released), when its
  lease runs out, or at once when its holder ran on this host and its process is
  gone (:func:`~sutro_providers.submission.claims.claim_in_force`).

A holder that finds its claim taken by another attempt (its lease ran out while it
was stalled) starts no new call and raises :class:`SutroConcurrentAttemptError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from sutro_providers.errors import SutroConcurrentAttemptError
from sutro_providers.identity import RunIdentity
from sutro_providers.manifest import Manifest
from sutro_providers.staging.area import StagingArea
from sutro_providers.submission.claims import claim_in_force
from sutro_providers.submission.record_file import RecordFile, utc_now
from sutro_providers.submission.submitter import CLAIM_POLL

log = logging.getLogger("sutro_providers.opper_rows.run_record")


class OpperRunRecord(BaseModel):
    """``<staging>/runs/<run key>/opper-run.json``: what a retry needs."""

    run_key: str
    identity: str
    function: str
    fingerprint: str
    fingerprint_version: int
    stage_id: str | None = None  # the staged files' folder under the run prefix (None: the prefix itself)
    phase: Literal["staged", "completed"] = "staged"
    rows_in: int = 0
    rows_submitted: int = 0
    rows_skipped: int = 0
    parent_span_id: str | None = None
    attempts: int = 0
    holder: str | None = None  # the attempt calling the rows now (see the module docstring)
    claimed_until: float | None = None  # epoch seconds; the claim lapses then
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    manifest: Manifest | None = None


class OpperRunFile(RecordFile[OpperRunRecord]):
    """The run record of one identity on the staging store."""

    what = "Opper run record"

    def __init__(self, area: StagingArea, identity: RunIdentity) -> None:
        super().__init__(area.fs, f"{area.run_prefix(identity)}/opper-run.json", OpperRunRecord,
                         unconditional=area.location.unconditional_ledger_writes)


class RunClaim:
    """This attempt's (``holder``) claim on calling the rows of the run in ``file``."""

    def __init__(self, file: OpperRunFile, holder: str, lease_seconds: float,
                 on_concurrent_attempt: Literal["wait", "fail"] = "wait") -> None:
        self.file, self.holder, self.lease = file, holder, lease_seconds
        self.on_concurrent_attempt = on_concurrent_attempt

    def held_by_other(self, record: OpperRunRecord) -> bool:
        return claim_in_force(record.holder, record.claimed_until, self.holder)

    def stamp(self, record: OpperRunRecord) -> OpperRunRecord:
        """``record`` with this attempt as holder for one lease (not written)."""
        record.holder, record.claimed_until = self.holder, time.time() + self.lease
        return record

    def take(self, record: OpperRunRecord) -> bool:
        """Hold the claim (a conditional write of ``record``); False when another
        attempt holds it (``record`` is then the fresh record)."""
        lost = False

        def change(fresh: OpperRunRecord) -> None:
            nonlocal lost
            lost = self.held_by_other(fresh)
            if not lost:
                self.stamp(fresh)
        self.file.update(record, change)
        return not lost

    def update(self, record: OpperRunRecord, change: Callable[[OpperRunRecord], None]) -> None:
        """Apply ``change`` and write it, renewing the lease; raises
        :class:`SutroConcurrentAttemptError` when another attempt took the claim."""
        def guarded(fresh: OpperRunRecord) -> None:
            if fresh.holder != self.holder and self.held_by_other(fresh):
                raise SutroConcurrentAttemptError(
                    f"another attempt ({fresh.holder}) took over Opper run {fresh.identity} while this one "
                    "was calling (its lease ran out); this attempt stops calling")
            change(fresh)
            self.stamp(fresh)
        self.file.update(record, guarded)

    def renew(self, record: OpperRunRecord) -> None:
        self.update(record, lambda fresh: None)

    def release(self, record: OpperRunRecord) -> None:
        """Let the next attempt in at once. Best effort (the lease ends it anyway)."""
        def change(fresh: OpperRunRecord) -> None:
            if fresh.holder == self.holder:
                fresh.holder, fresh.claimed_until = None, None
        try:
            self.file.update(record, change)
        except Exception as exc:  # the error that ended the attempt matters more
            log.warning("could not release the claim on Opper run %s (%s); it lapses with its lease", record.identity, exc)

    async def wait_for_other(self, record: OpperRunRecord) -> None:
        """Wait until another attempt's claim on ``record`` ends (``"wait"``) or
        raise :class:`SutroConcurrentAttemptError` at once (``"fail"``)."""
        left = max(0.0, (record.claimed_until or 0) - time.time())
        if self.on_concurrent_attempt == "fail":
            raise SutroConcurrentAttemptError(
                f"another attempt of Opper run {record.identity} is calling its rows (holder {record.holder}, "
                f"since {record.updated_at}); its claim lapses in {left:.0f} s unless renewed")
        log.info("another attempt (%s) is calling the rows of this run; waiting for it to finish", record.holder)
        current: OpperRunRecord | None = record
        while current is not None and self.held_by_other(current):
            await asyncio.sleep(CLAIM_POLL)
            current = await asyncio.to_thread(self.file.load)

    async def keep(self, record: OpperRunRecord, lost: Callable[[SutroConcurrentAttemptError], None]) -> None:
        """Renew the claim every third of the lease until cancelled; ``lost(error)``
        when another attempt took it (then return)."""
        while True:
            await asyncio.sleep(self.lease / 3)
            renewal = asyncio.ensure_future(asyncio.to_thread(self.renew, record))
            try:
                await asyncio.shield(renewal)
            except asyncio.CancelledError:
                await asyncio.gather(renewal, return_exceptions=True)  # the write ends before the caller's next one
                raise
            except SutroConcurrentAttemptError as exc:
                lost(exc)
                return
            except Exception as exc:  # a store hiccup: try again next time (the lease covers two more tries)
                log.warning("could not renew the claim on Opper run %s: %s", record.identity, exc)
