"""B3: 100k rows from a pandas DataFrame to a created job, against inline JSON rows.

Ours: ``EnrichmentPipeline.submit`` (validate, stage Parquet on moto S3, sign,
``POST batch-inference`` with the signed URL, ledger writes). Floor: what the
official SDK does with a DataFrame: the rows as JSON objects in the request body,
POSTed with httpx. Both end when the server answers with the job id (the server
ingests the rows before answering in both cases). Each measurement runs in a
fresh process; the job is cancelled afterwards so it does not load the machine.

    .venv/bin/python bench/b3_submit.py            # 100,000 rows, 3 runs per side
    .venv/bin/python bench/b3_submit.py --smoke    # 2,000 rows, 1 run

Targets: ours >= 5x faster; our request body <= 2 KB.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from _common import (
    FUNCTION,
    alternate,
    in_child,
    measure,
    median,
    parser,
    preload,
    print_table,
    s3_server,
    sutro_server,
    tickets_pandas,
    verdict,
)


def floor(rows: int, url: str, key: str) -> dict[str, Any]:
    """Inline rows: DataFrame -> list of dicts -> JSON body -> POST."""
    import httpx

    df = tickets_pandas(rows)
    with httpx.Client(base_url=url, headers={"Authorization": f"Key {key}"}, timeout=600) as http:
        http.get("/v1/auth/check").raise_for_status()  # connect outside the measurement
        with measure() as out:
            inputs = df[["subject", "body"]].to_dict("records")  # the SDK sends the rows as JSON objects
            body = json.dumps({"model": FUNCTION, "inputs": inputs, "job_priority": 1}).encode()
            posted = time.perf_counter()
            resp = http.post("/v1/batch-inference", content=body, headers={"Content-Type": "application/json"})
            resp.raise_for_status()
            job_id = resp.json()["results"]
            post_s = time.perf_counter() - posted
        out["value"] = {"body_bytes": len(resp.request.content), "post_s": post_s}
        http.get(f"/v1/job-cancel/{job_id}")
    return out


def ours(rows: int, url: str, key: str, storage_options: dict[str, Any], bucket: str) -> dict[str, Any]:
    """EnrichmentPipeline.submit with a staged, signed URL."""
    import httpx

    from sutro_providers import SutroClient
    from sutro_providers.identity import RunIdentity
    from sutro_providers.options import EnrichmentOptions, StagingLocation
    from sutro_providers.pipeline import EnrichmentPipeline

    df = tickets_pandas(rows)[["subject", "body"]]
    bodies: list[int] = []

    def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/batch-inference"):
            bodies.append(len(request.read()))

    post_s: list[float] = []
    with SutroClient(url, key) as client:
        client._http.event_hooks["request"].append(record)  # measure only: the size of what we send
        create_job = client.create_job

        def timed_create_job(**request: Any) -> str:
            posted = time.perf_counter()
            try:
                return create_job(**request)
            finally:
                post_s.append(time.perf_counter() - posted)

        client.create_job = timed_create_job  # type: ignore[method-assign]
        pipeline = EnrichmentPipeline(client, StagingLocation(url=f"s3://{bucket}/sutro", storage_options=storage_options))
        pipeline.area.exists(f"{bucket}/sutro")  # connect outside the measurement
        client.auth_check()
        identity = RunIdentity.of("bench", case="b3", nonce=secrets.token_hex(4))
        with measure() as out:
            manifest = pipeline.submit(df, identity, EnrichmentOptions(function=FUNCTION))
        assert manifest.state == "submitted" and len(manifest.job_ids) == 1, manifest
        pipeline.cancel(identity)
    out["value"] = {"body_bytes": bodies[0], "stage_s": manifest.timings.get("stage_s"), "post_s": sum(post_s)}
    return out


def warm_up(s3: Any, sutro: Any, bucket: str) -> None:
    """One tiny job of each kind first, so the server's lazy imports and first-request
    costs are not charged to whichever side is measured first."""
    import io

    import httpx
    import pyarrow.parquet as pq
    from _common import tickets_arrow

    sink = io.BytesIO()
    pq.write_table(tickets_arrow(10), sink)
    s3.put(f"{bucket}/warm-up.parquet", sink.getvalue())
    with httpx.Client(base_url=sutro.url, headers={"Authorization": f"Key {sutro.api_key}"}, timeout=120) as http:
        for inputs in (tickets_arrow(10).select(["subject", "body"]).to_pylist(), s3.presigned_url(f"{bucket}/warm-up.parquet")):
            resp = http.post("/v1/batch-inference", json={"model": FUNCTION, "inputs": inputs, "job_priority": 1})
            resp.raise_for_status()


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    rows = 2_000 if args.smoke else 100_000
    repeat = args.repeat or (1 if args.smoke else 3)
    preload("httpx", "s3fs", "sutro_providers.pipeline")
    with s3_server() as s3, sutro_server() as sutro:
        bucket = s3.create_bucket("bench-b3")
        warm_up(s3, sutro, bucket)
        floors, ourses = alternate(
            repeat,
            lambda: in_child(floor, rows, sutro.url, sutro.api_key),
            lambda: in_child(ours, rows, sutro.url, sutro.api_key, s3.storage_options, bucket),
        )
    f_time, o_time = median([m.seconds for m in floors]), median([m.seconds for m in ourses])
    speedup, body = f_time / o_time, ourses[0].value["body_bytes"]
    print_table(
        f"B3 DataFrame -> job created, {rows:,} rows, median of {repeat}",
        ["side", "seconds (each run)", "median s", "of which POST (server ingest)", "CPU s (client)", "request body"],
        [
            ["floor: inline JSON rows (SDK way)", " ".join(f"{m.seconds:.2f}" for m in floors), f_time, median([m.value["post_s"] for m in floors]),
             median([m.cpu_seconds for m in floors]), f"{floors[0].value['body_bytes']:,} B"],
            ["ours: pipeline.submit (staged URL)", " ".join(f"{m.seconds:.2f}" for m in ourses), o_time, median([m.value["post_s"] for m in ourses]),
             median([m.cpu_seconds for m in ourses]), f"{body:,} B"],
        ],
        [f"of ours, staging took {median([m.value['stage_s'] for m in ourses]):.2f} s (manifest timings)",
         f"speed-up floor/ours {speedup:.1f}x (target >= 5x: {verdict(speedup >= 5)}); "
         f"request body {body:,} B (target <= 2 KB: {verdict(body <= 2048)})"],
    )


if __name__ == "__main__":
    main()
