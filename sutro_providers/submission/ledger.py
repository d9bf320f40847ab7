"""The run ledger: a small JSON record on object storage that makes submission
idempotent across task retries, worker loss and re-executions.

It lives next to the staged data (``<staging>/runs/<run key>/ledger.json``) so it
survives whatever the orchestrator clears (Airflow clears XCom on retry). Per
shard it records, in this order:

1. ``intent``: written BEFORE the paid ``batch-inference`` call, with the job name;
2. ``submitted``: written right after, with the job id;
3. ``completed``: once the results were collected and verified.

On a retry, a shard with a job id is reattached (never resubmitted) while its job
is queued, running or succeeded; a shard with only an intent is reconciled through
``list-jobs`` by its deterministic job name before anything is submitted; a shard
whose job FAILED or was CANCELLED is submitted again under the next attempt number.
The input fingerprint tells whether the retry sees the same input as the attempt
it continues (see ``EnrichmentOptions.on_input_change``). ``fingerprint_version``
names how it was computed (see :data:`sutro_providers.staging.area.FINGERPRINT_VERSION`);
a ledger without it (written before it existed) is version 1, and a retry checks
its input with that version, so upgrading sutro-providers between two attempts of a
run reattaches instead of seeing "input changed".

Writes on a first attempt: none after staging alone (until a job is about to be
created a retry may simply stage again; no job can exist yet), then per shard one
write before its job is created (``intent``) and one after (``submitted``); the
write that records the run's last job id also records the run as submitted. Cost
estimates, re-planned shards and a resubmission after an input change write too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from sutro_providers.errors import SutroConcurrentAttemptError, SutroError
from sutro_providers.manifest import Manifest
from sutro_providers.staging.store import store_errors
from sutro_providers.submission.ledger_store import LedgerStore, LedgerWriteConflict, open_ledger_store

log = logging.getLogger("sutro_providers.submission.ledger")
CONFLICT_RETRIES = 20  # ledger writes lost to other attempts before giving up


class RecordReplaced(SutroError):
    """The ledger holds another attempt's record now (another staging of the run):
    start over from it."""


ShardState = Literal["planned", "intent", "submitted", "completed"]
RunPhase = Literal["staging", "staged", "submitted", "completed", "refused"]


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


class ShardRecord(BaseModel):
    index: int
    rows: int
    first_submitted_row: int
    attempt: int = 0
    state: ShardState = "planned"
    job_name: str
    job_id: str | None = None
    estimate_job_id: str | None = None
    holder: str | None = None  # the attempt creating this shard's job (see submission.claims)
    claimed_until: float | None = None  # epoch seconds; the claim lapses then
    updated_at: str = Field(default_factory=utc_now)


class LedgerRecord(BaseModel):
    version: int = 1
    run_key: str
    identity: str
    function: str
    fingerprint: str
    fingerprint_version: int = 1
    stage_id: str | None = None  # the staged files' folder under the run prefix (None: the prefix itself)
    phase: RunPhase = "staging"
    rows_in: int = 0
    rows_submitted: int = 0
    rows_skipped: int = 0
    shards: list[ShardRecord] = Field(default_factory=list)
    cost_estimate_usd: float | None = None
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    manifest: Manifest | None = None

    def shard(self, index: int) -> ShardRecord:
        return self.shards[index]


class Ledger:
    """Reads and writes one run's ledger file through its conditional store
    (:mod:`sutro_providers.submission.ledger_store`).

    The ledger remembers the version it last read or wrote; :meth:`save` creates
    the file only if absent (first write) and otherwise replaces it only if
    unchanged since then, else raises
    :class:`~sutro_providers.submission.ledger_store.LedgerWriteConflict`: another
    attempt of the same run wrote in between, and the caller must :meth:`load`
    again and decide anew. Each write replaces the whole (small) object atomically.
    """

    def __init__(self, fs: Any, path: str, *, unconditional: bool = False) -> None:
        self.fs = fs
        self.path = path
        self.store: LedgerStore = open_ledger_store(fs, path, unconditional=unconditional)
        self._exists = False
        self._tag: str | None = None

    def load(self) -> LedgerRecord | None:
        """The record, or ``None`` when there is none. Raises :class:`SutroStagingError`
        when the store cannot be read (endpoint down, access denied, a path through a file)."""
        with store_errors(f"cannot read the run ledger {self.path}"):
            got = self.store.read()  # one GET (body and version together); None when absent
        if got is None:
            self._exists, self._tag = False, None
            return None
        self._exists, self._tag = True, got[1]
        return LedgerRecord.model_validate(json.loads(got[0]))

    def save(self, record: LedgerRecord) -> None:
        """Write ``record`` if nobody else wrote since this ledger read or wrote it
        (else :class:`~sutro_providers.submission.ledger_store.LedgerWriteConflict`);
        raises :class:`SutroStagingError` when the store refuses or cannot be reached."""
        record.updated_at = utc_now()
        data = record.model_dump_json(indent=1).encode()
        with store_errors(f"cannot write the run ledger {self.path}"):
            self._tag = self.store.replace(data, self._tag) if self._exists else self.store.create(data)
        self._exists = True

    def update(self, record: LedgerRecord, change: Callable[[LedgerRecord], None]) -> None:
        """Apply ``change`` to ``record`` and write it; when another attempt wrote in
        between, read the ledger again into ``record`` and apply ``change`` anew (it
        sees the fresh state and may raise to refuse it). Raises
        :class:`RecordReplaced` when the ledger now holds another staging of the run."""
        for _ in range(CONFLICT_RETRIES):
            change(record)
            try:
                self.save(record)
                return
            except LedgerWriteConflict:
                log.info("the run ledger %s changed since it was read (another attempt wrote it); reading it again",
                         self.path)
                self.refresh(record)
        raise SutroConcurrentAttemptError(f"gave up writing the run ledger {self.path} after {CONFLICT_RETRIES} conflicts")

    def refresh(self, record: LedgerRecord) -> None:
        """Read the ledger again into ``record`` (same staging of the run only)."""
        version = self._exists, self._tag
        fresh = self.load()
        if fresh is None or fresh.stage_id != record.stage_id or len(fresh.shards) != len(record.shards):
            # ``record`` is not what the store holds: every further write of it must conflict too
            self._exists, self._tag = version
            raise RecordReplaced(f"the run ledger {self.path} now holds another attempt's staging of the run")
        for name in type(record).model_fields:
            setattr(record, name, getattr(fresh, name))

    def mark(self, record: LedgerRecord, index: int, state: ShardState, *,
             only_if: Callable[[ShardRecord], bool] | None = None, **changes: Any) -> None:
        """Move one shard to ``state`` (with e.g. ``job_id=``) and persist at once
        (through :meth:`update`); with ``only_if``, only when it holds for the shard as
        last read. The write that records the run's last job id also records the run
        as submitted."""
        def change(fresh: LedgerRecord) -> None:
            shard = fresh.shards[index]
            if only_if is not None and not only_if(shard):
                return
            for key, value in changes.items():
                setattr(shard, key, value)
            shard.state = state
            shard.updated_at = utc_now()
            if state == "submitted" and all(s.job_id for s in fresh.shards):
                fresh.phase = "submitted"
        self.update(record, change)
