"""Submitting shards exactly once: intent → create job → submitted, with
reconciliation by job name whenever the outcome of an earlier submit is unknown.

Never pays twice for the same shard:

* a shard with a job id whose job is queued, running or succeeded is reattached;
* a shard with only an ``intent`` (the process died between the paid call and the
  ledger write, or the call's outcome was unknown) is looked up through
  ``list-jobs`` by its deterministic name before anything is submitted;
* a ``SutroSubmissionOutcomeUnknownError`` (5xx/524/dropped connection after the
  request was sent) is reconciled the same way, ``RECONCILE_TRIES`` lookups
  ``RECONCILE_PAUSE`` seconds apart (tenacity), and otherwise raised:
  the shard stays at ``intent`` and the next attempt reconciles again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.client.sutro import SutroClient
from sutro_providers.columns import ROW_ID
from sutro_providers.errors import (
    SutroConcurrentAttemptError,
    SutroCostLimitError,
    SutroSubmissionOutcomeUnknownError,
    SutroValidationError,
)
from sutro_providers.identity import RunIdentity
from sutro_providers.money import usd
from sutro_providers.options import EnrichmentOptions
from sutro_providers.staging.area import StagingArea
from sutro_providers.submission.claims import held_by_other, new_holder
from sutro_providers.submission.ledger import Ledger, LedgerRecord, ShardRecord
from sutro_providers.waiting.polling import wait_for_jobs

log = logging.getLogger("sutro_providers.submission.submitter")
RECONCILE_TRIES = 4
RECONCILE_PAUSE = 1.0
CLAIM_POLL = 1.0  # seconds between ledger reads while another attempt holds a claim


class EstimatePending(Exception):  # noqa: N818 - a signal, not an error
    """The cost-estimate jobs are still running (``check_cost(wait=False)``)."""

    def __init__(self, job_ids: list[str]) -> None:
        super().__init__(f"cost-estimate job(s) {', '.join(job_ids)} still running")
        self.job_ids = job_ids


class ShardSubmitter:
    """Submits (or reattaches) every shard of one run; safe to call again."""

    def __init__(
        self,
        client: SutroClient,
        area: StagingArea,
        ledger: Ledger,
        identity: RunIdentity,
        options: EnrichmentOptions,
        holder: str | None = None,
    ) -> None:
        self.holder = holder or new_holder()
        self.client = client
        self.area = area
        self.ledger = ledger
        self.identity = identity
        self.options = options
        self._lock = threading.Lock()

    def _mark(self, record: LedgerRecord, index: int, state: Any, **changes: Any) -> None:
        with self._lock:
            self.ledger.mark(record, index, state, **changes)

    def update(self, record: LedgerRecord, change: Callable[[LedgerRecord], None]) -> None:
        """:meth:`Ledger.update`, one write at a time for the shards' threads."""
        with self._lock:
            self.ledger.update(record, change)

    def _request(self, record: LedgerRecord, shard: ShardRecord, *, cost_estimate: bool = False, name: str | None = None) -> dict[str, Any]:
        description = self.options.description or self.identity.describe()
        return dict(
            model=self.options.function,
            inputs=self.area.sign(self.area.shard_path(self.identity, shard.index, record.stage_id)),
            id_column_name=ROW_ID,
            job_priority=self.options.job_priority,
            sampling_params=self.options.sampling_params,
            random_seed_per_input=self.options.random_seed_per_input,
            truncate_rows=self.options.truncate_rows,
            name=name or shard.job_name,
            description=description[:512],
            cost_estimate=cost_estimate,
        )

    # -- cost guard
    def check_cost(self, record: LedgerRecord, *, estimate: bool = False, wait: bool = True) -> float | None:
        """Run cost-estimate jobs (free) once per run; refuse above ``max_cost_usd``.

        ``estimate`` runs them even without a limit (an estimate-only run, which is
        never refused). ``wait=False`` reads the estimate jobs' statuses once and
        raises :class:`EstimatePending` while they run (the Airflow operator then
        defers on them and calls again: the jobs are in the ledger, none is created
        twice)."""
        limit = self.options.max_cost_usd
        if limit is None and not estimate:
            return record.cost_estimate_usd
        if record.cost_estimate_usd is None:
            for shard in record.shards:
                if shard.estimate_job_id is None:
                    job_id = self._create(record, shard, cost_estimate=True, name=shard.job_name[:-4] + "est")
                    self._mark(record, shard.index, shard.state, estimate_job_id=job_id)
            ids = [s.estimate_job_id for s in record.shards if s.estimate_job_id]
            if wait:
                waited = wait_for_jobs(self.client, ids, poll_interval=min(1.0, self.options.poll_interval))
            else:
                waited = wait_for_jobs(self.client, ids, deadline=0)  # one status read
                if waited.outcome == "timeout":
                    raise EstimatePending(ids)
            if waited.outcome != "success":
                raise SutroCostLimitError(f"cost estimate did not finish: {waited.message}")
            total = sum(self.client.get_job(j).cost_estimate or 0.0 for j in ids)
            self.update(record, lambda fresh: setattr(fresh, "cost_estimate_usd", total))
        estimate_usd = record.cost_estimate_usd
        assert estimate_usd is not None  # just recorded
        if limit is None or estimate:
            log.info("cost estimate %s USD", usd(estimate_usd))
            return estimate_usd
        log.info("cost estimate %s USD (limit %s USD)", usd(estimate_usd, distinct_from=limit),
                 usd(limit, distinct_from=estimate_usd))
        if estimate_usd > limit:
            self.update(record, lambda fresh: setattr(fresh, "phase", "refused"))
            raise SutroCostLimitError(
                f"estimated cost {usd(estimate_usd, distinct_from=limit)} USD is above "
                f"max_cost_usd={usd(limit, distinct_from=estimate_usd)}; nothing was submitted"
            )
        return estimate_usd

    # -- submission
    def submit_all(self, record: LedgerRecord) -> None:
        pending = [s.index for s in record.shards if s.state != "completed"]
        with ThreadPoolExecutor(max_workers=self.options.max_concurrent_jobs) as pool:
            for future in [pool.submit(self.ensure_submitted, record, index) for index in pending]:
                future.result()
        if record.phase != "submitted":  # e.g. every shard reattached: nothing was written yet
            self.update(record, lambda fresh: setattr(fresh, "phase", "submitted"))

    def ensure_submitted(self, record: LedgerRecord, index: int) -> str:
        """The shard's job id: reattached, found by name, or created under this
        attempt's claim (see :mod:`sutro_providers.submission.claims`)."""
        while True:
            shard = record.shards[index]
            if shard.job_id:
                status = self.client.job_status(shard.job_id)
                if status not in (JobStatus.FAILED, JobStatus.CANCELLED):
                    log.info("shard %d: reattaching to job %s (%s)", index, shard.job_id, status.value)
                    return shard.job_id
                log.warning("shard %d: job %s ended %s; submitting it again", index, shard.job_id, status.value)
                self._next_attempt(record, index, after=shard.job_id)
                continue
            if held_by_other(shard, self.holder):
                self._wait_for_holder(record, index)
                continue
            if shard.state == "intent":  # an earlier attempt's claim lapsed: its job may exist
                found = self._find(shard.job_name)
                if found is not None and found.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
                    log.info("shard %d: found job %s from an earlier attempt by its name", index, found.job_id)
                    self._mark(record, index, "submitted", job_id=found.job_id, holder=None, claimed_until=None)
                    return found.job_id
                if found is not None:
                    self._next_attempt(record, index, after=None)
                    continue
            if not self._claim(record, index):
                continue
            return self._create_claimed(record, index)

    def _claim(self, record: LedgerRecord, index: int) -> bool:
        """Record ``intent`` with this attempt as holder; False when another attempt
        claimed the shard (or gave it a job) first."""
        lost = False

        def change(fresh: LedgerRecord) -> None:
            nonlocal lost
            shard = fresh.shards[index]
            lost = bool(shard.job_id) or held_by_other(shard, self.holder)
            if not lost:
                shard.state, shard.holder = "intent", self.holder
                shard.claimed_until = time.time() + self.options.claim_lease_seconds
        self.update(record, change)
        return not lost

    def _create_claimed(self, record: LedgerRecord, index: int) -> str:
        try:
            job_id = self._create(record, record.shards[index])
        except SutroValidationError:
            self._mark(record, index, "planned", holder=None, claimed_until=None)  # refused outright: no job exists
            raise
        except BaseException:
            self._release(record, index)
            raise
        self._mark(record, index, "submitted", job_id=job_id, holder=None, claimed_until=None)
        log.info("shard %d: submitted job %s (%d rows)", index, job_id, record.shards[index].rows)
        return job_id

    def _release(self, record: LedgerRecord, index: int) -> None:
        """After a failed create the job may exist: keep ``intent`` (the next attempt
        reconciles by name) but let the next attempt in at once. Best effort."""
        try:
            self._mark(record, index, "intent", holder=None, claimed_until=None)
        except Exception as exc:  # the original error matters more
            log.warning("shard %d: could not release the claim (%s); it lapses with its lease", index, exc)

    def _wait_for_holder(self, record: LedgerRecord, index: int) -> None:
        shard = record.shards[index]
        if self.options.on_concurrent_attempt == "fail":
            raise SutroConcurrentAttemptError(
                f"another attempt of run {self.identity.describe()} is creating job {shard.job_name} "
                f"since {shard.updated_at}, holder {shard.holder}; its claim lapses in "
                f"{max(0.0, (shard.claimed_until or 0) - time.time()):.0f} s"
            )
        log.info("shard %d: another attempt (%s) is creating its job; waiting for its job id", index, shard.holder)
        while held_by_other(record.shards[index], self.holder):
            time.sleep(CLAIM_POLL)
            with self._lock:
                self.ledger.refresh(record)

    def _next_attempt(self, record: LedgerRecord, index: int, *, after: str | None) -> None:
        def change(fresh: LedgerRecord) -> None:
            shard = fresh.shards[index]
            if shard.job_id != after:  # another attempt moved on already
                return
            attempt = shard.attempt + 1
            shard.state, shard.attempt, shard.job_id = "planned", attempt, None
            shard.job_name = self.identity.job_name(index, attempt)
        self.update(record, change)

    def _create(self, record: LedgerRecord, shard: ShardRecord, **kw: Any) -> str:
        request = self._request(record, shard, **kw)
        try:
            return self.client.create_job(**request)
        except SutroSubmissionOutcomeUnknownError as exc:
            log.warning("submission of %s: outcome unknown (%s); reconciling by name", request["name"], exc.status_code)
            found = self._reconcile(request["name"])
            if found is None:
                raise
            return found.job_id

    def _reconcile(self, name: str) -> JobRecord | None:
        """The job named ``name``, looked up ``RECONCILE_TRIES`` times ``RECONCILE_PAUSE``
        seconds apart (a job created just before a 524 may take a moment to be listed);
        None if it never shows. A failing lookup raises (its reads retry on their own)."""
        retrying = Retrying(
            stop=stop_after_attempt(RECONCILE_TRIES),
            wait=wait_fixed(RECONCILE_PAUSE),
            retry=retry_if_result(lambda job: job is None),
            retry_error_callback=lambda _: None,
        )
        found: JobRecord | None = retrying(self._find, name)
        return found

    def _find(self, name: str) -> JobRecord | None:
        jobs = self.client.find_jobs_by_name(name)
        return jobs[0] if jobs else None  # newest first
