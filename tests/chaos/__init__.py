"""Chaos runs: many enrichment runs through the core pipeline, the real-time
runner, the Airflow operator/trigger and the Dagster asset, against a local Sutro
server injecting faults (5xx/524, dropped connections, 429s, FAILED jobs, results
not ready, dropped progress streams, server and triggerer restarts), each run
retried like its orchestrator would, and every outcome checked.

Command line::

    python -m tests.chaos --runs 200 --seed 1          # text report
    python -m tests.chaos --runs 200 --seed 1 --json   # JSON report

In Python (e.g. with the pytest plugin's servers)::

    from tests.chaos import ChaosConfig, run_chaos
    report = run_chaos(ChaosConfig(runs=12, restart_every=6), server=sutro_server, s3=sutro_s3_server)
    assert report.passed
"""

from tests.chaos.config import ChaosConfig, RunSpec, plan_runs
from tests.chaos.report import ChaosReport, RunCheck
from tests.chaos.runner import ChaosRunner, run_chaos

__all__ = ["ChaosConfig", "ChaosReport", "ChaosRunner", "RunCheck", "RunSpec", "plan_runs", "run_chaos"]
