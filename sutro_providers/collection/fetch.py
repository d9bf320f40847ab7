"""Fetching the results of a run: the job record of every shard (all must have
SUCCEEDED) and each shard's results file, downloaded over HTTP.

Reads only: nothing here is paid or changes a job, so every call may be retried
(the client retries transient errors itself; the download resumes with Range).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.client.sutro import SutroClient
from sutro_providers.errors import (
    SutroJobCancelledError,
    SutroJobError,
    SutroJobFailedError,
    SutroNotFoundError,
    SutroServerError,
)
from sutro_providers.parquet_io import write_parquet
from sutro_providers.submission.ledger import LedgerRecord

log = logging.getLogger("sutro_providers.collection.fetch")


def finished_jobs(client: SutroClient, record: LedgerRecord) -> list[JobRecord]:
    """The job record of every shard; raises unless all SUCCEEDED."""
    jobs = []
    for shard in record.shards:
        if not shard.job_id:
            raise SutroJobError(f"shard {shard.index} of this run was never submitted")
        job = client.get_job(shard.job_id)
        if job.status is JobStatus.FAILED:
            why = job.failure_reason.message if job.failure_reason else "no reason given"
            raise SutroJobFailedError(f"Sutro job {job.job_id} FAILED: {why}", job_id=job.job_id, detail=why)
        if job.status in (JobStatus.CANCELLED, JobStatus.CANCELLING):
            raise SutroJobCancelledError(f"Sutro job {job.job_id} was cancelled", job_id=job.job_id)
        if job.status is not JobStatus.SUCCEEDED:
            raise SutroJobError(f"Sutro job {job.job_id} has not finished ({job.status.value})", job_id=job.job_id)
        jobs.append(job)
    return jobs


def download_shard(client: SutroClient, job_id: str, dest: Path) -> Path:
    """The results Parquet of one job, downloaded to ``dest``; falls back to the
    ``job-results`` JSON columns (written to ``dest`` as Parquet) when the deployment
    has no results artifact."""
    try:
        return client.download_results(job_id, dest)
    except (SutroNotFoundError, SutroServerError) as exc:
        log.warning("results-url of %s unavailable (%s); falling back to job-results", job_id, exc.status_code)
    table = pa.table(client.job_results(job_id).results)
    write_parquet(table.to_batches(), table.schema, str(dest))
    return dest


__all__ = ["download_shard", "finished_jobs"]
