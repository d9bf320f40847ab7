"""``sutro-local``: run the local Sutro-compatible server.

Example::

    sutro-local serve --port 8765 --functions example_dags/functions \\
        --api-key sk_local_dev --data-dir .sutro-local

then point the SDK or a client at it: ``SUTRO_API_URL=http://127.0.0.1:8765
SUTRO_API_KEY=sk_local_dev``. The key may also come from the environment
variable ``SUTRO_LOCAL_API_KEY`` (keeps it out of ``ps``). SIGTERM/SIGINT shut
down cleanly; unfinished jobs resume on the next start with the same data dir.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
import yaml

from sutro_providers.local.settings import Quota, ServerSettings


def load_fault_file(path: Path) -> list[dict[str, Any]]:
    """Rules from a JSON/YAML file: a list, or ``{"rules": [...]}``."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list):
        raise click.BadParameter(f"{path} must hold a list of fault rules")
    return rules


@click.group()
def main() -> None:
    """Local Sutro-compatible batch-LLM server."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--functions", "functions_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of Function spec YAML/JSON files.")
@click.option("--api-key", envvar="SUTRO_LOCAL_API_KEY", show_envvar=True, required=True,
              help="Key clients must send as 'Authorization: Key <key>'. Safer from the environment "
                   "variable SUTRO_LOCAL_API_KEY: an option shows in ps and the shell history.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".sutro-local"), show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--startup-seconds", default=0.2, show_default=True, type=float)
@click.option("--min-run-seconds", default=0.3, show_default=True, type=float)
@click.option("--row-quota-p0", default=1_000, show_default=True, type=int)
@click.option("--row-quota-p1", default=10_000_000, show_default=True, type=int)
@click.option("--token-quota-p0", default=1_000_000, show_default=True, type=int)
@click.option("--token-quota-p1", default=10_000_000_000, show_default=True, type=int)
@click.option("--enforce-quotas/--no-enforce-quotas", default=False, show_default=True)
@click.option("--context-tokens", default=131_072, show_default=True, type=click.IntRange(1),
              help="The models' context window: a longer row fails its job unless it asks truncate_rows.")
@click.option("--faults", "faults_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON/YAML fault rules active from the start (a list, or {rules: [...]}; syntax: the README's "
                   "offline-testing section).")
@click.option("--engine", default="deterministic", show_default=True, help="'deterministic' or 'module:factory'.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def serve(
    host: str,
    port: int,
    functions_dir: Path | None,
    api_key: str,
    data_dir: Path,
    workers: int,
    startup_seconds: float,
    min_run_seconds: float,
    row_quota_p0: int,
    row_quota_p1: int,
    token_quota_p0: int,
    token_quota_p1: int,
    enforce_quotas: bool,
    context_tokens: int,
    faults_file: Path | None,
    engine: str,
    log_level: str,
) -> None:
    """Serve the API until SIGTERM/SIGINT."""
    import uvicorn

    from sutro_providers.local.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore"):  # they log full request URLs, i.e. signed query strings
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = ServerSettings(
        api_key=api_key,
        data_dir=data_dir,
        functions_dir=functions_dir,
        workers=workers,
        startup_seconds=startup_seconds,
        min_run_seconds=min_run_seconds,
        quotas=(Quota(row_quota_p0, token_quota_p0), Quota(row_quota_p1, token_quota_p1)),
        enforce_quotas=enforce_quotas,
        context_tokens=context_tokens,
        fault_rules=load_fault_file(faults_file) if faults_file else [],
        engine=engine,
    )
    app = create_app(settings)
    # access_log off: request lines would include pre-signed query strings.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level=log_level, timeout_graceful_shutdown=3)


if __name__ == "__main__":
    main()
