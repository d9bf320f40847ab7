"""The trigger that waits for Sutro jobs on the triggerer.

It only polls (``GET jobs/{id}`` through :func:`sutro_providers.waiting.await_jobs`,
with an async client): no blocking call, no download. Results are collected on
the worker by the operator's ``execute_complete``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider.hooks.sutro import SutroHook
from sutro_providers.errors import SutroError
from sutro_providers.waiting import await_jobs

EVENT_STATUSES = ("success", "failed", "cancelled", "timeout", "error")


class SutroJobTrigger(BaseTrigger):
    """Wait until Sutro jobs finish, fail, are cancelled, or a deadline passes.

    Yields exactly one :class:`TriggerEvent` whose payload is plain JSON::

        {"status": "success" | "failed" | "cancelled" | "timeout" | "error",
         "job_ids": [...], "message": "...", "statuses": {job_id: "SUCCEEDED", ...}}

    The deadline is absolute (epoch seconds), so a trigger re-created after a
    triggerer restart keeps the original timeout. The trigger itself reports
    ``timeout`` (instead of relying on ``defer(timeout=...)``) because Airflow's
    deferral timeout fails the task without calling ``execute_complete``, which
    would leave the Sutro job running; on ``timeout`` the operator cancels it.

    Transient poll errors (5xx, 524, 429, dropped connections) are retried by the
    client, and up to ``max_consecutive_errors`` failed polls in a row are
    tolerated; after that the event is ``error`` and the job is left running, so
    that a retry of the task reattaches to it instead of paying for a new job.

    ``on_kill`` (Airflow 3.3+: runs when a user marks the deferred task failed or
    success, or clears it) cancels the jobs. ``cleanup`` never cancels: it runs on
    every triggerer restart and redistribution.

    :param job_ids: the Sutro job ids to wait for (all must succeed).
    :param sutro_conn_id: the Airflow connection of type ``sutro``.
    :param deadline: epoch seconds after which the trigger yields ``timeout``; ``None`` waits forever.
    :param poll_interval: first poll interval in seconds (grows 1.5x per poll).
    :param max_poll_interval: upper bound of the poll interval.
    :param max_consecutive_errors: failed polls in a row tolerated before ``error``.
    """

    def __init__(
        self,
        job_ids: list[str],
        sutro_conn_id: str = SutroHook.default_conn_name,
        deadline: float | None = None,
        poll_interval: float = 10.0,
        max_poll_interval: float = 60.0,
        max_consecutive_errors: int = 5,
    ) -> None:
        super().__init__()
        self.job_ids = [str(j) for j in job_ids]
        self.sutro_conn_id = sutro_conn_id
        self.deadline = None if deadline is None else float(deadline)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max(max_poll_interval, poll_interval))
        self.max_consecutive_errors = int(max_consecutive_errors)

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
            },
        )

    def _event(self, status: str, message: str, statuses: dict[str, str] | None = None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "job_ids": list(self.job_ids),
                "message": message,
                "statuses": statuses or {j: "UNKNOWN" for j in self.job_ids},
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            client = await SutroHook(self.sutro_conn_id).aget_client()
        except Exception as exc:  # bad connection: report, never crash the triggerer
            yield self._event("error", f"cannot build a Sutro client: {exc}")
            return
        try:
            result = await await_jobs(
                client,
                self.job_ids,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                deadline=self.deadline,
                max_consecutive_errors=self.max_consecutive_errors,
                on_progress=lambda p: self.log.debug("Sutro job %s is %s", p.job_id, p.status.value),
            )
        except SutroError as exc:  # not transient (auth, 404): the wait cannot go on
            yield self._event("error", f"{type(exc).__name__}: {exc}")
            return
        finally:
            await client.aclose()
        self.log.info("Sutro job(s) %s: %s (%s)", ", ".join(self.job_ids), result.outcome, result.message)
        yield self._event(result.outcome, result.message, {j: s.value for j, s in result.statuses.items()})

    async def on_kill(self) -> None:
        """Cancel the jobs when a user kills the deferred task (Airflow 3.3+)."""
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
