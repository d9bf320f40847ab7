"""B5: 1,000 SutroJobTriggers on one event loop, polling the local server.

N jobs are created on the local Sutro server and held (``hold_job`` fault), so
they stay QUEUED/RUNNING; in a fresh process N ``SutroJobTrigger.run()`` tasks
(what Airflow's triggerer runs) share one event loop until their deadline, when
each yields its ``timeout`` event. Measured in that process:

* CPU per poll: process CPU time / ``GET jobs/{id}`` polls, over the whole run and
  over the steady state (after every trigger has its client);
* loop stalls: a ticker task sleeping 5 ms records how late it wakes (the longest
  lateness is the longest stall), during ramp-up and in the steady state;
* with ``--asyncio-debug``: asyncio debug mode logs callbacks slower than 50 ms
  (debug mode itself costs CPU, so CPU per poll is not comparable then).

    .venv/bin/python bench/b5_triggers.py                   # 1,000 triggers, 5 s polls, 40 s window
    .venv/bin/python bench/b5_triggers.py --asyncio-debug
    .venv/bin/python bench/b5_triggers.py --smoke           # 20 triggers, 4 s

Targets: CPU per poll <= 1 ms; longest loop stall <= 50 ms.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _common import FUNCTION, in_child, measure, parser, preload, print_table, sutro_server, verdict


def create_held_jobs(sutro: Any, count: int) -> list[str]:
    """``count`` one-row jobs that will not finish (held until the server is reset)."""
    from sutro_providers import SutroClient

    sutro.admin.set_faults([{"kind": "hold_job", "count": count}])
    row = [{"subject": "Refund request", "body": "Please refund the duplicate charge."}]
    with SutroClient(sutro.url, sutro.api_key) as client, ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: client.create_job(model=FUNCTION, inputs=row), range(count)))


def triggers(job_ids: list[str], conn: str, poll: float, window: float, debug: bool) -> dict[str, Any]:
    """All triggers on one loop until their deadline; returns CPU, polls and stalls."""
    os.environ.update(AIRFLOW_HOME=tempfile.mkdtemp(prefix="bench-airflow-"), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
                      AIRFLOW_CONN_SUTRO_DEFAULT=conn)
    import asyncio
    import logging

    from airflow_provider.hooks.sutro import SutroHook
    from airflow_provider.triggers.sutro import SutroJobTrigger
    from sutro_providers.client import AsyncSutroClient

    logging.basicConfig(level=logging.WARNING)
    slow: list[str] = []

    class SlowCallbacks(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "took" in record.getMessage():
                slow.append(record.getMessage()[:200])

    logging.getLogger("asyncio").addHandler(SlowCallbacks())

    # Instrumentation only: count polls and note when each trigger's client is ready.
    polls = [0]
    ready: list[float] = []
    get_job, aget_client = AsyncSutroClient.get_job, SutroHook.aget_client

    async def counted_get_job(self: AsyncSutroClient, job_id: str) -> Any:
        polls[0] += 1
        return await get_job(self, job_id)

    async def noted_aget_client(self: SutroHook) -> AsyncSutroClient:
        client = await aget_client(self)
        ready.append(time.perf_counter())
        return client

    AsyncSutroClient.get_job = counted_get_job  # type: ignore[method-assign]
    SutroHook.aget_client = noted_aget_client  # type: ignore[method-assign]

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if debug:
            loop.set_debug(True)
            loop.slow_callback_duration = 0.05
        stalls: list[tuple[float, float]] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.005)
                stalls.append((before, time.perf_counter() - before - 0.005))

        async def drive(trigger: SutroJobTrigger) -> dict[str, Any]:
            async for event in trigger.run():
                return dict(event.payload)
            raise AssertionError("no event")

        tick = asyncio.create_task(ticker())
        deadline = time.time() + window
        group = [SutroJobTrigger([job], poll_interval=poll, max_poll_interval=poll, deadline=deadline) for job in job_ids]
        steady: dict[str, float] = {}

        async def watch_ramp() -> None:
            while len(ready) < len(group):
                await asyncio.sleep(0.01)
            steady.update(at=time.perf_counter(), cpu=time.process_time(), polls=polls[0])

        ramp = asyncio.create_task(watch_ramp())
        with measure() as out:
            started = time.perf_counter()
            events = await asyncio.gather(*(drive(t) for t in group))
        done.set()
        await tick
        await ramp
        ramped = [s for at, s in stalls if at < steady["at"]]
        later = [s for at, s in stalls if at >= steady["at"]]
        out["value"] = {
            "events": sorted({e["status"] for e in events}), "polls": polls[0],
            "ramp_s": steady["at"] - started, "steady_cpu": out["cpu_seconds"] - (steady["cpu"] - started_cpu),
            "steady_polls": polls[0] - steady["polls"], "ramp_stall": max(ramped, default=0.0),
            "steady_stall": max(later, default=0.0), "slow_callbacks": slow[:5], "slow_count": len(slow),
        }
        return out

    started_cpu = time.process_time()
    return asyncio.run(main())


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--triggers", type=int, default=1000)
    p.add_argument("--poll-interval", type=float, default=5.0)
    p.add_argument("--window", type=float, default=40.0, help="seconds until the triggers' deadline")
    p.add_argument("--asyncio-debug", action="store_true")
    args = p.parse_args()
    count, poll, window = (20, 0.5, 4.0) if args.smoke else (args.triggers, args.poll_interval, args.window)
    preload("httpx", "sutro_providers.client", "airflow_provider.triggers.sutro")
    with sutro_server() as sutro:
        jobs = create_held_jobs(sutro, count)
        conn = json.dumps({"conn_type": "sutro", "host": sutro.url, "password": sutro.api_key})
        m = in_child(triggers, jobs, conn, poll, window, args.asyncio_debug)
        sutro.admin.reset()
    v = m.value
    steady_ms = 1000 * v["steady_cpu"] / max(v["steady_polls"], 1)
    overall_ms = 1000 * m.cpu_seconds / max(v["polls"], 1)
    worst = max(v["ramp_stall"], v["steady_stall"])
    print_table(
        f"B5 {count:,} SutroJobTriggers on one loop, poll every {poll:g} s, deadline {window:g} s"
        + (" (asyncio debug mode)" if args.asyncio_debug else ""),
        ["phase", "seconds", "polls", "CPU s", "CPU per poll", "longest loop stall"],
        [
            ["ramp-up (clients built)", v["ramp_s"], v["polls"] - v["steady_polls"], m.cpu_seconds - v["steady_cpu"],
             "-", f"{1000 * v['ramp_stall']:.0f} ms"],
            ["steady state", m.seconds - v["ramp_s"], v["steady_polls"], v["steady_cpu"], f"{steady_ms:.2f} ms",
             f"{1000 * v['steady_stall']:.0f} ms"],
            ["whole run", m.seconds, v["polls"], m.cpu_seconds, f"{overall_ms:.2f} ms", f"{1000 * worst:.0f} ms"],
        ],
        [f"events: {v['events']}; peak RSS above baseline {m.rss_above / 2**20:.0f} MiB",
         *([f"asyncio slow callbacks (> 50 ms): {v['slow_count']}"] + [f"  {s}" for s in v["slow_callbacks"]]
           if args.asyncio_debug else []),
         f"CPU per poll, steady state {steady_ms:.2f} ms (target <= 1 ms: {verdict(steady_ms <= 1)}); "
         f"longest stall {1000 * worst:.0f} ms (target <= 50 ms: {verdict(worst <= 0.05)})"],
    )


if __name__ == "__main__":
    main()
