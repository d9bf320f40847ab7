"""sutro-providers: run Sutro batch-LLM Functions from Airflow and Dagster.

The core never imports Airflow or Dagster. Start with :class:`SutroClient` for the
wire API, or the enrichment pipeline for whole tables.
"""

from sutro_providers.client import AsyncSutroClient, SutroClient
from sutro_providers.config import RetryPolicy, SutroConfig, Timeouts
from sutro_providers.errors import SutroError
from sutro_providers.function_spec import FunctionSpec, InputField
from sutro_providers.wire.models import JobRecord, JobStatus

__all__ = [
    "AsyncSutroClient",
    "FunctionSpec",
    "InputField",
    "JobRecord",
    "JobStatus",
    "RetryPolicy",
    "SutroClient",
    "SutroConfig",
    "SutroError",
    "Timeouts",
]
