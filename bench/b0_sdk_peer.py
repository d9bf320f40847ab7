"""B0 (peer): the official ``sutro`` SDK 0.1.67 and this package, each turning the same
pandas DataFrame of support tickets into an enriched DataFrame on the local server.

The SDK runs in its own venv (``.venv-sdk``, built as tests/compat does), this
package in the project venv; each measurement is a fresh process that builds the
DataFrame (not timed), then times ``batch_run_function`` + ``await_job_completion``
(SDK) or ``EnrichmentPipeline.run(...).to_pandas()`` (ours, staging on moto S3).
Runs are interleaved (SDK, ours, SDK, ours...). Reported: wall time and peak RSS
above the process's RSS after the DataFrame was built.

    .venv/bin/python bench/b0_sdk_peer.py                  # 1M rows, 2 runs each
    .venv/bin/python bench/b0_sdk_peer.py --rows 200000
    .venv/bin/python bench/b0_sdk_peer.py --smoke          # 2,000 rows, 1 run each
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from _common import ROOT, mib, parser, print_table, s3_server, sutro_server

sys.path.insert(0, str(ROOT))

FRAME = """
import numpy as np, pandas as pd
SUBJECTS = {subjects!r}
def frame(rows):
    ids = np.arange(rows, dtype=np.int64)
    text = ids.astype(str)
    subject = np.array(SUBJECTS, dtype=object)[ids & 3]
    body = "Customer " + pd.Series(text) + " writes about the Acme plan " + pd.Series(text) + " again"
    return pd.DataFrame({{"subject": subject, "body": body.to_numpy(dtype=object), "ticket_id": ids}})
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
def reset():
    import gc; gc.collect(); open("/proc/self/clear_refs", "w").write("5")
"""

SDK_SIDE = """
import json, os, sys, time
from sutro import Sutro
df = frame(int(sys.argv[1]))
reset(); base = rss(); started = time.perf_counter()
so = Sutro()
job = so.batch_run_function("ticket-triage", df, job_priority=1)  # id_column: URL inputs only
assert isinstance(job, str), job
while so.get_job_status(job) not in ("SUCCEEDED", "FAILED", "CANCELLED"):
    time.sleep(0.5)
out = so.await_job_completion(job)
assert out is not None and len(out) == len(df), out
print(json.dumps({"seconds": time.perf_counter() - started, "above": hwm() - base, "rows": len(out)}))
"""

OURS_SIDE = """
import json, os, sys, time, secrets
from sutro_providers import SutroClient
from sutro_providers.identity import RunIdentity
from sutro_providers.options import EnrichmentOptions, StagingLocation
from sutro_providers.pipeline import EnrichmentPipeline
df = frame(int(sys.argv[1]))
storage = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": os.environ["B0_S3"]}}
reset(); base = rss(); started = time.perf_counter()
with SutroClient(os.environ["SUTRO_API_URL"], os.environ["SUTRO_API_KEY"]) as client:
    pipeline = EnrichmentPipeline(client, StagingLocation(url=os.environ["B0_STAGING"], storage_options=storage))
    result = pipeline.run(df, RunIdentity.of("bench", case="b0", nonce=secrets.token_hex(4)),
                          EnrichmentOptions(function="ticket-triage", id_column="ticket_id", poll_interval=0.5,
                                            max_poll_interval=2.0))
    out = result.to_pandas()
assert len(out) == len(df)
print(json.dumps({"seconds": time.perf_counter() - started, "above": hwm() - base, "rows": len(out)}))
"""


def side(python: str, code: str, rows: int, env: dict[str, str]) -> dict[str, Any]:
    from _common import SUBJECTS

    proc = subprocess.run([python, "-c", FRAME.format(subjects=SUBJECTS) + code, str(rows)], capture_output=True,
                          text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args()
    rows, repeat = (2_000, 1) if args.smoke else (args.rows, args.repeat or 2)
    from tests.compat.sdk_venv import ensure_sdk_venv

    sdk_python = str(ensure_sdk_venv())
    sdk, ours = [], []
    with s3_server() as s3, sutro_server() as sutro:
        bucket = s3.create_bucket("bench-b0")
        env = {**os.environ, "SUTRO_API_URL": sutro.url, "SUTRO_API_KEY": sutro.api_key, "B0_S3": s3.endpoint_url,
               "B0_STAGING": f"s3://{bucket}/staging", "PYTHONPATH": str(ROOT)}
        sdk_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        for _ in range(repeat):
            sdk.append(side(sdk_python, SDK_SIDE, rows, sdk_env))
            ours.append(side(sys.executable, OURS_SIDE, rows, env))
            time.sleep(1)
    table = [["sutro SDK 0.1.67", i + 1, s["seconds"], mib(s["above"])] for i, s in enumerate(sdk)]
    table += [["sutro-providers", i + 1, o["seconds"], mib(o["above"])] for i, o in enumerate(ours)]
    best = lambda runs, k: min(r[k] for r in runs)  # noqa: E731
    print_table(f"B0 official SDK vs sutro-providers: pandas DataFrame of {rows:,} rows -> enriched DataFrame",
                ["side", "run", "wall s", "peak RSS above the DataFrame"], table,
                [f"best wall: SDK {best(sdk, 'seconds'):.1f} s, ours {best(ours, 'seconds'):.1f} s; "
                 f"peak: SDK {mib(best(sdk, 'above'))}, ours {mib(best(ours, 'above'))}"])


if __name__ == "__main__":
    main()
