"""The example project from the command line: `dagster asset materialize`, `dg check yaml`
and `dg list components` as subprocesses (real CLIs, local Sutro server, moto S3)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.dagster.conftest import DAY, EXAMPLE_DIR, job_names

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=EXAMPLE_DIR, env=env, capture_output=True, text=True, timeout=timeout)


def files_containing(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {n}" for n in needles if n.encode() in data]
    return found


def test_dagster_asset_materialize(sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    database = tmp_path / "warehouse.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SUTRO_API_URL": sutro_clean.url,
        "SUTRO_API_KEY": sutro_clean.api_key,
        "SUTRO_STAGING_URL": f"s3://{sutro_s3_bucket}/staging",
        "SUTRO_S3_ENDPOINT_URL": sutro_s3_server.endpoint_url,
        "SUTRO_EXAMPLE_DUCKDB": str(database),
        "SUTRO_POLL_INTERVAL": "0.3",
    }
    proc = run([str(BIN / "dagster"), "asset", "materialize", "-m", "sutro_example.definitions",
                "-d", str(EXAMPLE_DIR), "--select", "support/tickets,support/tickets_triaged",
                "--partition", DAY], env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output
    with duckdb.connect(str(database)) as con:
        rows = con.execute("select count(*), count(distinct ticket_id), count(label), min(cast(created_at as date)) "
                           "from support.tickets_triaged").fetchone()
    assert rows[:3] == (24, 24, 24) and str(rows[3]) == DAY
    # one batch job (plus the free cost-estimate job that max_cost_usd asks for)
    batch, estimates = job_names(sutro_clean)
    assert len(batch) == 1 and len(estimates) == 1
    # neither the key nor a pre-signed URL in the output, the run storage or the compute logs
    assert sutro_clean.api_key not in output and "X-Amz-Signature" not in output
    assert files_containing(home, [sutro_clean.api_key, "X-Amz-Signature"]) == []


def test_dg_check_yaml_and_list_components(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DAGSTER_HOME": str(tmp_path)}
    check = run([str(BIN / "dg"), "check", "yaml"], env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "validated successfully" in check.stdout + check.stderr
    listed = run([str(BIN / "dg"), "list", "components", "--json", "--package", "dagster_sutro"], env)
    assert listed.returncode == 0, listed.stderr
    keys = [item["key"] for item in json.loads(listed.stdout)["items"]]
    assert keys == ["dagster_sutro.OpperFunctionComponent", "dagster_sutro.SutroFunctionComponent"]
