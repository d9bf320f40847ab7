"""Typed clients for the Opper function-call API (v3 calls by name, v2 revision
calls, spans), built on the same transport pieces as the Sutro client.

A local emulator lives in :mod:`sutro_providers.local.opper_routes` (FastAPI) with
its fake engine and store in :mod:`sutro_providers.local.opper_fake`.
"""

from sutro_providers.opper.client import AsyncOpperClient, OpperClient
from sutro_providers.opper.config import OpperConfig
from sutro_providers.opper.models import (
    OpperCallResult,
    RevisionCallResult,
    Span,
    V2Cost,
    V2Usage,
    V3CallMeta,
    V3Usage,
)

__all__ = [
    "AsyncOpperClient",
    "OpperCallResult",
    "OpperClient",
    "OpperConfig",
    "RevisionCallResult",
    "Span",
    "V2Cost",
    "V2Usage",
    "V3CallMeta",
    "V3Usage",
]
