"""The trigger that waits for Sutro jobs on the triggerer.

It only polls, through the shared poller of :mod:`sutro_providers.waiting.job_watch` (one
client and one polling task per event loop and connection, batching ``list-jobs``
pages): no blocking call, no download. Results are collected on the worker by the
operator's ``execute_complete``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import importlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider.exceptions import SutroTriggerEventError
from airflow_provider.hooks.sutro import SutroHook
from sutro_providers.client.config import SutroConfig
from sutro_providers.client.models import JobStatus
from sutro_providers.errors import SutroError
from sutro_providers.options import (
    MAX_CONSECUTIVE_POLL_ERRORS,
    MAX_POLL_INTERVAL,
    POLL_INTERVAL,
    PROGRESS_INTERVAL,
)
from sutro_providers.waiting.job_watch import in_chunks, watch_jobs
from sutro_providers.waiting.outcome import JobOutcome
from sutro_providers.waiting.polling import WaitResult
from sutro_providers.waiting.progress_report import ProgressReporter

# Airflow's async connection lookup imports these on its first call, i.e. on the
# triggerer's event loop (~80 ms here); a triggerer has usually imported them
# already, and importing them with this module keeps the first trigger's lookup fast.
for _module in ("airflow.sdk.execution_time.supervisor", "asgiref.sync"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module)


def event_payload(outcome: JobOutcome, job_ids: list[str], message: str,
                  statuses: dict[str, JobStatus] | None = None) -> dict[str, Any]:
    """The trigger event's JSON payload (outcome and statuses as their string values)."""
    return {
        "status": str(outcome),
        "job_ids": list(job_ids),
        "message": message,
        "statuses": {j: str(s) for j, s in statuses.items()} if statuses else {j: "UNKNOWN" for j in job_ids},
    }


def parse_event(event: Any) -> WaitResult:
    """The :class:`WaitResult` an event payload stands for; raises
    :class:`~airflow_provider.exceptions.SutroTriggerEventError` on anything else."""
    outcome = JobOutcome.parse(event.get("status")) if isinstance(event, dict) else None
    if outcome is None:
        raise SutroTriggerEventError(f"unexpected Sutro trigger event: {event!r}")
    job_ids = [str(j) for j in event.get("job_ids") or []]
    statuses = event.get("statuses") or {}
    return WaitResult(outcome, {j: JobStatus.parse(statuses.get(j, "UNKNOWN")) for j in job_ids},
                      str(event.get("message") or ""))


class SutroJobTrigger(BaseTrigger):
    """Wait until Sutro jobs finish, fail, are cancelled, or a deadline passes.

    Yields exactly one :class:`TriggerEvent` whose payload is plain JSON (``status``
    is a :class:`~sutro_providers.waiting.outcome.JobOutcome` value; :func:`parse_event`
    reads a payload back into a :class:`~sutro_providers.waiting.polling.WaitResult`)::

        {"status": "success" | "failed" | "cancelled" | "timeout" | "error",
         "job_ids": [...], "message": "...", "statuses": {job_id: "SUCCEEDED", ...}}

    The deadline is absolute (epoch seconds), so a trigger re-created after a
    triggerer restart keeps the original timeout. The trigger itself reports
    ``timeout`` (instead of relying on ``defer(timeout=...)``) because Airflow's
    deferral timeout fails the task without calling ``execute_complete``, which
    would leave the Sutro job running; on ``timeout`` the operator cancels it.

    **Shared polling.** All triggers on one triggerer event loop that use the same
    Sutro connection settings (API URL, API key, timeouts and retry policy: the
    connection's :class:`~sutro_providers.client.config.SutroConfig`) share one
    :class:`~sutro_providers.waiting.job_watch.JobWatch`: one HTTP client and one polling
    task, which reads the statuses of all their jobs with ``list-jobs`` pages of 100
    (``GET jobs/{id}`` for jobs not on those pages, when fewer than 3 jobs are
    due, or for good once the deployment's ``list-jobs`` refuses the call or does
    not paginate). Each trigger keeps its own ``poll_interval`` growth and
    ``max_poll_interval``: it is never polled less often than it asks, but may be
    polled up to half an interval early so that the triggers fall into step and
    share rounds. A transient error of a round counts as one failed poll of each
    trigger in it. The polling task ends when the last trigger on that loop and
    connection ends (event, cancellation, ``on_kill``). Triggers that start
    together also share one in-flight read of the Airflow connection.

    **Garbage collector.** On its first run in a process the trigger calls
    :func:`gc.freeze` once (``freeze_gc = False`` on the class turns this off): the
    objects alive then (the triggerer's imports: Airflow, SQLAlchemy, ...) move to
    the permanent generation, so full collections no longer walk them. With 1,000
    triggers (bench B5) the longest collector pause fell from ~180-200 ms to ~20-30 ms. It
    keeps the garbage present at that moment alive for good (a few MB at most);
    ``gc.unfreeze()`` runs at exit so that the final collection still happens.

    Transient poll errors (5xx, 524, 429, dropped connections) are retried by the
    client, and up to ``max_consecutive_errors`` failed polls in a row are
    tolerated; after that the event is ``error`` and the job is left running, so
    that a retry of the task reattaches to it instead of paying for a new job.

    ``on_kill`` (Airflow 3.3+: runs when a user marks the deferred task failed or
    success, or clears it) cancels the jobs when ``cancel_on_kill`` (the operator's
    choice; a sensor never cancels). ``cleanup`` never cancels: it runs on every
    triggerer restart and redistribution.

    :param job_ids: the Sutro job ids to wait for (all must succeed).
    :param sutro_conn_id: the Airflow connection of type ``sutro``.
    :param deadline: epoch seconds after which the trigger yields ``timeout``; ``None`` waits forever.
    :param poll_interval: first poll interval in seconds (grows 1.5x per poll).
    :param max_poll_interval: upper bound of the poll interval.
    :param max_consecutive_errors: failed polls in a row tolerated before ``error``.
    :param cancel_on_kill: cancel the jobs in :meth:`on_kill`.
    :param progress_interval: seconds between progress lines in the trigger log (and one at
        every status change; see :mod:`sutro_providers.waiting.progress_report`).
    :param progress_stream: also read the jobs' progress streams (rows done) with a client
        of this trigger's own: one long-lived connection per job (at most 8). Off by
        default here (thousands of triggers on one triggerer); the operator passes its own
        ``progress_stream`` (default on).
    """

    freeze_gc: ClassVar[bool] = True

    def __init__(
        self,
        job_ids: list[str],
        sutro_conn_id: str = SutroHook.default_conn_name,
        deadline: float | None = None,
        poll_interval: float = POLL_INTERVAL,
        max_poll_interval: float = MAX_POLL_INTERVAL,
        max_consecutive_errors: int = MAX_CONSECUTIVE_POLL_ERRORS,
        cancel_on_kill: bool = True,
        progress_interval: float = PROGRESS_INTERVAL,
        progress_stream: bool = False,
    ) -> None:
        super().__init__()
        self.job_ids = [str(j) for j in job_ids]
        self.sutro_conn_id = sutro_conn_id
        self.deadline = None if deadline is None else float(deadline)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max(max_poll_interval, poll_interval))
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.progress_interval = float(progress_interval)
        self.progress_stream = bool(progress_stream)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_ids": list(self.job_ids),
                "sutro_conn_id": self.sutro_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "max_consecutive_errors": self.max_consecutive_errors,
                "cancel_on_kill": self.cancel_on_kill,
                "progress_interval": self.progress_interval,
                "progress_stream": self.progress_stream,
            },
        )

    def _event(self, outcome: JobOutcome, message: str, statuses: dict[str, JobStatus] | None = None) -> TriggerEvent:
        return TriggerEvent(event_payload(outcome, self.job_ids, message, statuses))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        _freeze_gc_once(self.freeze_gc)
        try:
            config = await _connection_config(self.sutro_conn_id)
        except Exception as exc:  # bad connection: report, never crash the triggerer
            yield self._event(JobOutcome.ERROR, f"cannot read the Sutro connection {self.sutro_conn_id!r}: {exc}")
            return
        try:
            # the registration with the shared poller ends before the event is yielded
            result = await watch_jobs(
                config,
                self.job_ids,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                deadline=self.deadline,
                max_consecutive_errors=self.max_consecutive_errors,
                progress=ProgressReporter(self.job_ids, self.log.info, interval=self.progress_interval),
                progress_stream=self.progress_stream,
            )
        except SutroError as exc:  # not transient (auth, 404): the wait cannot go on
            yield self._event(JobOutcome.ERROR, f"{type(exc).__name__}: {exc}")
            return
        self.log.info("Sutro job(s) %s: %s (%s)", ", ".join(self.job_ids), result.outcome, result.message)
        yield self._event(result.outcome, result.message, result.statuses)

    async def on_kill(self) -> None:
        """Cancel the jobs when a user kills the deferred task (Airflow 3.3+) and
        ``cancel_on_kill`` is set."""
        if not self.cancel_on_kill:
            self.log.info("Sutro job(s) %s left running (cancel_on_kill is off)", ", ".join(self.job_ids))
            return
        try:
            client = await SutroHook(self.sutro_conn_id).aget_client()
        except Exception as exc:
            self.log.warning("cannot cancel Sutro job(s) %s: %s", self.job_ids, exc)
            return
        try:
            for job_id in self.job_ids:
                try:
                    await client.cancel_job(job_id)
                    self.log.info("Cancelled Sutro job %s", job_id)
                except SutroError as exc:
                    self.log.warning("Cancelling Sutro job %s failed: %s", job_id, exc)
        finally:
            await client.aclose()


_gc_frozen = False


def _freeze_gc_once(enabled: bool) -> None:
    """``gc.freeze()`` once per process (O(1): no collection runs, nothing is walked).

    Unfrozen again at exit, so that the final collection still finalises those
    objects (extensions such as duckdb's nanobind report "leaked" objects otherwise)."""
    global _gc_frozen
    if enabled and not _gc_frozen:
        _gc_frozen = True
        gc.freeze()
        atexit.register(gc.unfreeze)


_lookups: dict[tuple[asyncio.AbstractEventLoop, str], list[asyncio.Future[SutroConfig]]] = {}
_lookup_tasks: set[asyncio.Task[None]] = set()
_WAKE_CHUNK = 100  # triggers woken per loop iteration when a shared lookup ends


async def _connection_config(conn_id: str) -> SutroConfig:
    """The connection's :class:`SutroConfig`, read without blocking the loop.

    Triggers that start together on one loop share one lookup in flight (Airflow
    runs the environment/metastore backends' lookups one at a time in one thread
    through asgiref, ~1 ms each, so 1,000 triggers starting at once would queue
    1,000 of them); they are woken 100 per loop iteration, so that their next
    steps do not stall the loop together. Nothing is cached: a trigger started
    later reads the connection again (a rotated key is picked up)."""
    loop = asyncio.get_running_loop()
    key = (loop, conn_id)
    mine: asyncio.Future[SutroConfig] = loop.create_future()
    waiting = _lookups.get(key)
    if waiting is None:
        waiting = _lookups[key] = []
        task = loop.create_task(_look_up(key, conn_id))
        _lookup_tasks.add(task)
        task.add_done_callback(_lookup_tasks.discard)
    waiting.append(mine)
    return await mine  # a cancelled trigger cancels only its own future


async def _look_up(key: tuple[asyncio.AbstractEventLoop, str], conn_id: str) -> None:
    outcome: SutroConfig | Exception
    try:
        outcome = await SutroHook(sutro_conn_id=conn_id).aget_config()
    except Exception as exc:  # handed to every trigger waiting for it
        outcome = exc
    except BaseException:  # cancelled (the loop is shutting down): so are the waiters
        for future in _lookups.pop(key, []):
            future.cancel()
        raise

    def settle(future: asyncio.Future[SutroConfig]) -> None:
        if future.done():
            return
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    await in_chunks(_lookups.pop(key, []), settle, _WAKE_CHUNK)
