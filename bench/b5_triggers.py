"""B5: 1,000 SutroJobTriggers on one event loop, polling the local server.

N jobs are created on the local Sutro server and held (``hold_job`` fault), so
they stay QUEUED/RUNNING; in a fresh process N ``SutroJobTrigger.run()`` tasks
(what Airflow's triggerer runs) share one event loop: a ramp-up until every
trigger has had its first poll, then ``--window`` seconds of steady polling, then
the tasks are cancelled (as the triggerer does). The triggers share one poller
(:mod:`sutro_providers.waiting.job_watch`), so a poll (one trigger receiving the statuses
of its jobs) and an HTTP request are no longer the same thing; both are counted.
Measured in that process:

* CPU per poll: process CPU time / trigger polls, in each phase; HTTP requests
  (``list-jobs`` pages and ``GET jobs/{id}``, each retry counted) per phase;
* loop stalls: a ticker task sleeping 5 ms records how late it wakes (the longest
  lateness is the longest stall) and how much CPU the loop's thread used meanwhile
  (a stall with little loop CPU is the process waiting for a core, not our code),
  during ramp-up and in the steady state;
* with ``--asyncio-debug``: asyncio debug mode logs callbacks slower than 50 ms
  (debug mode itself costs CPU, so CPU per poll is not comparable then);
* garbage-collector pauses (``gc.callbacks``); the trigger calls ``gc.freeze()``
  on its first run, ``--no-gc-freeze`` turns that off to show what full
  collections of the imported Airflow heap cost.

    .venv/bin/python bench/b5_triggers.py                   # 1,000 triggers, 5 s polls, 40 s steady state
    .venv/bin/python bench/b5_triggers.py --no-gc-freeze
    .venv/bin/python bench/b5_triggers.py --asyncio-debug
    .venv/bin/python bench/b5_triggers.py --smoke           # 20 triggers, 4 s

Targets: CPU per poll <= 1 ms; longest loop stall <= 50 ms.
"""

from __future__ import annotations

import gc
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


def triggers(job_ids: list[str], conn: str, poll: float, window: float, debug: bool, freeze: bool = True) -> dict[str, Any]:
    """All triggers on one loop: ramp-up, ``window`` seconds of polling, cancel; CPU, polls, requests, stalls."""
    os.environ.update(AIRFLOW_HOME=tempfile.mkdtemp(prefix="bench-airflow-"), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
                      AIRFLOW_CONN_SUTRO_DEFAULT=conn)
    import asyncio
    import logging

    from airflow_provider.triggers.sutro import SutroJobTrigger
    from sutro_providers.client.sutro import AsyncSutroClient
    from sutro_providers.waiting.job_watch import JobWatch

    logging.basicConfig(level=logging.WARNING)
    slow: list[str] = []

    class SlowCallbacks(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if " took " in message:
                slow.append(message.split(" took ")[-1].split()[0] + " s: " + message[:90])

    logging.getLogger("asyncio").addHandler(SlowCallbacks())
    gc_pauses: list[tuple[float, float, int]] = []  # (started, seconds, generation): one explanation of a stall
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append((gc_started[0], time.perf_counter() - gc_started[0], int(info["generation"])))

    gc.callbacks.append(on_gc)
    SutroJobTrigger.freeze_gc = freeze  # on by default: the trigger's first run calls gc.freeze()

    # Instrumentation only: count trigger polls and HTTP requests; note which jobs had a first poll.
    polls, requests = [0], [0]
    ready: set[str] = set()
    statuses, send = JobWatch.statuses, AsyncSutroClient._send

    async def counted_statuses(self: JobWatch, job_ids: Any, delay: float, slack: float = 0.5) -> Any:
        ids = list(job_ids)
        found = await statuses(self, ids, delay, slack)
        polls[0] += 1
        ready.update(ids)
        return found

    async def counted_send(self: AsyncSutroClient, call: Any) -> Any:
        requests[0] += 1
        return await send(self, call)

    JobWatch.statuses = counted_statuses  # type: ignore[method-assign]
    AsyncSutroClient._send = counted_send  # type: ignore[method-assign]

    def mark() -> dict[str, float]:
        return {"at": time.perf_counter(), "cpu": time.process_time(), "polls": polls[0], "requests": requests[0]}

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if debug:
            loop.set_debug(True)
            loop.slow_callback_duration = 0.05
        stalls: list[tuple[float, float, float]] = []  # (started, lateness, loop-thread CPU while asleep)
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                before, cpu = time.perf_counter(), time.thread_time()
                await asyncio.sleep(0.005)
                stalls.append((before, time.perf_counter() - before - 0.005, time.thread_time() - cpu))

        async def drive(trigger: SutroJobTrigger) -> None:
            async for _ in trigger.run():
                raise AssertionError("a held job finished or the wait failed")

        tick = asyncio.create_task(ticker())
        group = [SutroJobTrigger([job], poll_interval=poll, max_poll_interval=poll) for job in job_ids]
        with measure() as out:
            started = mark()
            tasks = [asyncio.create_task(drive(t)) for t in group]
            while len(ready) < len(group):  # ramp-up: every trigger reads its connection and has a first poll
                await asyncio.sleep(0.01)
            steady = mark()
            await asyncio.sleep(window)  # steady state: polling only
            teardown = mark()
            for task in tasks:  # the triggerer cancels triggers it no longer runs
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        done.set()
        await tick
        failed = [r for r in results if not isinstance(r, asyncio.CancelledError)]
        assert not failed, failed[:3]
        phases = {"ramp-up (first polls)": (started, steady), "steady state": (steady, teardown),
                  "teardown (tasks cancelled)": (teardown, mark())}
        out["value"] = {
            "phases": {name: {"seconds": b["at"] - a["at"], "cpu": b["cpu"] - a["cpu"], "polls": b["polls"] - a["polls"],
                              "requests": b["requests"] - a["requests"],
                              "stall": max(((s, c) for at, s, c in stalls if a["at"] <= at < b["at"]), default=(0.0, 0.0)),
                              "stalls_over_50ms": sum(s > 0.05 for at, s, _ in stalls if a["at"] <= at < b["at"]),
                              "stall_cpu": max((min(s, c) for at, s, c in stalls if a["at"] <= at < b["at"]), default=0.0)}
                       for name, (a, b) in phases.items()},
            "slow_callbacks": sorted(slow, reverse=True)[:5], "slow_count": len(slow),
            "gc_max": max((d for _, d, _ in gc_pauses), default=0.0), "gc_total": sum(d for _, d, _ in gc_pauses),
            "gc_count": len(gc_pauses), "gc_full": sum(g == 2 for _, _, g in gc_pauses),
            "gc_max_by_phase": {name: max((d for at, d, _ in gc_pauses if a["at"] <= at < b["at"]), default=0.0)
                                for name, (a, b) in phases.items()},
        }
        return out

    return asyncio.run(main())


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--triggers", type=int, default=1000)
    p.add_argument("--poll-interval", type=float, default=5.0)
    p.add_argument("--window", type=float, default=40.0, help="seconds of steady-state polling after the ramp-up")
    p.add_argument("--asyncio-debug", action="store_true")
    p.add_argument("--no-gc-freeze", action="store_true", help="SutroJobTrigger.freeze_gc = False (no gc.freeze() on the first run)")
    args = p.parse_args()
    count, poll, window = (20, 0.5, 4.0) if args.smoke else (args.triggers, args.poll_interval, args.window)
    preload("httpx", "sutro_providers.client.sutro", "airflow_provider.triggers.sutro")
    with sutro_server() as sutro:
        jobs = create_held_jobs(sutro, count)
        conn = json.dumps({"conn_type": "sutro", "host": sutro.url, "password": sutro.api_key})
        m = in_child(triggers, jobs, conn, poll, window, args.asyncio_debug, not args.no_gc_freeze)
        sutro.admin.reset()
    v = m.value
    rows = [[name, p["seconds"], p["polls"], p["requests"], p["cpu"], f"{1000 * p['cpu'] / p['polls']:.2f} ms" if p["polls"] else "-",
             f"{1000 * p['stall'][0]:.0f} ms ({1000 * p['stall'][1]:.0f} ms)", p["stalls_over_50ms"]] for name, p in v["phases"].items()]
    ramp, steady = v["phases"]["ramp-up (first polls)"], v["phases"]["steady state"]
    steady_ms = 1000 * steady["cpu"] / max(steady["polls"], 1)
    worst = max(ramp["stall"][0], steady["stall"][0])
    worst_cpu = max(ramp["stall_cpu"], steady["stall_cpu"])
    print_table(
        f"B5 {count:,} SutroJobTriggers on one loop, poll every {poll:g} s, {window:g} s of steady state after ramp-up"
        + (" (asyncio debug mode)" if args.asyncio_debug else "") + (" (no gc.freeze())" if args.no_gc_freeze else ""),
        ["phase", "seconds", "trigger polls", "HTTP requests", "CPU s", "CPU per poll", "longest loop stall (loop CPU in it)",
         "stalls > 50 ms"],
        rows,
        [f"ramp-up CPU per trigger {1000 * ramp['cpu'] / count:.1f} ms; peak RSS above baseline {m.rss_above / 2**20:.0f} MiB",
         f"steady state: {steady['polls'] / max(steady['seconds'], 1e-9):.0f} trigger polls/s from "
         f"{steady['requests'] / max(steady['seconds'], 1e-9):.1f} HTTP requests/s ({steady['requests'] / max(steady['polls'], 1):.3f} per poll)",
         f"GC: {v['gc_count']} collections ({v['gc_full']} full), {v['gc_total']:.2f} s in all, longest pause {1000 * v['gc_max']:.0f} ms"
         f" (by phase: {', '.join(f'{1000 * d:.0f} ms' for d in v['gc_max_by_phase'].values())})",
         *([f"asyncio slow callbacks (> 50 ms): {v['slow_count']}"] + [f"  {s}" for s in v["slow_callbacks"]]
           if args.asyncio_debug else []),
         f"CPU per poll, steady state {steady_ms:.2f} ms (target <= 1 ms: {verdict(steady_ms <= 1)}); "
         f"longest stall, ramp-up and steady state {1000 * worst:.0f} ms (target <= 50 ms: {verdict(worst <= 0.05)}); "
         f"longest stall the loop's own CPU accounts for {1000 * worst_cpu:.0f} ms"],
    )


if __name__ == "__main__":
    main()
