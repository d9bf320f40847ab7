"""The real-time runner: the same call shape as the batch pipeline, row by row
through ``POST functions/{name}/run``, for small tables that should not wait in a
batch queue.

Rows run with bounded async concurrency. A 429 is retried per row (tenacity, up
to ``max_rate_limit_retries`` times) after at least the server's ``Retry-After``,
with the client's full-jitter exponential backoff (capped at 30 s); any other
error fails the run (each call is billed, so nothing else is retried). Results are
unpacked and joined exactly as batch results are, so both paths give the same
enriched table for the same rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pyarrow as pa
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from sutro_providers.client import transport
from sutro_providers.client.models import FunctionRunResult
from sutro_providers.client.sutro import AsyncSutroClient, SutroClient
from sutro_providers.collection.join import ResultJoiner
from sutro_providers.collection.summary import summarize
from sutro_providers.collection.unpack import result_schema, unpack_outputs
from sutro_providers.columns import CONFIDENCE_SCORE, OUTPUTS, ROW_ID, SKIP_REASON
from sutro_providers.errors import SutroInputError, SutroNotFoundError, SutroRateLimitError
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.identity import RunIdentity
from sutro_providers.inputs.sources import TableSource, open_source
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.manifest import Manifest
from sutro_providers.options import EnrichmentOptions
from sutro_providers.parquet_io import write_parquet
from sutro_providers.pipeline import EnrichmentResult, output_columns
from sutro_providers.submission.ledger import utc_now

log = logging.getLogger("sutro_providers.realtime")


def output_object(result: FunctionRunResult, spec: FunctionSpec | None) -> dict[str, Any]:
    """The Function's output as the batch path sees it (classification:
    ``{"label", "rationale"}``; extraction: the output object)."""
    value = result.value
    if isinstance(value, dict):
        out = dict(value)
        if spec is not None and spec.kind == "classification":
            out.setdefault("rationale", result.rationale or "")
            return {"label": out.get("label", result.response), "rationale": out["rationale"]}
        return out
    return {"label": value, "rationale": result.rationale or ""}


def _rate_limit_retrying(retries: int) -> AsyncRetrying:
    """Up to ``retries`` more tries of a rate-limited row, after at least the server's
    ``Retry-After`` (the client's full-jitter backoff otherwise, capped at 30 s)."""
    return AsyncRetrying(
        stop=stop_after_attempt(retries + 1),
        wait=transport.WaitHonouringRetryAfter(multiplier=0.5, max=30.0),
        retry=retry_if_exception_type(SutroRateLimitError),
        reraise=True,
    )


async def _run_row(client: AsyncSutroClient, function: str, row: dict[str, Any], retries: int) -> FunctionRunResult:
    """One row; a 429 is retried ``retries`` times through tenacity. The first try runs
    outside it (tenacity's async loop costs more CPU than the call itself, bench B6);
    its 429 is replayed as tenacity's first attempt, so the wait and the count are tenacity's."""
    try:
        return await client.run_function(function, row)
    except SutroRateLimitError as exc:
        if retries < 1:
            raise
        first: SutroRateLimitError | None = exc
    async for attempt in _rate_limit_retrying(retries):
        with attempt:
            if first is not None:
                error, first = first, None
                raise error
            return await client.run_function(function, row)
    raise AssertionError("unreachable")  # pragma: no cover


async def _run_rows(
    client: AsyncSutroClient, function: str, rows: list[tuple[int, dict[str, Any]]], concurrency: int, retries: int,
) -> list[FunctionRunResult]:
    """Run every row with ``concurrency`` workers, each on its own client (one
    httpx pool with many requests in flight costs several ms of CPU per request
    scanning its connections; one connection per client does not), and return the
    answers in input order. The first error cancels the other workers and is raised."""
    pending = enumerate(row for _, row in rows)  # shared by the workers: each row is taken once
    answers: list[FunctionRunResult | None] = [None] * len(rows)

    async def worker() -> None:
        async with AsyncSutroClient(config=client.config) as own:
            for index, row in pending:
                answers[index] = await _run_row(own, function, row, retries)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(rows))))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


async def arun_realtime(
    client: AsyncSutroClient,
    source: TableSource,
    options: EnrichmentOptions,
    *,
    concurrency: int = 16,
    max_rate_limit_retries: int = 8,
    identity: RunIdentity | None = None,
) -> EnrichmentResult:
    """Async form of :func:`run_realtime`."""
    started = time.monotonic()
    identity = identity or RunIdentity.of("realtime", function=options.function, at=utc_now())
    try:
        spec: FunctionSpec | None = await client.get_function(options.function)
    except SutroNotFoundError:
        spec = None
    fields = options.input_fields or (spec.inputs if spec else None)
    if fields is None:
        raise SutroInputError(f"Function {options.function!r} does not publish its inputs; pass input_fields=")
    validator = InputValidator(
        options.function, fields, on_invalid_rows=options.on_invalid_rows, id_column=options.id_column,
        max_row_chars=options.max_row_chars, output_columns=output_columns(spec, options.output_prefix),
    )
    reader = open_source(source, batch_size=options.batch_size)
    validator.check_schema(reader.schema)
    source_batches: list[pa.RecordBatch] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    offset = 0
    for batch in reader.batches():
        reasons = validator.check_batch(batch, offset)
        if reasons is None:
            reasons = pa.nulls(batch.num_rows, pa.string())
        ids = pa.array(range(offset, offset + batch.num_rows), pa.int64())
        source_batches.append(pa.RecordBatch.from_arrays([*batch.columns, ids, reasons],
                                                         names=[*batch.schema.names, ROW_ID, SKIP_REASON]))
        submit = validator.cast_for_submit(batch).to_pylist()
        rows.extend((offset + i, row) for i, row in enumerate(submit) if reasons[i].as_py() is None)
        offset += batch.num_rows
    validator.finish()

    answers = await _run_rows(client, options.function, rows, concurrency, max_rate_limit_retries)
    results = pa.table({
        ROW_ID: pa.array([rid for rid, _ in rows], pa.int64()),
        OUTPUTS: [json.dumps(output_object(a, spec)) for a in answers],
        CONFIDENCE_SCORE: pa.array([a.confidence for a in answers], pa.float64()),
    })
    unpacked = unpack_outputs(results, spec, prefix=options.output_prefix)
    joiner = ResultJoiner(source_batches[0].schema if source_batches else pa.schema([pa.field(ROW_ID, pa.int64())]),
                          result_schema(spec, prefix=options.output_prefix) if spec else unpacked.schema)
    table = pa.Table.from_batches(list(joiner.join(source_batches, unpacked)), schema=joiner.schema)
    if options.output_uri:
        write_parquet(table.to_batches(), table.schema, options.output_uri, options.output_storage_options)
    usage = [a.usage for a in answers if a.usage is not None]
    costs = [u.estimated_cost_usd for u in usage if u.estimated_cost_usd is not None]
    manifest = Manifest(
        run_key=identity.key, identity=identity.describe(), function=options.function,
        model=spec.default_model if spec else None, state="succeeded", rows_in=offset,
        rows_submitted=len(rows), rows_out=table.num_rows, rows_skipped=offset - len(rows),
        input_tokens=sum(u.input_tokens or 0 for u in usage), output_tokens=sum(u.output_tokens or 0 for u in usage),
        cost_usd=sum(costs) if costs else None, output_uri=options.output_uri, output_columns=table.column_names,
        summary=summarize(table, kind=spec.kind if spec else "extraction",
                          confidence_threshold=options.confidence_threshold, prefix=options.output_prefix),
        timings={"realtime_s": round(time.monotonic() - started, 3)}, finished_at=utc_now(),
    )
    log.info("ran %s on %d rows in real time (%d skipped)", options.function, len(rows), manifest.rows_skipped)
    return EnrichmentResult(table, manifest)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (it comes with ``uvicorn[standard]``): it
    saves ~5% of the client CPU per row (bench B6); asyncio's loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_realtime(client: SutroClient, source: TableSource, options: EnrichmentOptions, **kwargs: Any) -> EnrichmentResult:
    """Run a Function row by row in real time (see the module docstring) on an event
    loop of its own (uvloop's when installed). Not for use inside a running event
    loop: await :func:`arun_realtime` there."""

    async def main() -> EnrichmentResult:
        async with AsyncSutroClient(config=client.config) as aclient:
            return await arun_realtime(aclient, source, options, **kwargs)

    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        return runner.run(main())
