"""Every fenced code snippet in the README and docs/ is executed, so the docs
cannot rot: ``python`` blocks run against the local Sutro server and a moto S3
server, ``bash`` blocks are run (servers are started and stopped), ``yaml``
Component blocks are validated by the Component's own model.

A block whose first line is ``# not run: <reason>`` is skipped with that reason;
use it only for output samples or commands that need a real deployment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def snippets() -> list[Any]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in FENCE.finditer(text):
            lang, code = match.group(1), match.group(2)
            line = text[: match.start()].count("\n") + 1
            found.append(pytest.param(lang, code, id=f"{doc.relative_to(REPO)}:{line}:{lang}"))
    return found


@pytest.fixture
def docs_env(sutro_env: Any, sutro_s3_server: Any, sutro_s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What a reader has set: the API URL/key, a staging bucket and S3 endpoint."""
    env = {
        "SUTRO_STAGING_URL": f"s3://{sutro_s3_bucket}/sutro",
        "AWS_ENDPOINT_URL_S3": sutro_s3_server.endpoint_url,
        "SUTRO_S3_ENDPOINT_URL": sutro_s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    opper = {"OPPER_BASE_URL": sutro_env.url, "OPPER_API_KEY": sutro_env.api_key}  # the local server's Opper routes
    for key, value in opper.items():
        monkeypatch.setenv(key, value)
    return {**env, **opper, "SUTRO_API_URL": sutro_env.url, "SUTRO_API_KEY": sutro_env.api_key}


def run_python(code: str) -> None:
    namespace: dict[str, Any] = {"__name__": "__snippet__"}
    exec(compile(code, "<snippet>", "exec"), namespace)  # noqa: S102 - the docs are our own
    defs = namespace.get("defs")
    if defs is not None:  # a Dagster snippet: materialize everything it defines
        import dagster as dg

        assert isinstance(defs, dg.Definitions)
        job = defs.resolve_implicit_global_asset_job_def()
        with dg.instance_for_test() as instance:
            assert job.execute_in_process(instance=instance).success


def run_bash(code: str, env: dict[str, str]) -> None:
    env = dict(env)
    for command in [c for c in code.replace("\\\n", " ").splitlines() if c.strip()]:
        if command.startswith("export "):
            name, _, value = command[len("export "):].partition("=")
            value = shlex.split(value)[0]
            if name.startswith("AIRFLOW_CONN_"):  # must be a valid Airflow connection
                from airflow.sdk import Connection

                conn = Connection.from_json(value, conn_id=name[len("AIRFLOW_CONN_"):].lower())
                assert conn.conn_type and json.loads(value)
            elif name.startswith("SUTRO_LOCAL_"):  # read by the sutro-local commands that follow
                env[name] = value
            continue
        if command.startswith("sutro-local serve"):
            port = _free_port()
            args = shlex.split(command.replace("--port 8765", f"--port {port}"))
            proc = subprocess.Popen([str(Path(sys.executable).parent / args[0]), *args[1:], "--data-dir",
                                     str(REPO / ".tmp" / f"docs-{port}")], cwd=REPO, env={**os.environ, **env})
            try:
                key = args[args.index("--api-key") + 1] if "--api-key" in args else env["SUTRO_LOCAL_API_KEY"]
                _wait_ok(f"http://127.0.0.1:{port}/v1/auth/check", key)
            finally:
                proc.terminate()
                proc.wait(timeout=20)
            continue
        raise AssertionError(f"the snippet test does not know how to run: {command}")


def run_yaml(code: str) -> None:
    import dagster_sutro

    data = yaml.safe_load(code)
    components = {f"dagster_sutro.{c}": getattr(dagster_sutro, c) for c in ("SutroFunctionComponent", "OpperFunctionComponent")}
    assert data["type"] in components, data["type"]
    components[data["type"]].model().model_validate(data["attributes"])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ok(url: str, key: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers={"Authorization": f"Key {key}"}, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@pytest.mark.parametrize(("lang", "code"), snippets())
def test_snippet_runs(lang: str, code: str, docs_env: dict[str, str]) -> None:
    if code.startswith("# not run:"):
        pytest.skip(code.splitlines()[0])
    if lang == "python":
        run_python(code)
    elif lang == "bash":
        run_bash(code, docs_env)
    elif lang == "yaml":
        run_yaml(code)
    elif lang not in ("text", "json"):
        raise AssertionError(f"no runner for {lang} snippets")
