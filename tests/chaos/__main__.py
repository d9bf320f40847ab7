"""``python -m tests.chaos --runs 200 --seed 1 [--json]``: exit 0 when every invariant held."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from tests.chaos.config import PATHS, ChaosConfig
from tests.chaos.runner import run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}")
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--restart-every", type=int, default=50, help="restart the server every N finished runs (0: never)")
    parser.add_argument("--max-attempts", type=int, default=4, help="orchestrator tries per run")
    parser.add_argument("--overlap-every", type=int, default=2,
                        help="one core run in N gets an overlap fault: concurrent, zombie, ledger_conflict in turn (0: none)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON report to this file")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "botocore", "s3fs", "werkzeug"):  # request logs carry signed URLs
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = ChaosConfig(runs=args.runs, seed=args.seed, paths=tuple(p.strip() for p in args.paths.split(",") if p.strip()),
                         concurrency=args.concurrency, restart_every=args.restart_every, max_attempts=args.max_attempts,
                         overlap_every=args.overlap_every)
    with contextlib.redirect_stdout(sys.stderr):  # orchestrator logs go to stderr; stdout is the report
        report = run_chaos(config)
    print(report.to_json() if args.json else report.to_text())
    if args.out:
        args.out.write_text(report.to_json())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
