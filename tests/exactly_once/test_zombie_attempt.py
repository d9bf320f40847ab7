"""A zombie attempt: paused (SIGSTOP) right after its claim on a shard was written and
before its paid call, long enough for the claim's lease to run out; another attempt
then runs the whole run; the zombie resumes (SIGCONT). It must not create a job of its
own: it finds the shard taken, reattaches and returns the same complete table."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sutro_providers.client.sutro import SutroClient
from sutro_providers.identity import RunIdentity
from sutro_providers.options import EnrichmentOptions, StagingLocation
from sutro_providers.pipeline import EnrichmentPipeline

REPO = Path(__file__).resolve().parents[2]
ROWS = [{"ticket_id": f"t{i:03d}", "subject": f"Subject {i}", "body": f"Body {i}.", "customer_tier": "pro"}
        for i in range(40)]
LEASE = 2.0


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.timeout(300)
def test_a_zombie_resumed_after_its_lease_does_not_pay(sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str,
                                                       tmp_path: Path) -> None:
    staging = StagingLocation(url=f"s3://{sutro_s3_bucket}/sutro", storage_options=sutro_s3_server.storage_options)
    options = EnrichmentOptions(function="ticket-triage", id_column="ticket_id",
                                poll_interval=0.2, max_poll_interval=0.5, timeout=120, claim_lease_seconds=LEASE)
    request = {"url": sutro_clean.url, "api_key": sutro_clean.api_key, "staging": staging.model_dump(mode="json"),
               "options": options.model_dump(mode="json"), "rows": ROWS, "path": "zombie", "index": 0,
               "pause_after_claim": True}
    log = tmp_path / "zombie.log"
    zombie = subprocess.Popen([sys.executable, "-m", "tests.chaos.attempt"], cwd=REPO, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log.open("w"))
    assert zombie.stdin is not None
    zombie.stdin.write(json.dumps(request))
    zombie.stdin.close()
    zombie.stdin = None  # written: communicate() below only reads
    try:
        deadline = time.monotonic() + 120
        while not _stopped(zombie.pid):
            assert zombie.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the attempt never paused after its claim"
            time.sleep(0.05)
        assert sutro_clean.admin.job_count() == 0  # paused between its claim and its paid call
        time.sleep(LEASE + 0.5)  # its lease runs out (its process is alive: only the lease ends the claim)

        with SutroClient(sutro_clean.url, sutro_clean.api_key) as client:
            other = EnrichmentPipeline(client, staging).run(ROWS, RunIdentity.of("chaos", path="zombie", index=0),
                                                            options)
        assert sutro_clean.admin.job_count() == 1  # the other attempt created the job
    finally:
        if zombie.poll() is None:
            zombie.send_signal(signal.SIGCONT)  # wake the zombie up
    out, _ = zombie.communicate(timeout=180)
    reply = json.loads(out.strip().splitlines()[-1])
    assert reply["ok"], reply
    assert sutro_clean.admin.job_count() == 1  # the zombie paid for nothing
    assert reply["job_ids"] == sorted(other.manifest.job_ids)
    assert reply["ids"] == [r["ticket_id"] for r in ROWS] and reply["null_labels"] == 0
    assert "claim lapsed before its job was created" in log.read_text()
