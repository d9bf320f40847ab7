"""Durable job store: one SQLite ``jobs`` table plus Parquet files per job.

Layout under the data dir::

    jobs.sqlite3                      # jobs(seq, job_id, status, name, record, config)
    jobs/<job_id>/inputs.parquet      # normalised inputs, written at submit time
    jobs/<job_id>/results.parquet     # every result column, written on success
    jobs/<job_id>/artifacts/*.parquet # results-url downloads, one per flag combination

``record`` is the public job object of ``GET /v1/jobs/{id}``; ``config`` is
the private run plan (Function name, id column, injected faults, ...).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
ACTIVE = ("QUEUED", "STARTING", "RUNNING")

RECORD_KEYS = (
    "job_id", "status", "model", "system_prompt", "job_priority", "datetime_created",
    "datetime_started", "datetime_completed", "json_schema", "sampling_params", "name",
    "description", "dataset_id", "input_tokens", "output_tokens", "job_cost", "num_rows",
    "failure_reason", "cost_estimate", "run_type",
)  # fmt: skip


def now_iso() -> str:
    """UTC now as ISO-8601 with microseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_job_id() -> str:
    """``job-<uuid4>``."""
    return f"job-{uuid.uuid4()}"


@dataclass
class StoredJob:
    """One row of the jobs table."""

    seq: int
    record: dict[str, Any]
    config: dict[str, Any]

    @property
    def job_id(self) -> str:
        return str(self.record["job_id"])

    @property
    def status(self) -> str:
        return str(self.record["status"])


class JobStore:
    """Thread-safe access to the jobs table and the per-job files."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.data_dir / "jobs.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "job_id TEXT UNIQUE NOT NULL, status TEXT NOT NULL, name TEXT, "
            "record TEXT NOT NULL, config TEXT NOT NULL)"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def insert(self, record: dict[str, Any], config: dict[str, Any]) -> None:
        full = {k: record.get(k) for k in RECORD_KEYS}
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (job_id, status, name, record, config) VALUES (?, ?, ?, ?, ?)",
                (full["job_id"], full["status"], full["name"], json.dumps(full), json.dumps(config)),
            )

    def get(self, job_id: str) -> StoredJob | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, record, config FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return None if row is None else StoredJob(row[0], json.loads(row[1]), json.loads(row[2]))

    def update(self, job_id: str, only_if: set[str] | None = None, **changes: Any) -> StoredJob | None:
        """Merge ``changes`` into the record; skip when the status is not in ``only_if``.

        Returns the updated job, or ``None`` when it no longer exists or was skipped.
        """
        with self._lock:
            job = self.get(job_id)
            if job is None or (only_if is not None and job.status not in only_if):
                return None
            job.record.update(changes)
            self._db.execute(
                "UPDATE jobs SET status = ?, record = ? WHERE job_id = ?",
                (job.record["status"], json.dumps(job.record), job_id),
            )
            return job

    def update_config(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            job = self.get(job_id)
            if job is not None:
                job.config.update(changes)
                self._db.execute(
                    "UPDATE jobs SET config = ? WHERE job_id = ?", (json.dumps(job.config), job_id)
                )

    def page(self, limit: int | None, before_seq: int | None) -> list[StoredJob]:
        """Jobs newest first, optionally only those older than ``before_seq``."""
        sql = "SELECT seq, record, config FROM jobs"
        args: list[Any] = []
        if before_seq is not None:
            sql += " WHERE seq < ?"
            args.append(before_seq)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [StoredJob(r[0], json.loads(r[1]), json.loads(r[2])) for r in rows]

    def ids_with_status(self, statuses: tuple[str, ...]) -> list[str]:
        marks = ",".join("?" * len(statuses))
        with self._lock:
            rows = self._db.execute(
                f"SELECT job_id FROM jobs WHERE status IN ({marks}) ORDER BY seq", statuses
            ).fetchall()
        return [r[0] for r in rows]

    def summary(self) -> dict[str, Any]:
        """``{"total", "by_status", "by_name"}`` over all jobs."""
        with self._lock:
            rows = self._db.execute("SELECT status, name FROM jobs").fetchall()
        return {
            "total": len(rows),
            "by_status": dict(Counter(r[0] for r in rows)),
            "by_name": dict(Counter(r[1] for r in rows if r[1] is not None)),
        }

    def delete_all(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs")
            shutil.rmtree(self.jobs_dir, ignore_errors=True)
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
