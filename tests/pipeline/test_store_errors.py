"""Every call of staging and the ledger that touches the store raises
``SutroStagingError`` (naming what it was doing) when the S3 endpoint is down, not
botocore's ``EndpointConnectionError``. The endpoint is a closed loopback port."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from sutro_providers.errors import SutroStagingError
from sutro_providers.function_spec import load_function_spec
from sutro_providers.identity import RunIdentity
from sutro_providers.inputs.sources import open_source
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.options import StagingLocation
from sutro_providers.staging.area import StagingArea
from sutro_providers.submission.ledger import Ledger, LedgerRecord
from tests.pipeline.conftest import tickets

IDENTITY = RunIdentity.of("test", kind="endpoint-down")
SPEC = load_function_spec("example_dags/functions/ticket_triage.yaml")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def down() -> StagingArea:
    """A staging area whose S3 endpoint does not answer (one attempt per call, no retries)."""
    options = {"key": "testing", "secret": "testing", "skip_instance_cache": True,
               "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{_closed_port()}", "region_name": "us-east-1"},
               "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}
    return StagingArea(StagingLocation(url="s3://bucket/sutro", storage_options=options))


def _record() -> LedgerRecord:
    return LedgerRecord(run_key=IDENTITY.key, identity=IDENTITY.describe(), function="ticket-triage", fingerprint="f")


def _stage(area: StagingArea) -> Any:
    reader = open_source(pa.Table.from_pylist(tickets(5)))
    return area.stage(IDENTITY, reader, InputValidator(SPEC.name, SPEC.inputs), shard_size=100)


CALLS: dict[str, tuple[str, Callable[[StagingArea], Any]]] = {
    "ledger load": ("cannot read the run ledger", lambda a: Ledger(a.fs, a.ledger_path(IDENTITY)).load()),
    "ledger save": ("cannot write the run ledger", lambda a: Ledger(a.fs, a.ledger_path(IDENTITY)).save(_record())),
    "write probe": ("cannot write to staging location s3://bucket/sutro", lambda a: a.check_writable()),
    "exists": ("cannot read staging location s3://bucket/sutro/runs/", lambda a: a.exists(a.source_path(IDENTITY))),
    "remove": ("cannot remove s3://bucket/sutro/runs/", lambda a: a.remove([a.source_path(IDENTITY)])),
    "list shards": ("cannot list the staged shards under s3://", lambda a: a.shard_paths(IDENTITY)),
    "read snapshot": ("cannot read the staged snapshot s3://", lambda a: list(a.read_source(IDENTITY, 10))),
    "snapshot schema": ("cannot read the staged snapshot s3://", lambda a: a.source_schema(IDENTITY)),
    "stage": ("cannot (stage to|list the staged shards under) s3://bucket/sutro/runs/", _stage),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_endpoint_down_is_a_staging_error(down: StagingArea, call: str) -> None:
    what, run = CALLS[call]
    with pytest.raises(SutroStagingError, match=rf"{what}.*EndpointConnectionError: Could not connect"):
        run(down)
