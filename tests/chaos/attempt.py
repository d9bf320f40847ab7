"""One attempt of a chaos run in a process of its own (``python -m tests.chaos.attempt``),
as a second worker or a re-execution started twice would run it.

The parent writes a JSON request on stdin (server, staging, options, rows, the
run's path and index, and ``pause_after_claim``); the child runs
:meth:`EnrichmentPipeline.run` once and prints one JSON line on stdout: ``ok``,
the returned ``ids`` in order, ``null_labels``, ``job_ids``, or ``error``.

``pause_after_claim`` makes a zombie: right after this attempt's first claim on a
shard is written (before the paid call), the process stops itself with SIGSTOP.
The parent lets its claim lapse, runs another attempt, and resumes it with
SIGCONT; it must then not create a job of its own (it finds the shard taken).
"""

from __future__ import annotations

import faulthandler
import json
import logging
import signal
import sys
import threading
import time
from typing import Any


def _pause_after_first_claim() -> None:
    from sutro_providers.submission.submitter import ShardSubmitter

    claim = ShardSubmitter._claim
    paused = False

    def claim_then_stop(self: ShardSubmitter, record: Any, index: int) -> bool:
        nonlocal paused
        won = claim(self, record, index)
        if won and not paused:
            paused = True
            # the parent resumes it with SIGCONT; the stop of a process with several threads is not
            # immediate (this thread ran on into its paid call before it took effect): send it to this
            # thread and sleep, so that nothing runs on before the stop
            signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
            time.sleep(0.5)
        return won

    ShardSubmitter._claim = claim_then_stop  # type: ignore[method-assign]


def attempt(request: dict[str, Any]) -> dict[str, Any]:
    from sutro_providers.client.sutro import SutroClient
    from sutro_providers.errors import SutroError
    from sutro_providers.identity import RunIdentity
    from sutro_providers.options import EnrichmentOptions, StagingLocation
    from sutro_providers.pipeline import EnrichmentPipeline
    from tests.chaos.env import RETRY

    if request.get("pause_after_claim"):
        _pause_after_first_claim()
    identity = RunIdentity.of("chaos", path=request["path"], index=request["index"])
    options = EnrichmentOptions.model_validate(request["options"])
    with SutroClient(request["url"], request["api_key"], retry=RETRY) as client:
        pipeline = EnrichmentPipeline(client, StagingLocation.model_validate(request["staging"]))
        try:
            result = pipeline.run(request["rows"], identity, options)
        except SutroError as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400], "error_type": type(exc).__name__}
    table = result.table
    assert table is not None  # materialized
    return {"ok": True, "ids": table["ticket_id"].to_pylist(), "null_labels": table["label"].null_count,
            "job_ids": sorted(result.manifest.job_ids)}


def main() -> int:
    faulthandler.register(signal.SIGUSR1)  # the parent asks for every thread's stack before killing a hung attempt
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("sutro_providers").setLevel(logging.INFO)
    request = json.loads(sys.stdin.read())
    try:
        reply = attempt(request)
    except Exception as exc:  # noqa: BLE001 - not one of ours: reported as an unclear failure
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400], "error_type": type(exc).__name__,
                 "unclear": True}
    sys.stdout.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
