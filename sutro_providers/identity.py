"""Run identity: what makes two attempts "the same run".

An orchestrator names a run by the things that do not change when it retries:
Airflow by ``dag_id``, ``task_id``, ``run_id`` and ``map_index`` (never the try
number); Dagster by asset key, partition key and the root run id (the same across
re-executions). The pipeline derives from it, deterministically:

* the staging prefix on object storage (a retry overwrites, nothing piles up);
* the ledger's location;
* each shard's Sutro job name (≤ 45 characters), used to find a job whose
  submission outcome was lost (see :mod:`sutro_providers.submission.ledger`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from sutro_providers.client.models import JOB_NAME_MAX

JOB_NAME_PREFIX = "sp"
_PACKAGE_JOB_NAME = re.compile(rf"^{JOB_NAME_PREFIX}-[0-9a-f]{{20}}-s\d{{4}}-(a\d{{3}}|est)$")


def is_package_job_name(name: str | None) -> bool:
    """Whether ``name`` is one this package gives its jobs (:meth:`RunIdentity.job_name`,
    and the ``...-est`` of a cost-estimate job): jobs an Airflow task or a Dagster asset
    of this package submitted."""
    return bool(name) and _PACKAGE_JOB_NAME.match(name or "") is not None


@dataclass(frozen=True)
class RunIdentity:
    """Stable name of one logical enrichment run. ``parts`` are shown to humans;
    ``key`` (sha256 of the canonical parts) is what storage and job names use."""

    orchestrator: str
    parts: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def of(cls, orchestrator: str, **parts: object) -> RunIdentity:
        return cls(orchestrator, tuple((k, "" if v is None else str(v)) for k, v in parts.items()))

    @classmethod
    def airflow(cls, dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> RunIdentity:
        return cls.of("airflow", dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index)

    @classmethod
    def dagster(cls, asset_key: str, partition_key: str | None, root_run_id: str) -> RunIdentity:
        return cls.of("dagster", asset_key=asset_key, partition_key=partition_key, root_run_id=root_run_id)

    @property
    def key(self) -> str:
        canonical = json.dumps([self.orchestrator, list(self.parts)], separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def short(self) -> str:
        return self.key[:20]

    def job_name(self, shard: int, attempt: int = 0) -> str:
        """Deterministic job name of one shard's ``attempt``-th submission, e.g.
        ``sp-3f2a...-s0003-a000`` (≤ 45 chars). The attempt only grows when an earlier
        job of the shard failed or was cancelled, or the input changed."""
        name = f"{JOB_NAME_PREFIX}-{self.short}-s{shard:04d}-a{attempt:03d}"
        assert len(name) <= JOB_NAME_MAX
        return name

    def describe(self) -> str:
        """Human-readable, for job descriptions and logs (no secrets in it)."""
        return f"{self.orchestrator}: " + ", ".join(f"{k}={v}" for k, v in self.parts)
