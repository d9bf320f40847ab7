"""Shared helpers of the benchmark scripts: servers, sample tables, fresh-process
measurements (wall time and peak RSS), the machine/load header and table printing.

Every script prints one table. Each measured operation runs in its own spawned
child process (:func:`in_child`), so its RSS baseline is clean and nothing
(imports, caches, the moto server) leaks from one measurement into the next.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import logging
import multiprocessing as mp
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "example_dags" / "functions"
FUNCTION = "ticket-triage"
SUBJECTS = [
    "Refund request for the annual plan renewal charge",
    "App crashes on login after the latest update today",
    "Feature idea: export dashboards to PDF every week",
    "Cannot reset password, the reset email never arrives",
    "Invoice question about VAT on the November statement",
]
LABELS = ["billing", "bug", "feature_request", "account", "other"]


# -- machine and load --------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """Cores, memory, date: printed above every table (and copied into docs/benchmarks.md)."""
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"cores": str(os.cpu_count()), "memory": f"{int(mem) / 2**20:.1f} GiB",
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def load() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` shows them."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def parser(description: str) -> argparse.ArgumentParser:
    """The common command line: ``--smoke`` (tiny sizes) and ``--repeat``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds (used by the test suite)")
    p.add_argument("--repeat", type=int, default=None, help="measurements per side (median is reported)")
    return p


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], notes: Sequence[str] = ()) -> None:
    """A plain-text table plus the machine/load header (what docs/benchmarks.md quotes)."""
    info = machine()
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print(f"machine: {info['cores']} cores, {info['memory']}; {info['date']}; load {load()}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    for note in notes:
        print(note)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# -- servers -----------------------------------------------------------------------------------


SHARED_S3 = "BENCH_S3_ENDPOINT"
SHARED_SUTRO = ("BENCH_SUTRO_URL", "BENCH_SUTRO_KEY")
"""Set these to reuse running servers instead of starting new ones (the smoke test does,
to keep the suite short); each script still cleans up the jobs and faults it made."""


@contextlib.contextmanager
def s3_server() -> Iterator[Any]:
    """A moto S3 server (in this process, on a thread) with dummy AWS credentials set;
    the one at ``$BENCH_S3_ENDPOINT`` when that is set."""
    from sutro_providers.local.moto_s3 import MotoS3

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs request lines, signed URLs included
    for key, value in {**MotoS3.CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    server = MotoS3()
    if os.environ.get(SHARED_S3):
        server.endpoint_url = os.environ[SHARED_S3]
        yield server
        return
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def sutro_server(**kwargs: Any) -> Iterator[Any]:
    """A ``sutro-local`` subprocess publishing the example Functions; the one at
    ``$BENCH_SUTRO_URL`` (key ``$BENCH_SUTRO_KEY``) when that is set."""
    from sutro_providers.local.server import LocalAdmin, LocalSutroServer

    url, key = (os.environ.get(name) for name in SHARED_SUTRO)
    if url and key:
        shared = SimpleNamespace(url=url, api_key=key, admin=LocalAdmin(url, key))
        try:
            yield shared
        finally:
            shared.admin.clear_faults()
        return
    with LocalSutroServer(FUNCTIONS, **kwargs) as server:
        yield server


def function_spec(name: str = FUNCTION) -> Any:
    from sutro_providers.function_spec import load_function_specs

    return load_function_specs(FUNCTIONS)[name]


def ticket_validator() -> Any:
    """The ``InputValidator`` that ``EnrichmentPipeline.submit`` builds for ``ticket-triage``."""
    from sutro_providers.inputs.validation import InputValidator
    from sutro_providers.pipeline import output_columns

    spec = function_spec()
    return InputValidator(spec.name, spec.inputs, output_columns=output_columns(spec, ""))


# -- sample data -------------------------------------------------------------------------------


def tickets_arrow(rows: int) -> Any:
    """``rows`` support tickets: ``subject`` and ``body`` (~50 bytes of text each) and
    ``ticket_id`` (int64). Built vectorised so that building is not what is measured."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array(range(rows), pa.int64())
    text = pc.cast(ids, pa.string())
    subject = pa.array(SUBJECTS).take(pc.cast(pc.bit_wise_and(ids, 3), pa.int32()))
    body = pc.binary_join_element_wise("Customer ", text, " writes about the Acme plan ", text, " again", "")
    return pa.table({"subject": subject, "body": body, "ticket_id": ids})


def tickets_pandas(rows: int) -> Any:
    """The same tickets as a pandas DataFrame (what a user hands to the pipeline)."""
    return tickets_arrow(rows).to_pandas()


def results_arrow(rows: int, seed: int = 0) -> Any:
    """Function results in the local server's artifact format for ``ticket-triage``:
    ``__sutro_row_id``, ``outputs`` (one JSON object per row), ``confidence_score``."""
    import json

    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    texts = [json.dumps({"label": label, "rationale": f"The text reads most like {label}."}) for label in LABELS]
    outputs = pa.array(texts).take(pa.array(rng.integers(0, len(LABELS), rows)))
    return pa.table({
        "__sutro_row_id": pa.array(np.arange(rows, dtype=np.int64)),
        "outputs": outputs,
        "confidence_score": pa.array(rng.uniform(0.2, 1.0, rows)),
    })


# -- measurement -------------------------------------------------------------------------------


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_rss() -> int:
    """This process's peak RSS (``VmHWM``, bytes) since it started or since :func:`reset_peak`."""
    return _status("VmHWM")


def reset_peak() -> bool:
    """Reset the kernel's high-water mark (``/proc/self/clear_refs`` ← 5); False where
    that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakRss:
    """Peak RSS of this process above its RSS at ``__enter__`` (bytes, in ``.above``).

    Resets the kernel's high-water mark (``/proc/self/clear_refs`` ← 5) at entry and
    reads ``VmHWM`` at exit; where that is not allowed, a thread samples ``VmRSS``
    every 5 ms instead."""

    def __init__(self) -> None:
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.baseline = _status("VmRSS")
        if not reset_peak():
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _status("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _status("VmRSS"))
        else:
            self.peak = peak_rss()

    @property
    def above(self) -> int:
        return max(0, self.peak - self.baseline)


@dataclass
class Measured:
    """What one child measured: wall seconds, CPU seconds, peak RSS above its baseline,
    and whatever the measured function returned."""

    seconds: float
    cpu_seconds: float
    rss_above: int
    baseline_rss: int
    value: Any = None


@contextlib.contextmanager
def measure() -> Iterator[dict[str, Any]]:
    """Time and peak-RSS one block (use inside the child, after its set-up)."""
    out: dict[str, Any] = {}
    with PeakRss() as rss:
        cpu, started = time.process_time(), time.perf_counter()
        yield out
        out["seconds"] = time.perf_counter() - started
        out["cpu_seconds"] = time.process_time() - cpu
    out["rss_above"], out["baseline_rss"] = rss.above, rss.baseline


def _child(queue: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        queue.put(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        import traceback

        queue.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


BASE_MODULES = ["numpy", "pandas", "pyarrow", "pyarrow.compute", "pyarrow.dataset", "pyarrow.ipc", "pyarrow.json",
                "pyarrow.parquet", "fsspec", "fsspec.implementations.local"]
"""Imported by the fork server: pyarrow imports pandas lazily on a first write, which
would otherwise land inside the first measurement."""


def preload(*modules: str) -> None:
    """Modules the fork server imports once, before it forks the measurement children.

    Children come from ``multiprocessing``'s fork server: a fresh single-threaded
    process that imported only these modules (and the script), so each child starts
    clean (no servers, threads or caches of the parent) without paying the imports
    again; each child's baseline RSS is taken inside it, after its own set-up."""
    mp.set_forkserver_preload(["__main__", "_common", *BASE_MODULES, *modules])


def in_child(fn: Callable[..., dict[str, Any]], *args: Any, timeout: float = 3600) -> Measured:
    """Run ``fn(*args)`` in a fresh child process and return its :class:`Measured`.

    ``fn`` must be a module-level function that does its own set-up and wraps the
    measured part in :func:`measure`, returning that dict (plus a ``value`` if any)."""
    ctx = mp.get_context("forkserver")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    try:
        status, payload = queue.get(timeout=timeout)
    finally:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()
    if status != "ok":
        raise RuntimeError(f"measurement {fn.__name__} failed in its child process:\n{payload}")
    return Measured(payload["seconds"], payload.get("cpu_seconds", 0.0), payload.get("rss_above", 0),
                    payload.get("baseline_rss", 0), payload.get("value"))


def alternate(repeat: int, floor: Callable[[], Measured], ours: Callable[[], Measured]) -> tuple[list[Measured], list[Measured]]:
    """Measure floor and ours ``repeat`` times each, interleaved (floor, ours, floor, ...)
    so that load changes on a shared machine hit both sides alike."""
    floors, ourses = [], []
    for _ in range(repeat):
        floors.append(floor())
        ourses.append(ours())
    return floors, ourses


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))
