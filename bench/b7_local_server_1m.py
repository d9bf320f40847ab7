"""B7: a 1M-row Function job through the local server, end to end.

Starts a moto S3 server and ``sutro-local`` (subprocess), stages an N-row
Parquet (``ticket_id``, ``subject``, ``body``) on S3, submits ``ticket-triage``
by pre-signed URL with ``id_column_name``, waits for SUCCEEDED, then
downloads the results-url artifact and checks rows and id order.

    .venv/bin/python bench/b7_local_server_1m.py            # 1,000,000 rows
    .venv/bin/python bench/b7_local_server_1m.py --rows 10000

Prints wall time per phase; "server job time" is datetime_completed minus
datetime_created from the job record (download + validation + inference +
results, including the default 0.2 s start-up and 0.3 s minimum run).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sutro_providers.local.moto_s3 import MotoS3
from sutro_providers.local.server import LocalSutroServer

ROOT = Path(__file__).resolve().parent.parent
SUBJECTS = ["Refund request", "App crashes on login", "Feature idea", "Cannot reset password", "Invoice question"]


def make_table(rows: int) -> pa.Table:
    ids = pa.array(range(rows), pa.int64())
    text_ids = pc.cast(ids, pa.string())
    subjects = pa.array(SUBJECTS).take(pc.cast(pc.bit_wise_and(ids, 3), pa.int32()))
    body = pc.binary_join_element_wise("Customer ", text_ids, " writes about Acme plan ", text_ids, "")
    return pa.table({"ticket_id": ids, "subject": subjects, "body": body})


def timed(phases: list[tuple[str, float]], name: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = fn()
    phases.append((name, time.perf_counter() - started))
    return value


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs signed URLs
    for key, value in MotoS3.CREDENTIALS.items():
        os.environ.setdefault(key, value)
    phases: list[tuple[str, float]] = []
    total = time.perf_counter()
    s3 = timed(phases, "start moto S3", lambda: MotoS3().start())
    server = timed(phases, "start sutro-local", lambda: LocalSutroServer(ROOT / "example_dags" / "functions", workers=args.workers).start())
    try:
        table = timed(phases, f"build {args.rows:,} rows", lambda: make_table(args.rows))

        def stage() -> str:
            sink = io.BytesIO()
            pq.write_table(table, sink)
            s3.create_bucket("bench")
            s3.put("bench/tickets.parquet", sink.getvalue())
            return s3.presigned_url("bench/tickets.parquet")

        url = timed(phases, "stage Parquet on S3", stage)
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Key {server.api_key}"}, timeout=600)

        def submit() -> str:
            body = {"model": "ticket-triage", "inputs": url, "id_column_name": "ticket_id", "job_priority": 1}
            resp = api.post("/v1/batch-inference", json=body)
            resp.raise_for_status()
            return str(resp.json()["results"])

        job_id = timed(phases, "submit (server downloads + validates)", submit)

        def wait() -> dict[str, Any]:
            while True:
                status = api.get(f"/v1/job-status/{job_id}").json()["job_status"][job_id]
                if status in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()["job"]
                    if status != "SUCCEEDED":
                        raise SystemExit(f"job ended {status}: {job['failure_reason']}")
                    return job
                time.sleep(0.1)

        job = timed(phases, "wait for SUCCEEDED", wait)

        def download() -> pa.Table:
            payload = api.get(f"/v1/jobs/{job_id}/results-url", params={"include_inputs": "false"}).json()
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / payload["artifact"]["filename"]
                with httpx.stream("GET", payload["urls"]["get"], timeout=600) as resp, target.open("wb") as fh:
                    resp.raise_for_status()
                    for chunk in resp.iter_bytes(1 << 20):
                        fh.write(chunk)
                return pq.read_table(target)

        results = timed(phases, "results-url + download + read", download)
        assert results.num_rows == args.rows, results.num_rows
        assert results["ticket_id"].equals(table["ticket_id"]), "ids out of order"
        server_seconds = (_ts(job["datetime_completed"]) - _ts(job["datetime_created"])).total_seconds()
    finally:
        server.stop()
        s3.stop()
    width = max(len(n) for n, _ in phases) + 2
    print(f"\nB7 local server, {args.rows:,} rows, ticket-triage, {args.workers} workers")
    print(f"{'phase':<{width}}seconds")
    for name, seconds in phases:
        print(f"{name:<{width}}{seconds:8.2f}")
    print(f"{'server job time (created→completed)':<{width}}{server_seconds:8.2f}")
    print(f"{'total wall':<{width}}{time.perf_counter() - total:8.2f}")
    print(f"input tokens {job['input_tokens']:,}, output tokens {job['output_tokens']:,}, job cost ${job['job_cost']}")


if __name__ == "__main__":
    main()
