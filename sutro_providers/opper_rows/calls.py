"""Calling one Opper function per row: bounded async concurrency, retries, tags,
the run's parent span, and the journal written as calls complete.

Each row is one v2 call (``POST /v2/call`` by name, or
``POST /v2/functions/{id}/call/{revision}`` for a pinned revision) carrying the
few-shot ``examples``, the run's tags plus ``sutro.row`` and ``parent_span_id``
(the run's span, so one trace groups every call of the run, across retries).

Retries use tenacity with the transport's backoff (:func:`sutro_providers.client.transport.retry_arguments`:
full-jitter exponential, never shorter than the server's ``Retry-After``): a 429
always, and with ``retry_server_errors`` also 5xx and dropped connections, up to
``max_row_attempts`` tries per row. A row still failing is journaled with its
reason; with ``on_row_error="fail"`` no new row is started after it (calls in
flight finish and are journaled), so a retry of the run resumes where it stopped.

Workers share one iterator of the rows to call (each row is taken once) and each
has its own HTTP connection (one pool with many requests in flight costs CPU per
request scanning its connections; see bench B6).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception

from sutro_providers import errors
from sutro_providers.client import transport
from sutro_providers.client.config import RetryPolicy
from sutro_providers.opper.client import AsyncOpperClient
from sutro_providers.opper.config import OpperConfig
from sutro_providers.opper.models import RevisionCallResult
from sutro_providers.opper_rows.journal import Entry, ResultsJournal
from sutro_providers.opper_rows.options import TEXT_OUTPUT, OpperOptions

log = logging.getLogger("sutro_providers.opper_rows.calls")

Progress = Callable[[int, int], None]
"""``on_progress(rows_done, rows_to_call)``, called after each journal flush."""


@dataclass
class CallPlan:
    """What every call of a run sends (built once per run)."""

    options: OpperOptions
    model: str
    tags: dict[str, str]
    parent_span_id: str | None
    examples: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, client: AsyncOpperClient, row_id: int, row: dict[str, Any]) -> RevisionCallResult:
        o = self.options
        common: dict[str, Any] = dict(examples=self.examples or None, tags={**self.tags, "sutro.row": str(row_id)},
                                      parent_span_id=self.parent_span_id, timeout=o.call_timeout)
        if o.function_id is not None and o.revision_id is not None:
            return await client.call_revision(o.function_id, o.revision_id, row, **common)
        return await client.call_by_name(o.function, row, instructions=o.instructions, input_schema=o.input_schema,
                                         output_schema=o.output_schema, model=o.model, **common)

    def entry(self, row_id: int, result: RevisionCallResult) -> Entry:
        """The journal entry of an answer: the object of ``json_payload`` (structured)
        or ``{"output": message}``; a structured answer that is not an object is a
        row error."""
        usage, cost = result.usage, result.cost
        billed: dict[str, Any] = dict(model=self.model, input_tokens=usage.input_tokens if usage else None,
                      output_tokens=usage.output_tokens if usage else None,
                      cost_usd=cost.total if cost else None, span_id=result.span_id, cached=result.cached)
        if self.options.structured:
            if not isinstance(result.json_payload, dict):
                kind = type(result.json_payload).__name__
                return Entry(row_id, None, f"the answer's json_payload is {kind}, not an object", **billed)
            return Entry(row_id, json.dumps(result.json_payload), None, **billed)
        value = result.value
        text = value if isinstance(value, str) or value is None else json.dumps(value)
        return Entry(row_id, json.dumps({TEXT_OUTPUT: text}), None, **billed)


@dataclass
class CallStats:
    calls: int = 0
    failed: int = 0
    stopped: bool = False


class RowCaller:
    """Runs :class:`CallPlan` over rows with ``options.concurrency`` workers,
    journaling every outcome (see the module docstring)."""

    def __init__(self, config: OpperConfig, plan: CallPlan, journal: ResultsJournal, *,
                 total: int, on_progress: Progress | None = None) -> None:
        self.config, self.plan, self.journal = config, plan, journal
        self.total, self.on_progress = total, on_progress
        self.stats = CallStats()
        options = plan.options
        policy = RetryPolicy(max_attempts=options.max_row_attempts, max_elapsed=24 * 3600.0,
                             initial_backoff=config.retry.initial_backoff, max_backoff=config.retry.max_backoff)
        retry_on = errors.is_transient if options.retry_server_errors else _is_rate_limit
        self._retry = {**transport.retry_arguments(policy), "retry": retry_if_exception(retry_on)}
        self._flushing: set[asyncio.Task[None]] = set()

    async def _call(self, client: AsyncOpperClient, row_id: int, row: dict[str, Any]) -> Entry:
        try:
            async for attempt in AsyncRetrying(**self._retry):
                with attempt:
                    result = await self.plan.send(client, row_id, row)
        except errors.SutroError as exc:
            return Entry(row_id, None, exc.message or type(exc).__name__, self.plan.model)
        return self.plan.entry(row_id, result)

    async def _flush(self) -> None:
        entries = self.journal.take()
        if entries:
            await asyncio.to_thread(self.journal.write, entries)
            if self.on_progress is not None:
                self.on_progress(self.journal.rows_written, self.total)

    async def run(self, rows: Iterator[tuple[int, dict[str, Any]]]) -> CallStats:
        """Call every row of ``rows`` (or until a failure with ``on_row_error="fail"``)
        and flush the journal; returns the counts."""
        stop_on_error = self.plan.options.on_row_error == "fail"

        async def worker() -> None:
            async with AsyncOpperClient(config=self.config) as own:
                for row_id, row in rows:
                    if self.stats.stopped:
                        return
                    entry = await self._call(own, row_id, row)
                    self.stats.calls += 1
                    if entry.error is not None:
                        self.stats.failed += 1
                        log.warning("Opper call of row %d failed: %s", row_id, entry.error)
                        self.stats.stopped = self.stats.stopped or stop_on_error
                    self.journal.add(entry)
                    if self.journal.due():
                        await self._flush()

        workers = [asyncio.create_task(worker()) for _ in range(max(1, min(self.plan.options.concurrency, self.total)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.shield(self._flush())  # what completed is recorded even when the run is cancelled
        return self.stats


def _is_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, errors.SutroRateLimitError)
