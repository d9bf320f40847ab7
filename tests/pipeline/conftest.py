"""Fixtures for pipeline tests: a client on the local Sutro server, a staging
location on the moto S3 server, and deterministic source tables."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from sutro_providers import SutroClient
from sutro_providers.config import RetryPolicy
from sutro_providers.options import EnrichmentOptions, StagingLocation
from sutro_providers.pipeline import EnrichmentPipeline

SUBJECTS = ["Refund request", "App crashes on login", "Please add dark mode", "Cannot reset password", "Hello"]
WORDS = "invoice charge crash error feature request login password account billing export slow page".split()


def tickets(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` deterministic support tickets (subject, body, customer_tier, ticket_id)."""
    rng = random.Random(seed)
    return [
        {
            "ticket_id": f"T{i:06d}",
            "subject": rng.choice(SUBJECTS),
            "body": " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))),
            "customer_tier": rng.choice(["free", "pro", "enterprise"]),
        }
        for i in range(n)
    ]


@pytest.fixture
def client(sutro_clean: Any) -> Iterator[SutroClient]:
    with SutroClient(
        sutro_clean.url,
        sutro_clean.api_key,
        retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.2, max_attempts=8),
    ) as c:
        yield c


@pytest.fixture
def staging(s3_server: Any, s3_bucket: str) -> StagingLocation:
    return StagingLocation(url=f"s3://{s3_bucket}/sutro", storage_options=s3_server.storage_options)


@pytest.fixture
def pipeline(client: SutroClient, staging: StagingLocation) -> EnrichmentPipeline:
    return EnrichmentPipeline(client, staging)


def options(**kw: Any) -> EnrichmentOptions:
    base: dict[str, Any] = dict(function="ticket-triage", poll_interval=0.1, max_poll_interval=0.3, timeout=120)
    base.update(kw)
    return EnrichmentOptions(**base)
