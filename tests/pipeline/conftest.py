"""Fixtures for pipeline tests: a client on the local Sutro server, a staging
location on the moto S3 server, and deterministic source tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sutro_providers import SutroClient
from sutro_providers.client.config import RetryPolicy
from sutro_providers.options import EnrichmentOptions, StagingLocation
from sutro_providers.pipeline import EnrichmentPipeline
from tests.chaos.data import tickets as tickets  # re-exported: the tests build tables with it


@pytest.fixture
def client(sutro_clean: Any) -> Iterator[SutroClient]:
    with SutroClient(
        sutro_clean.url,
        sutro_clean.api_key,
        retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.2, max_attempts=8),
    ) as c:
        yield c


@pytest.fixture
def staging(sutro_s3_server: Any, sutro_s3_bucket: str) -> StagingLocation:
    return StagingLocation(url=f"s3://{sutro_s3_bucket}/sutro", storage_options=sutro_s3_server.storage_options)


@pytest.fixture
def pipeline(client: SutroClient, staging: StagingLocation) -> EnrichmentPipeline:
    return EnrichmentPipeline(client, staging)


def options(**kw: Any) -> EnrichmentOptions:
    base: dict[str, Any] = dict(function="ticket-triage", poll_interval=0.1, max_poll_interval=0.3, timeout=120)
    base.update(kw)
    return EnrichmentOptions(**base)
