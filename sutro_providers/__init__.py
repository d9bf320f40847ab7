"""sutro-providers: run Sutro batch-LLM Functions from Airflow and Dagster.

The core never imports Airflow or Dagster. Start with :class:`SutroClient` for the
wire API, or :class:`~sutro_providers.pipeline.EnrichmentPipeline` for whole
tables. Names are imported lazily, so ``sutro_providers.local`` (the local
server) starts without loading the client stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AsyncSutroClient": "sutro_providers.client.sutro",
    "SutroClient": "sutro_providers.client.sutro",
    "RetryPolicy": "sutro_providers.client.config",
    "SutroConfig": "sutro_providers.client.config",
    "Timeouts": "sutro_providers.client.config",
    "SutroError": "sutro_providers.errors",
    "FunctionSpec": "sutro_providers.function_spec",
    "InputField": "sutro_providers.function_spec",
    "RunIdentity": "sutro_providers.identity",
    "Manifest": "sutro_providers.manifest",
    "EnrichmentOptions": "sutro_providers.options",
    "StagingLocation": "sutro_providers.options",
    "EnrichmentPipeline": "sutro_providers.pipeline",
    "EnrichmentResult": "sutro_providers.pipeline",
    "run_realtime": "sutro_providers.realtime",
    "JobRecord": "sutro_providers.client.models",
    "JobStatus": "sutro_providers.client.models",
}

__all__ = [
    "AsyncSutroClient",
    "EnrichmentOptions",
    "EnrichmentPipeline",
    "EnrichmentResult",
    "FunctionSpec",
    "InputField",
    "JobRecord",
    "JobStatus",
    "Manifest",
    "RetryPolicy",
    "RunIdentity",
    "StagingLocation",
    "SutroClient",
    "SutroConfig",
    "SutroError",
    "Timeouts",
    "run_realtime",
]

if TYPE_CHECKING:
    from sutro_providers.client.config import RetryPolicy, SutroConfig, Timeouts
    from sutro_providers.client.models import JobRecord, JobStatus
    from sutro_providers.client.sutro import AsyncSutroClient, SutroClient
    from sutro_providers.errors import SutroError
    from sutro_providers.function_spec import FunctionSpec, InputField
    from sutro_providers.identity import RunIdentity
    from sutro_providers.manifest import Manifest
    from sutro_providers.options import EnrichmentOptions, StagingLocation
    from sutro_providers.pipeline import EnrichmentPipeline, EnrichmentResult
    from sutro_providers.realtime import run_realtime


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sutro_providers' has no attribute {name!r}")
