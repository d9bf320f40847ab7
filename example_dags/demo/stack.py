"""The embedded stack of the demo: local Sutro server + moto S3, and the
environment an orchestrator process needs to use them."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sutro_providers.local.moto_s3 import MotoS3
from sutro_providers.local.server import LocalSutroServer

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "example_dags" / "functions"
BUCKET = "sutro-demo"


@dataclass
class DemoStack:
    """Servers for one demo run; ``env()`` is what child processes get."""

    root: Path
    sutro: LocalSutroServer = field(init=False)
    s3: MotoS3 = field(init=False)

    def __enter__(self) -> DemoStack:
        self.sutro = LocalSutroServer(FUNCTIONS, data_dir=self.root / "sutro-data",
                                      startup_seconds=0.5, min_run_seconds=1.0).start()
        self.s3 = MotoS3().start()
        self.s3.create_bucket(BUCKET)
        return self

    def __exit__(self, *exc: object) -> None:
        self.s3.stop()
        self.sutro.stop(cleanup=False)

    @property
    def staging_url(self) -> str:
        return f"s3://{BUCKET}/staging"

    def env(self) -> dict[str, str]:
        """Environment for Airflow and Dagster processes: the same variables a user
        sets to point the examples at a real deployment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST", "SUTRO"))}
        env.update(MotoS3.CREDENTIALS, AWS_DEFAULT_REGION="us-east-1")
        env.update(
            SUTRO_API_URL=self.sutro.url,
            SUTRO_API_KEY=self.sutro.api_key,
            SUTRO_STAGING_URL=self.staging_url,
            SUTRO_S3_ENDPOINT_URL=self.s3.endpoint_url,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        return env

    def sutro_connection(self) -> str:
        """``AIRFLOW_CONN_SUTRO_DEFAULT``: host = API URL, password = key, extras = staging."""
        extra: dict[str, Any] = {"staging_url": self.staging_url, "s3_endpoint_url": self.s3.endpoint_url}
        return json.dumps({"conn_type": "sutro", "host": self.sutro.url, "password": self.sutro.api_key,
                           "extra": json.dumps(extra)})

    def copy_outputs(self, prefix: str, dest: Path) -> list[Path]:
        """Copy enriched Parquet files out of the in-memory S3 server before it stops."""
        fs = self.s3.filesystem()
        dest.mkdir(parents=True, exist_ok=True)
        copied = []
        for key in fs.glob(f"{BUCKET}/{prefix}/**/*.parquet"):
            target = dest / Path(key).name
            fs.get_file(key, str(target))
            copied.append(target)
        return copied
