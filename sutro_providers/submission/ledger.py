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

from typing import Any, Literal

from pydantic import BaseModel, Field

from sutro_providers.manifest import Manifest
from sutro_providers.submission.record_file import CONFLICT_RETRIES, RecordFile, RecordReplaced, utc_now

__all__ = ["CONFLICT_RETRIES", "Ledger", "LedgerRecord", "RecordReplaced", "ShardRecord", "utc_now"]


ShardState = Literal["planned", "intent", "submitted", "completed"]
RunPhase = Literal["staging", "staged", "submitted", "completed", "refused"]


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
    rows_reused: int = 0  # incremental runs: rows staged as reused from the results cache
    cost_avoided_usd: float | None = None
    shards: list[ShardRecord] = Field(default_factory=list)
    cost_estimate_usd: float | None = None
    created_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    manifest: Manifest | None = None

    def shard(self, index: int) -> ShardRecord:
        return self.shards[index]


class Ledger(RecordFile[LedgerRecord]):
    """Reads and writes one run's ledger file through its conditional store
    (:mod:`sutro_providers.submission.ledger_store`; the reads, writes and
    re-applied updates are :class:`~sutro_providers.submission.record_file.RecordFile`'s).

    The ledger remembers the version it last read or wrote; :meth:`save` creates
    the file only if absent (first write) and otherwise replaces it only if
    unchanged since then, else raises
    :class:`~sutro_providers.submission.ledger_store.LedgerWriteConflict`: another
    attempt of the same run wrote in between, and the caller must :meth:`load`
    again and decide anew. Each write replaces the whole (small) object atomically.
    """

    what = "run ledger"

    def __init__(self, fs: Any, path: str, *, unconditional: bool = False) -> None:
        super().__init__(fs, path, LedgerRecord, unconditional=unconditional)

    def same_staging(self, fresh: LedgerRecord, record: LedgerRecord) -> bool:
        return fresh.stage_id == record.stage_id and len(fresh.shards) == len(record.shards)

    def mark(self, record: LedgerRecord, index: int, state: ShardState, **changes: Any) -> None:
        """Move one shard to ``state`` (with e.g. ``job_id=``) and persist at once
        (through :meth:`update`). The write that records the run's last job id also
        records the run as submitted."""
        def change(fresh: LedgerRecord) -> None:
            shard = fresh.shards[index]
            for key, value in changes.items():
                setattr(shard, key, value)
            shard.state = state
            shard.updated_at = utc_now()
            if state == "submitted" and all(s.job_id for s in fresh.shards):
                fresh.phase = "submitted"
        self.update(record, change)
