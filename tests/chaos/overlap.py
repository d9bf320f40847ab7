"""Chaos faults of overlapping attempts (core path), each against one run identity:

* ``concurrent``: 2-8 attempts started at once, each in its own process
  (:mod:`tests.chaos.attempt`), as duplicated workers or a re-execution started
  several times would; every attempt must return the complete table or a clear
  error, and the server must hold one job per shard;
* ``zombie``: an attempt in its own process stops itself (SIGSTOP) right after
  its claim on a shard is written, before the paid call; its lease runs out,
  another attempt runs the whole run, then the first is resumed (SIGCONT): it must
  find the shard taken and reattach, never create a job of its own;
* ``ledger_conflict``: while the attempt runs, a foreign writer rewrites the run's
  ledger every few tens of milliseconds (a conditional write of the same record,
  so its version changes), so the attempt's own conditional writes lose races and
  must read again and re-apply their change.

If no attempt of a ``concurrent`` run succeeded, the run is retried in-process
like the plain core path (same identity).
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sutro_providers.staging.area import StagingArea
from sutro_providers.submission.ledger import LedgerRecord, utc_now
from sutro_providers.submission.ledger_store import LedgerWriteConflict, S3LedgerStore
from tests.chaos.drivers import Outcome, _options, run_core

if TYPE_CHECKING:
    from tests.chaos.config import RunSpec
    from tests.chaos.env import ChaosEnv

REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger("tests.chaos")
LEDGER_LOGGER = "sutro_providers.submission.ledger"


def _request(env: ChaosEnv, spec: RunSpec, *, pause_after_claim: bool = False) -> str:
    # a zombie's lease is short so that it lapses while it is paused; other attempts keep the default
    # (a lease shorter than one job-creation call lets a waiting attempt take over a live claim)
    extra = {"claim_lease_seconds": env.config.zombie_lease} if pause_after_claim else {}
    options = _options(env, spec, **extra)
    return json.dumps({
        "url": env.server.url, "api_key": env.server.api_key, "staging": env.staging.model_dump(mode="json"),
        "options": options.model_dump(mode="json"), "rows": spec.rows, "path": spec.path, "index": spec.index,
        "pause_after_claim": pause_after_claim,
    })


def _log_path(env: ChaosEnv, spec: RunSpec, tag: str) -> Path:
    return env.log_dir / f"run-{spec.index:04d}-{tag}.log"


def _start(env: ChaosEnv, spec: RunSpec, tag: str, **kw: Any) -> subprocess.Popen[str]:
    log_path = _log_path(env, spec, tag)
    proc = subprocess.Popen([sys.executable, "-m", "tests.chaos.attempt"], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_path.open("w"))
    assert proc.stdin is not None
    proc.stdin.write(_request(env, spec, **kw))
    proc.stdin.close()
    proc.stdin = None  # written and closed: communicate() only reads
    return proc


def _reply(proc: subprocess.Popen[str], timeout: float, log_path: Path) -> dict[str, Any]:
    """The attempt's reply; a hung or crashed attempt is an unclear failure, logged with its
    log's tail (a hung one first dumps its threads' stacks there: faulthandler on SIGUSR1)."""
    reply: dict[str, Any]
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        proc.kill()  # this runner's own child
        proc.communicate()
        reply = {"ok": False, "error": f"attempt process did not finish within {timeout:.0f} s", "unclear": True}
    else:
        lines = [line for line in (out or "").splitlines() if line.startswith("{")]
        reply = json.loads(lines[-1]) if lines else {
            "ok": False, "error": f"attempt process exited {proc.returncode} without a reply", "unclear": True}
    if not reply.get("ok"):
        log.warning("attempt %s failed: %s\n%s", log_path.name, reply.get("error"), log_path.read_text()[-3000:])
    return reply


def run_concurrent(env: ChaosEnv, spec: RunSpec) -> Outcome:
    procs = [_start(env, spec, f"p{i}") for i in range(spec.parallel)]
    outcome = Outcome(attempts=len(procs))
    deadline = time.monotonic() + env.config.attempt_deadline  # for all of them: they run side by side
    outcome.parallel = [_reply(p, max(1.0, deadline - time.monotonic()), _log_path(env, spec, f"p{i}"))
                        for i, p in enumerate(procs)]
    outcome.faults["concurrent_runs"] += 1
    outcome.faults["concurrent_processes"] += len(procs)
    if any(r["ok"] for r in outcome.parallel):
        outcome.ok = True
        return outcome
    outcome.errors += [r.get("error_type", "unknown") for r in outcome.parallel]
    retried = run_core(env, spec)  # the orchestrator tries again, one attempt at a time
    retried.attempts += outcome.attempts
    retried.errors = outcome.errors + retried.errors
    retried.parallel, retried.faults = outcome.parallel, outcome.faults
    return retried


def _stopped(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def run_zombie(env: ChaosEnv, spec: RunSpec) -> Outcome:
    zombie = _start(env, spec, "zombie", pause_after_claim=True)
    deadline = time.monotonic() + env.config.attempt_deadline
    while not _stopped(zombie.pid) and zombie.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    paused = _stopped(zombie.pid)
    if paused:
        time.sleep(env.config.zombie_lease + 0.3)  # its claim lapses (its process is alive: only the lease ends it)
    outcome = run_core(env, spec, claim_lease_seconds=env.config.zombie_lease)  # the attempt that takes over
    if paused:
        zombie.send_signal(signal.SIGCONT)  # the zombie wakes up
    reply = _reply(zombie, env.config.attempt_deadline, _log_path(env, spec, "zombie"))
    outcome.attempts += 1
    outcome.parallel = [reply]
    outcome.faults["zombies_paused"] += paused
    outcome.faults["zombies_not_paused"] += not paused
    if paused and reply.get("ok"):
        outcome.faults["zombies_reattached"] += 1
    return outcome


class _ConflictCounter(logging.Handler):
    """Counts the ledger writes an attempt lost to another writer (the ledger logs each)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "changed since it was read" in record.getMessage():
            self.seen += 1


CONFLICTS = _ConflictCounter()
logging.getLogger(LEDGER_LOGGER).addHandler(CONFLICTS)
logging.getLogger(LEDGER_LOGGER).setLevel(logging.DEBUG)


@contextmanager
def foreign_writer(env: ChaosEnv, spec: RunSpec, outcome_faults: dict[str, int]) -> Iterator[None]:
    """Rewrites the run's ledger (same record, a new version) until the block ends."""
    path = StagingArea(env.staging).ledger_path(spec.identity)
    store = S3LedgerStore(env.s3_server.filesystem(), path)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(env.config.ledger_rewrite_every):
            try:
                got = store.read()
                if got is None:
                    continue
                record = LedgerRecord.model_validate_json(got[0])
                record.updated_at = utc_now()  # the same record, a new version
                store.replace(record.model_dump_json(indent=1).encode(), got[1])
                outcome_faults["ledger_foreign_writes"] += 1
            except LedgerWriteConflict:
                pass  # the attempt wrote first: fine, it is the one under test
            except Exception:  # noqa: BLE001 - a store hiccup of the fault injector itself
                pass

    thread = threading.Thread(target=loop, name=f"chaos-ledger-{spec.index}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def run_ledger_conflict(env: ChaosEnv, spec: RunSpec) -> Outcome:
    faults: dict[str, int] = {"ledger_foreign_writes": 0}
    with foreign_writer(env, spec, faults):
        outcome = run_core(env, spec)
    outcome.faults.update(faults)
    return outcome


OVERLAP_DRIVERS = {"concurrent": run_concurrent, "zombie": run_zombie, "ledger_conflict": run_ledger_conflict}
