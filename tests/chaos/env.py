"""The processes a chaos run talks to: a local Sutro server subprocess and a moto
S3 server (both on 127.0.0.1), plus the client, staging and adapter settings
pointing at them. Server restarts keep the fault counts: faults are cleared, the
counts are added to the running total, and the rules are set again (re-seeded)."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sutro_providers.client.config import RetryPolicy
from sutro_providers.client.sutro import SutroClient
from sutro_providers.local.moto_s3 import MotoS3
from sutro_providers.local.server import LocalSutroServer
from sutro_providers.options import StagingLocation

if TYPE_CHECKING:
    from tests.chaos.config import ChaosConfig, RunSpec

RETRY = RetryPolicy(max_attempts=8, max_elapsed=30, initial_backoff=0.05, max_backoff=1.0)
AWS_ENV = {**MotoS3.CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}


def default_functions_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "example_dags" / "functions"
    return Path(os.environ.get("SUTRO_LOCAL_FUNCTIONS", here))


class ChaosEnv:
    """Owns or borrows the servers. With ``server``/``s3`` given (e.g. pytest
    fixtures) they are used and left running; otherwise they are started here."""

    def __init__(self, config: ChaosConfig, server: LocalSutroServer | None = None, s3: MotoS3 | None = None,
                 functions_dir: Path | None = None) -> None:
        self.config = config
        self._own_server, self._own_s3 = server is None, s3 is None
        self.server = server or LocalSutroServer(functions_dir or default_functions_dir(), workers=2,
                                                 startup_seconds=0.05, min_run_seconds=0.1)
        self.s3 = s3
        self.epoch = 0
        self.injected: Counter[str] = Counter()
        self.restarts = 0
        self.results: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # row content -> its results, first landed
        self._tmp = tempfile.TemporaryDirectory(prefix="sutro-chaos-")
        self.log_dir = Path(self._tmp.name) / "attempts"  # stderr of attempts run in processes of their own
        self.log_dir.mkdir()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> ChaosEnv:
        for key, value in AWS_ENV.items():
            os.environ.setdefault(key, value)
        if self._own_s3:
            self.s3 = MotoS3().start()
        if self._own_server:
            self.server.start()
        self.bucket = self.s3_server.create_bucket("chaos-" + secrets.token_hex(4))
        self.staging = StagingLocation(url=f"s3://{self.bucket}/staging", storage_options=self.storage_options)
        self.server.admin.reset()
        self.arm()
        self._airflow_connection()
        return self

    def stop(self) -> None:
        try:
            self.server.admin.clear_faults()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        if self._own_server:
            self.server.stop()
        if self._own_s3 and self.s3 is not None:
            self.s3.stop()
        self._tmp.cleanup()

    @property
    def s3_server(self) -> MotoS3:
        assert self.s3 is not None
        return self.s3

    @property
    def storage_options(self) -> dict[str, Any]:
        return dict(self.s3_server.storage_options)

    # ------------------------------------------------------------ faults
    def arm(self) -> None:
        self.server.admin.set_faults(self.config.fault_rules(self.epoch))

    def add_not_ready(self) -> None:
        self.server.admin.set_faults([self.config.not_ready_rule()], append=True)

    def collect_fault_counts(self) -> None:
        """Stop injecting and add this server process's counts to the total (call
        once per process: before a restart, and at the end)."""
        self.server.admin.clear_faults()
        self.injected.update(self.server.admin.stats()["faults_injected"])

    def restart_server(self) -> None:
        """Restart the server process mid-job (same port and data dir)."""
        self.collect_fault_counts()
        self.server.restart()
        self.restarts += 1
        self.epoch += 1
        self.arm()

    def final_counts(self) -> tuple[Counter[str], dict[str, Any]]:
        self.collect_fault_counts()
        return self.injected, self.server.admin.stats()["jobs"]

    # ------------------------------------------------------------ clients and adapters
    def client(self) -> SutroClient:
        return SutroClient(self.server.url, self.server.api_key, retry=RETRY)

    def output_uri(self, spec: RunSpec) -> str:
        return f"s3://{self.bucket}/out/{spec.path}/run-{spec.index:04d}.parquet"

    def _airflow_connection(self) -> None:
        """``AIRFLOW_CONN_SUTRO_DEFAULT`` for the operator (no Airflow DB needed)."""
        os.environ.setdefault("AIRFLOW_HOME", str(Path(self._tmp.name) / "airflow"))
        extra = {
            "retry": RETRY.model_dump(), "staging_url": f"s3://{self.bucket}/airflow-staging",
            "s3_endpoint_url": self.s3_server.endpoint_url, "storage_options": json.dumps(
                {"key": AWS_ENV["AWS_ACCESS_KEY_ID"], "secret": AWS_ENV["AWS_SECRET_ACCESS_KEY"]}),
        }
        os.environ["AIRFLOW_CONN_SUTRO_DEFAULT"] = json.dumps(
            {"conn_type": "sutro", "host": self.server.url, "password": self.server.api_key, "extra": json.dumps(extra)})

    def dagster_resource(self) -> Any:
        from dagster_sutro import SutroResource

        return SutroResource(
            api_url=self.server.url, api_key=self.server.api_key, staging_url=f"s3://{self.bucket}/dagster-staging",
            s3_endpoint_url=self.s3_server.endpoint_url, aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"], aws_region_name="us-east-1",
            poll_interval=0.1, max_poll_interval=0.4, max_retry_attempts=RETRY.max_attempts, read_timeout=30,
        )
