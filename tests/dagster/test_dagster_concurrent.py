"""Two re-executions of one failed Dagster run started at the same time, each in its
own process (same root run id, so the same run identity for the Sutro step): one
job on the local server; the one that does not hold the claim waits for the holder's
job id and reattaches, and both materialize the same rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from dagster_sutro.execution import identity_of
from sutro_providers.client.sutro import SutroClient
from sutro_providers.options import StagingLocation
from sutro_providers.staging.area import StagingArea
from tests.dagster.conftest import DAY, JobProcess
from tests.dagster.test_dagster_recovery import TRIAGED, triage_job

REEXECUTE = """
import logging, sys
import dagster as dg
from tests.dagster.test_dagster_recovery import triage_job
logging.basicConfig(level=logging.WARNING)
logging.getLogger("sutro_providers").setLevel(logging.INFO)
with dg.DagsterInstance.get() as instance:
    options = dg.ReexecutionOptions.from_failure(sys.argv[1], instance)
    with dg.execute_job(dg.reconstructable(triage_job), instance=instance, reexecution_options=options,
                        tags={"dagster/partition": sys.argv[2]}) as result:
        print("RESULT", result.success, result.run_id, flush=True)
"""


def _claimed_without_job(area: StagingArea, path: str) -> bool:
    if not area.fs.exists(path):
        return False
    ledger = json.loads(area.fs.cat_file(path))
    return any(s["state"] == "intent" and s["holder"] and not s["job_id"] for s in ledger["shards"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_reexecutions_at_once_pay_once(sutro_env: Any, sutro_s3_server: Any, sutro_s3_bucket: str,
                                          job_process: JobProcess, tmp_path: Path) -> None:
    repo, home, database, env = job_process.repo, job_process.home, job_process.database, job_process.env

    # the original run: the upstream lands, the Sutro step fails before any job (quotas answer 400)
    sutro_env.admin.set_faults([{"kind": "status", "endpoint": "get-quotas", "status": 400, "count": 1}])
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        with dg.execute_job(dg.reconstructable(triage_job), instance=instance, tags={"dagster/partition": DAY}) as first:
            assert not first.success
            root = first.run_id
    assert sutro_env.admin.job_count() == 0

    area = StagingArea(StagingLocation(url=f"s3://{sutro_s3_bucket}/staging",
                                       storage_options=sutro_s3_server.storage_options))
    ledger = area.ledger_path(identity_of(TRIAGED, DAY, root))
    # the first create call waits in the server (its claim held all along) until the test releases it, once
    # the other re-execution is seen waiting for the holder's job id (at most 150 s; triage_job's read
    # timeout is 180 s); its job stays RUNNING until released
    sutro_env.admin.set_faults([{"kind": "hold_request", "endpoint": "batch-inference", "latency_ms": 150_000,
                                 "count": 1},
                                {"kind": "hold_job", "count": 1}])
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        with (tmp_path / f"{name}.log").open("wb") as out:
            procs[name] = subprocess.Popen([sys.executable, "-c", REEXECUTE, root, DAY], env=env, cwd=repo,
                                           stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def log(name: str) -> str:
        return (tmp_path / f"{name}.log").read_text(errors="replace")

    def wait_for(what: str, check: Any, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{log(name)[-4000:]}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.5)

    try:
        start("a")
        start("b")
        wait_for("a claim on the shard", lambda: _claimed_without_job(area, ledger))
        waiting: list[str] = []
        wait_for("the other re-execution to wait for the claim holder's job",
                 lambda: waiting.extend(n for n in procs if "waiting for its job id" in log(n)) or waiting)
        (other,) = set(waiting)
        assert sutro_env.admin.job_count() == 0  # the holder is still inside its (held) paid call
        # the other has met the holder's claim while the holder is still inside its call: let the call go on
        assert sutro_env.admin.held_requests() == {"batch-inference": 1}
        assert sutro_env.admin.release_requests("batch-inference") == 1
        wait_for("the job", lambda: sutro_env.admin.job_count() == 1)
        with SutroClient(sutro_env.url, sutro_env.api_key) as client:
            (job,) = list(client.iter_jobs())
        wait_for("the other to reattach", lambda: f"reattaching to job {job.job_id}" in log(other))
        sutro_env.admin.release(job.job_id)
        for name, proc in procs.items():
            proc.wait(300)
            assert "RESULT True" in log(name), log(name)[-4000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the groups this test started
                proc.wait(30)
    assert sutro_env.admin.job_count() == 1  # one paid job for the two re-executions
    (holder,) = [n for n in procs if n != other]
    assert f"submitted job {job.job_id}" in log(holder) and "submitted job" not in log(other)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        runs = [r for r in instance.get_runs() if r.run_id != root]
        assert len(runs) == 2 and all(r.root_run_id == root for r in runs)
        records = instance.fetch_materializations(TRIAGED, limit=10).records
        assert sorted(r.run_id for r in records) == sorted(r.run_id for r in runs)  # both materialized it
        ids = {r.asset_materialization.metadata["sutro/job_ids"].value for r in records}  # type: ignore[union-attr]
    assert ids == {job.job_id}  # on the same job
    with duckdb.connect(database) as con:
        assert con.execute("select count(*), count(distinct ticket_id), count(label) from support.tickets_triaged"
                           ).fetchone() == (24, 24, 24)
