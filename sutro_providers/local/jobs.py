"""The job runner: a thread pool that moves jobs through their states.

``QUEUED → STARTING → RUNNING → SUCCEEDED``; a cancel moves a running job to
``CANCELLING`` and the worker, which checks between chunks and during every
wait, then records ``CANCELLED``. Errors and injected ``fail_job`` faults end
in ``FAILED`` with ``failure_reason {"message", "additional_context"}``.

On start, jobs left QUEUED/STARTING/RUNNING by a previous process are run
again from their ``inputs.parquet``; CANCELLING ones become CANCELLED. On
shutdown the workers stop at the next chunk and leave the job as it was, so
the next start picks it up.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sutro_providers.function_spec import FunctionSpec
from sutro_providers.local.engine import EngineRequest, InferenceEngine
from sutro_providers.local.faults import FaultRegistry
from sutro_providers.local.inputs import ID_COLUMN, PROMPT_COLUMN, JobPlan
from sutro_providers.local.models import MODEL_PRICES, cost_usd
from sutro_providers.local.render import build_prompts
from sutro_providers.local.settings import ServerSettings
from sutro_providers.local.store import ACTIVE, TERMINAL, JobStore, StoredJob, now_iso

log = logging.getLogger("sutro_providers.local")


@dataclass
class Progress:
    """Live counters of a running job (not persisted)."""

    rows_done: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    started: float = field(default_factory=time.monotonic)

    def tokens_per_second(self) -> float:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return round((self.input_tokens + self.output_tokens) / elapsed, 2)


class _Interrupted(Exception):
    pass


class RowTooLong(Exception):
    """A rendered row is longer than the context window (the job fails)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row


class JobManager:
    """Owns the worker pool, cancel/release signals and live progress."""

    def __init__(
        self,
        settings: ServerSettings,
        store: JobStore,
        functions: dict[str, FunctionSpec],
        engine: InferenceEngine,
        faults: FaultRegistry,
    ) -> None:
        self.settings = settings
        self.store = store
        self.functions = functions
        self.engine = engine
        self.faults = faults
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._cancel: dict[str, threading.Event] = {}
        self._release: dict[str, threading.Event] = {}
        self._progress: dict[str, Progress] = {}
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="sutro-job")

    # ----- lifecycle -------------------------------------------------------
    def start(self) -> None:
        """Recover jobs a previous process left unfinished and queue them."""
        for job_id in self.store.ids_with_status(("CANCELLING",)):
            self.store.update(job_id, status="CANCELLED", datetime_completed=now_iso())
        for job_id in self.store.ids_with_status(ACTIVE):
            self.store.update(job_id, status="QUEUED")
            log.info("re-queueing %s after restart", job_id)
            self._pool.submit(self._run, job_id)

    def shutdown(self) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ----- commands --------------------------------------------------------
    def submit(self, plan: JobPlan) -> str:
        job_id = str(plan.record["job_id"])
        if (rule := self.faults.take(("fail_job",), "batch-inference")) is not None:
            plan.config["fail"] = rule.message or "Injected failure: the inference worker crashed"
        if self.faults.take(("hold_job",), "batch-inference") is not None:
            plan.config["hold"] = True
        job_dir = self.store.job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(plan.table, job_dir / "inputs.parquet")
        self.store.insert(plan.record, plan.config)
        self._pool.submit(self._run, job_id)
        return job_id

    def cancel(self, job: StoredJob) -> tuple[bool, str]:
        job_id = job.job_id
        if job.status in TERMINAL:
            return False, f"Job {job_id} is already {job.status} and cannot be cancelled"
        if job.status == "CANCELLING":
            return True, f"Job {job_id} is already being cancelled"
        if self.store.update(job_id, {"QUEUED"}, status="CANCELLED", datetime_completed=now_iso()):
            return True, f"Job {job_id} has been successfully cancelled"
        if self.store.update(job_id, {"STARTING", "RUNNING"}, status="CANCELLING") is None:
            latest = self.store.get(job_id)
            return False, f"Job {job_id} is {latest.status if latest else 'gone'} and cannot be cancelled"
        self._event(self._cancel, job_id).set()
        return True, f"Job {job_id} has been successfully cancelled"

    def release(self, job_id: str) -> bool:
        if self.store.get(job_id) is None:
            return False
        self.store.update_config(job_id, hold=False)
        self._event(self._release, job_id).set()
        return True

    def reset(self) -> None:
        """Drop every job (running workers notice and stop)."""
        with self._lock:
            for event in self._cancel.values():
                event.set()
            for event in self._release.values():
                event.set()
        self.store.delete_all()
        with self._lock:
            self._progress.clear()

    def progress(self, job_id: str) -> Progress | None:
        with self._lock:
            return self._progress.get(job_id)

    # ----- worker ------------------------------------------------------------
    def _event(self, table: dict[str, threading.Event], job_id: str) -> threading.Event:
        with self._lock:
            return table.setdefault(job_id, threading.Event())

    def _wait(self, seconds: float, cancel: threading.Event) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if cancel.is_set() or self.stopping.is_set():
                raise _Interrupted
            left = deadline - time.monotonic()
            if left <= 0:
                return
            cancel.wait(min(left, 0.05))

    def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.status != "QUEUED":
            return
        cancel = self._event(self._cancel, job_id)
        try:
            self._execute(job, cancel)
        except _Interrupted:
            if cancel.is_set():
                self.store.update(job_id, {"CANCELLING"}, status="CANCELLED", datetime_completed=now_iso())
        except Exception as exc:  # any crash is a FAILED job, never a dead worker
            log.exception("job %s failed", job_id)
            self._fail(job_id, f"{type(exc).__name__}: {exc}", {"error_type": type(exc).__name__})
        finally:
            with self._lock:
                self._progress.pop(job_id, None)
                self._cancel.pop(job_id, None)
                self._release.pop(job_id, None)

    def _fail(self, job_id: str, message: str, context: Any) -> None:
        self.store.update(
            job_id, {"QUEUED", "STARTING", "RUNNING"}, status="FAILED", datetime_completed=now_iso(),
            failure_reason={"message": message, "additional_context": context},
        )  # fmt: skip

    def _execute(self, job: StoredJob, cancel: threading.Event) -> None:
        job_id, config = job.job_id, job.config
        estimate = bool(config.get("cost_estimate"))
        if not self.store.update(job_id, {"QUEUED"}, status="STARTING", datetime_started=now_iso()):
            return
        self._wait(0.0 if estimate else self.settings.startup_seconds, cancel)
        if not self.store.update(job_id, {"STARTING"}, status="RUNNING"):
            return
        began = time.monotonic()
        progress = Progress()
        with self._lock:
            self._progress[job_id] = progress
        if config.get("hold"):
            release = self._event(self._release, job_id)
            while not release.is_set():
                self._wait(0.05, cancel)
        spec = self.functions.get(config["function"]) if config.get("function") else None
        if config.get("function") and spec is None:
            self._fail(job_id, f"Function {config['function']!r} is no longer published", None)
            return
        request = EngineRequest(
            model=str(job.record["model"]), function=spec, json_schema=job.record.get("json_schema"),
            system_prompt=job.record.get("system_prompt"), sampling_params=job.record.get("sampling_params") or {},
            random_seed_per_input=bool(config.get("random_seed_per_input")),
        )  # fmt: skip
        table = pq.read_table(self.store.job_dir(job_id) / "inputs.parquet")
        pieces: list[pa.RecordBatch] = []
        for offset in range(0, table.num_rows, self.settings.chunk_rows):
            self._wait(0.0, cancel)
            chunk = table.slice(offset, self.settings.chunk_rows)
            try:
                pieces.append(self._infer_chunk(request, spec, chunk, config.get("id_column"),
                                                truncate=bool(config.get("truncate_rows")), first_row=offset))
            except RowTooLong as exc:
                self._fail(job_id, str(exc), {"row": exc.row, "context_tokens": self.settings.context_tokens})
                return
            progress.rows_done += chunk.num_rows
            progress.input_tokens += int(pc.sum(pieces[-1]["__in_tokens"]).as_py() or 0)
            progress.output_tokens += int(pc.sum(pieces[-1]["__out_tokens"]).as_py() or 0)
        if config.get("fail"):
            self._wait(max(0.0, self.settings.min_run_seconds - (time.monotonic() - began)), cancel)
            self._fail(job_id, str(config["fail"]), {"injected": True, "rows_processed": progress.rows_done})
            return
        if not estimate:
            self._wait(max(0.0, self.settings.min_run_seconds - (time.monotonic() - began)), cancel)
        prices = (
            (spec.price_per_million_input_tokens, spec.price_per_million_output_tokens)
            if spec is not None
            else MODEL_PRICES.get(request.model, (0.1, 0.4))
        )
        cost = cost_usd(progress.input_tokens, progress.output_tokens, prices)
        if not estimate:
            results = pa.Table.from_batches(pieces).drop_columns(["__in_tokens", "__out_tokens"])
            self._write_results(job_id, results)
        self.store.update(
            job_id, {"RUNNING"}, status="SUCCEEDED", datetime_completed=now_iso(),
            input_tokens=progress.input_tokens, output_tokens=progress.output_tokens,
            job_cost=0.0 if estimate else cost, cost_estimate=cost if estimate else None,
        )  # fmt: skip

    def _infer_chunk(
        self, request: EngineRequest, spec: FunctionSpec | None, chunk: pa.Table, id_column: str | None,
        *, truncate: bool = False, first_row: int = 0,
    ) -> pa.RecordBatch:
        if PROMPT_COLUMN in chunk.column_names:
            prompts = chunk[PROMPT_COLUMN].combine_chunks()
        else:
            assert spec is not None
            prompts = build_prompts(spec.input_names, [chunk[n].combine_chunks() for n in spec.input_names])
        prompts = self._fit_context(prompts, truncate, first_row)
        out = self.engine.infer(request, prompts)
        cols: dict[str, pa.Array] = {}
        if id_column:
            cols[id_column] = chunk[ID_COLUMN].combine_chunks()
        cols["inputs"] = prompts
        cols["outputs"] = out.outputs
        cols["cumulative_logprobs"] = out.cumulative_logprobs
        if spec is not None and out.confidence is not None:
            cols["confidence_score"] = out.confidence
        cols["__in_tokens"] = out.input_tokens
        cols["__out_tokens"] = out.output_tokens
        return pa.RecordBatch.from_pydict(cols)

    def _fit_context(self, prompts: pa.Array, truncate: bool, first_row: int) -> pa.Array:
        """The prompts within the context window: cut to fit (``truncate_rows``), or
        :class:`RowTooLong` naming the first row over it."""
        limit = self.settings.context_tokens * 4  # characters (tokens: ceil(chars / 4))
        over = pc.greater(pc.utf8_length(prompts), limit)
        if not pc.any(over).as_py():
            return prompts
        if truncate:
            return pc.utf8_slice_codeunits(prompts, 0, limit)
        row = first_row + int(pc.index(over, True).as_py())
        raise RowTooLong(row, f"row {row} is longer than the model's context window of "
                              f"{self.settings.context_tokens} tokens (set truncate_rows to cut such rows to fit)")

    def _write_results(self, job_id: str, results: pa.Table) -> None:
        job_dir = self.store.job_dir(job_id)
        if not job_dir.exists():  # dropped by an admin reset meanwhile
            return
        tmp = job_dir / "results.parquet.tmp"
        pq.write_table(results, tmp)
        tmp.replace(job_dir / "results.parquet")
