"""Opper client configuration: base URL, Bearer key, timeouts and retry policy.

Values come from arguments first, then ``OPPER_BASE_URL`` (default
``https://api.opper.ai``) and ``OPPER_API_KEY``. Plain ``http`` is accepted only
on loopback hosts (a Bearer key must not cross a network in clear text). The key
is a :class:`pydantic.SecretStr` and never appears in ``repr``/``str``. The fields
shared with :class:`~sutro_providers.client.config.SutroConfig` (key, timeouts,
retry, pool size, user agent) come from their common base
:class:`~sutro_providers.client.config.ClientConfig`.
"""

from __future__ import annotations

import os
from typing import ClassVar
from urllib.parse import urlunsplit

from pydantic import SecretStr, field_validator

from sutro_providers.client.config import ClientConfig, Timeouts, check_http_url

BASE_URL_ENV = "OPPER_BASE_URL"
API_KEY_ENV = "OPPER_API_KEY"
DEFAULT_BASE_URL = "https://api.opper.ai"


def normalize_base_url(base_url: str) -> str:
    """``<scheme>://<host[:port]>[/<path>]`` without a trailing ``/``."""
    parts = check_http_url((base_url or "").strip(), "Opper base URL")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class OpperConfig(ClientConfig):
    """Everything an Opper client needs. Build with :meth:`resolve` to use the environment.

    ``retry_rate_limits``: calls are billed and never retried, except a 429 that
    carries ``Retry-After`` when this is True (then within ``retry``'s bounds).
    Span reads and updates are idempotent and are retried like Sutro reads.
    """

    product: ClassVar[str] = "Opper"
    key_env: ClassVar[str] = API_KEY_ENV
    auth_scheme: ClassVar[str] = "Bearer"

    base_url: str = DEFAULT_BASE_URL
    timeouts: Timeouts = Timeouts(read=120.0, function_read=300.0)
    retry_rate_limits: bool = False
    user_agent: str = "sutro-providers-opper"

    @field_validator("base_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalize_base_url(value)

    @classmethod
    def resolve(
        cls, base_url: str | None = None, api_key: str | SecretStr | None = None, **kwargs: object
    ) -> OpperConfig:
        """Arguments win; otherwise ``OPPER_BASE_URL`` and ``OPPER_API_KEY``."""
        url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        return cls(base_url=url, api_key=cls._secret(key), **kwargs)  # type: ignore[arg-type]

    @property
    def api_root(self) -> str:
        return self.base_url
