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


def cli_env(sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str, home: Path, database: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DAGSTER_HOME": str(home),
        "SUTRO_API_URL": sutro_clean.url,
        "SUTRO_API_KEY": sutro_clean.api_key,
        "SUTRO_STAGING_URL": f"s3://{sutro_s3_bucket}/staging",
        "SUTRO_S3_ENDPOINT_URL": sutro_s3_server.endpoint_url,
        "SUTRO_EXAMPLE_DUCKDB": str(database),
        "SUTRO_POLL_INTERVAL": "0.3",
    }


def batch_jobs_by_function(server: Any) -> dict[str, int]:
    from sutro_providers.client.sutro import SutroClient

    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        models = [j.model or "" for j in client.iter_jobs() if not (j.name or "").endswith("est")]
    return {m: models.count(m) for m in sorted(set(models))}


STATIC_SELECTION = "support/ticket_backlog,support/backlog_triaged,support/backlog_sentiment"
HOURLY_SELECTION = "sales/leads,sales/leads_enriched"
HOUR = "2026-11-20-09:00"


@pytest.mark.timeout(1200)
def test_three_functions_over_two_tables_from_the_cli(sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str,
                                                      tmp_path: Path) -> None:
    """The same graph, built by build_sutro_assets_definitions (``dagster asset materialize``:
    a static and an hourly partition) and by the Component YAML (``dg launch``: a static one)."""
    factory = tmp_path / "factory.duckdb"
    env = cli_env(sutro_clean, sutro_s3_server, sutro_s3_bucket, tmp_path / "home_factory", factory)
    for selection, partition in ((STATIC_SELECTION, "pro"), (HOURLY_SELECTION, HOUR)):
        assert_cli_success(run([str(BIN / "dagster"), "asset", "materialize", "-m", "sutro_example.multi_definitions",
                                "-d", str(EXAMPLE_DIR), "--select", selection, "--partition", partition], env),
                           sutro_clean.api_key)
    with duckdb.connect(str(factory)) as con:
        assert backlog_rows(con) == ((8, 8, "pro", "pro"), (8, 8))
        leads = con.execute("select count(*), count(lead_company), min(received_at), max(received_at) "
                            "from sales.leads_enriched").fetchone()
    assert leads[:2] == (6, 6) and {str(v)[:13] for v in leads[2:]} == {"2026-11-20 09"}
    # one job per Function and partition
    assert batch_jobs_by_function(sutro_clean) == {"lead-extractor": 1, "ticket-sentiment": 1, "ticket-triage": 1}

    component = tmp_path / "component.duckdb"
    env = cli_env(sutro_clean, sutro_s3_server, sutro_s3_bucket, tmp_path / "home_component", component)
    assert_cli_success(run([str(BIN / "dg"), "launch", "--assets", STATIC_SELECTION, "--partition", "free"], env),
                       sutro_clean.api_key)
    with duckdb.connect(str(component)) as con:
        assert backlog_rows(con) == ((8, 8, "free", "free"), (8, 8))
    assert batch_jobs_by_function(sutro_clean) == {"lead-extractor": 1, "ticket-sentiment": 2, "ticket-triage": 2}


def assert_cli_success(proc: subprocess.CompletedProcess[str], api_key: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output
    assert api_key not in output and "X-Amz-Signature" not in output


def backlog_rows(con: Any) -> tuple[Any, Any]:
    return (con.execute("select count(*), count(label), min(customer_tier), max(customer_tier) "
                        "from support.backlog_triaged").fetchone(),
            con.execute("select count(*), count(label) from support.backlog_sentiment").fetchone())


def test_dg_check_yaml_and_list_components(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DAGSTER_HOME": str(tmp_path)}
    check = run([str(BIN / "dg"), "check", "yaml"], env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "validated successfully" in check.stdout + check.stderr
    listed = run([str(BIN / "dg"), "list", "components", "--json", "--package", "dagster_sutro"], env)
    assert listed.returncode == 0, listed.stderr
    keys = [item["key"] for item in json.loads(listed.stdout)["items"]]
    assert keys == ["dagster_sutro.OpperFunctionComponent", "dagster_sutro.SutroFunctionComponent"]
