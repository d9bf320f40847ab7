"""The four ways a chaos run goes through the package, each retried like its
orchestrator would (same run identity, at most ``max_attempts`` tries):

* ``core``: :meth:`EnrichmentPipeline.run` (submit → progress stream from its
  ``on_submitted`` hook (dropped streams are tolerated, polling takes over) → wait →
  collect); a failed attempt is run again;
* ``realtime``: :func:`run_realtime` (429s retried per row after Retry-After);
* ``airflow``: ``SutroBatchFunctionOperator.execute`` defers; the trigger is
  abandoned mid-wait and re-created from ``serialize()`` (a triggerer restart); a
  new operator instance runs ``execute_complete``; a failed try is a task retry
  (same dag/task/run id);
* ``dagster``: an asset calling ``SutroResource.enrich`` materialized with a step
  ``RetryPolicy`` (retries keep the run id, so they reattach).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sutro_providers.errors import SutroError
from sutro_providers.manifest import Manifest
from sutro_providers.options import EnrichmentOptions
from sutro_providers.pipeline import EnrichmentPipeline
from sutro_providers.realtime import run_realtime

if TYPE_CHECKING:
    from tests.chaos.config import RunSpec
    from tests.chaos.env import ChaosEnv


@dataclass
class Outcome:
    """How one run ended after its retries."""

    ok: bool = False
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    final_error: str | None = None
    clear_error: bool = True
    streams_dropped: int = 0
    trigger_restarts: int = 0
    parallel: list[dict[str, Any]] = field(default_factory=list)  # replies of attempts run in processes of their own
    faults: Counter[str] = field(default_factory=Counter)  # overlap faults injected into this run


def _options(env: ChaosEnv, spec: RunSpec, **extra: Any) -> EnrichmentOptions:
    return EnrichmentOptions(
        function=env.config.function, id_column=spec.id_column, max_rows_per_job=spec.max_rows_per_job,
        output_uri=env.output_uri(spec), output_storage_options=env.storage_options,
        poll_interval=0.1, max_poll_interval=0.4, timeout=env.config.run_timeout, incremental=spec.incremental,
        **extra,
    )


def _failed(outcome: Outcome, exc: BaseException, clear: bool) -> None:
    text = f"{type(exc).__name__}: {exc}"
    where = getattr(exc, "endpoint", None)
    outcome.errors.append(f"{type(exc).__name__}({where})" if where else type(exc).__name__)
    outcome.final_error = text[:300]
    # a clear error: one of ours (or the orchestrator's wrapper of one) with a message
    outcome.clear_error = clear and len(str(exc).strip()) >= 10


def _retrying(env: ChaosEnv, outcome: Outcome, attempt_once: Any, clear_types: tuple[type, ...]) -> Outcome:
    for _ in range(env.config.max_attempts):
        outcome.attempts += 1
        try:
            attempt_once()
        except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
            _failed(outcome, exc, isinstance(exc, clear_types))
            continue
        outcome.ok, outcome.final_error, outcome.clear_error = True, None, True
        return outcome
    return outcome


# ---------------------------------------------------------------- core
def _watch_progress(pipeline: EnrichmentPipeline, job_id: str) -> bool:
    """Follow the job's progress stream; True when it ended before the job did."""
    lines = 0
    try:
        for _ in pipeline.client.stream_progress(job_id):
            lines += 1
    except SutroError:
        return True
    status = pipeline.client.get_job(job_id).status
    return not status.is_terminal


def run_core(env: ChaosEnv, spec: RunSpec, **extra: Any) -> Outcome:
    outcome = Outcome()
    options = _options(env, spec, **extra)

    def once() -> None:
        with env.client() as client:
            pipeline = EnrichmentPipeline(client, env.staging)

            def follow(manifest: Manifest) -> None:
                if manifest.state == "submitted" and manifest.job_ids:
                    try:
                        outcome.streams_dropped += _watch_progress(pipeline, manifest.job_ids[0])
                    except SutroError:
                        pass  # the stream is a nicety; the run's polling is what counts

            pipeline.run(spec.rows, spec.identity, options, on_submitted=follow, materialize=False)

    return _retrying(env, outcome, once, (SutroError,))


# ---------------------------------------------------------------- real time
def run_rt(env: ChaosEnv, spec: RunSpec) -> Outcome:
    outcome = Outcome()
    options = _options(env, spec)

    def once() -> None:
        with env.client() as client:
            run_realtime(client, spec.rows, options, concurrency=4, identity=spec.identity)

    return _retrying(env, outcome, once, (SutroError,))


# ---------------------------------------------------------------- Airflow
class _TI:
    """The TaskInstance members the operator uses (the chaos run has no Airflow DB)."""

    def __init__(self, run_id: str) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = "chaos", "enrich", run_id, -1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = json.loads(json.dumps(value))  # XCom values must be JSON


async def _fire(trigger: Any, restart_after: float) -> tuple[dict[str, Any], bool]:
    """Run the trigger, kill it after ``restart_after`` s, re-create it from its
    serialized form (as a new triggerer would) and run that to its event."""
    classpath, kwargs = trigger.serialize()
    events = trigger.run()
    try:
        event = await asyncio.wait_for(events.__anext__(), restart_after)
        return event.payload, False
    except TimeoutError:
        await events.aclose()
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    async for event in rebuilt.run():
        return event.payload, True
    raise RuntimeError("the re-created trigger yielded no event")


def run_airflow(env: ChaosEnv, spec: RunSpec) -> Outcome:
    from airflow.exceptions import AirflowException
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider.operators.batch import SutroBatchFunctionOperator

    outcome = Outcome()
    context = {"ti": _TI(f"chaos__{spec.index}")}

    def operator() -> Any:
        return SutroBatchFunctionOperator(
            task_id="enrich", function_name=env.config.function, input_data=spec.rows,
            output_uri=env.output_uri(spec), deferrable=True, poll_interval=0.1, max_poll_interval=0.4,
            timeout=env.config.run_timeout, id_column=spec.id_column, max_rows_per_job=spec.max_rows_per_job,
        )

    def once() -> None:
        try:
            operator().execute(context)
        except TaskDeferred as deferred:
            payload, restarted = asyncio.run(_fire(deferred.trigger, env.config.trigger_restart_after))
            outcome.trigger_restarts += restarted
            operator().execute_complete(context, payload)  # the worker resumes with a new instance

    return _retrying(env, outcome, once, (SutroError, AirflowException))


# ---------------------------------------------------------------- Dagster
_DAGSTER_LOCK = threading.Lock()


def run_dagster(env: ChaosEnv, spec: RunSpec) -> Outcome:
    import dagster as dg
    import pyarrow as pa

    outcome = Outcome()
    options = _options(env, spec)
    table = pa.Table.from_pylist(spec.rows)

    def body(context):  # type: ignore[no-untyped-def]  # (no string annotations: Dagster resolves them)
        outcome.attempts += 1
        yield from context.resources.sutro.enrich(context, table, options=options, output_format="arrow")

    enriched = dg.asset(name=f"chaos_{spec.index}", required_resource_keys={"sutro"},
                        retry_policy=dg.RetryPolicy(max_retries=env.config.max_attempts - 1))(body)

    resource = env.dagster_resource()
    with _DAGSTER_LOCK, dg.DagsterInstance.ephemeral() as instance:  # one Dagster run at a time
        result = dg.materialize([enriched], resources={"sutro": resource}, instance=instance, raise_on_error=False)
    if result.success:
        outcome.ok = True
        return outcome
    failures = [e for e in result.all_events if e.is_step_failure]
    error = failures[-1].step_failure_data.error if failures else None
    message = error.message if error is not None else ""
    outcome.errors.append(f"dagster {error.cls_name if error else 'run failure'}")
    outcome.final_error = message[:300] or "dagster run failed without a message"
    # clear: the adapter's dg.Failure (built from a SutroError) with a message
    outcome.clear_error = error is not None and error.cls_name == "Failure" and len(message.strip()) >= 10
    return outcome


DRIVERS = {"core": run_core, "realtime": run_rt, "airflow": run_airflow, "dagster": run_dagster}
