"""Opper client configuration: base URL, Bearer key, timeouts and retry policy.

Values come from arguments first, then ``OPPER_BASE_URL`` (default
``https://api.opper.ai``) and ``OPPER_API_KEY``. Plain ``http`` is accepted only
on loopback hosts (a Bearer key must not cross a network in clear text). The key
is a :class:`pydantic.SecretStr` and never appears in ``repr``/``str``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from sutro_providers.client.config import RetryPolicy, SutroConfig, Timeouts, _is_loopback
from sutro_providers.errors import SutroConfigurationError

BASE_URL_ENV = "OPPER_BASE_URL"
API_KEY_ENV = "OPPER_API_KEY"
DEFAULT_BASE_URL = "https://api.opper.ai"


def normalize_base_url(base_url: str) -> str:
    """``<scheme>://<host[:port]>[/<path>]`` without a trailing ``/``."""
    value = (base_url or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SutroConfigurationError("Opper base URL must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise SutroConfigurationError("Opper base URL must not contain credentials")
    if parts.query or parts.fragment:
        raise SutroConfigurationError("Opper base URL must not contain a query string or fragment")
    if parts.scheme == "http" and not _is_loopback((parts.hostname or "").lower()):
        raise SutroConfigurationError("Opper base URL must use https unless the host is loopback")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class OpperConfig(BaseModel):
    """Everything an Opper client needs. Build with :meth:`resolve` to use the environment.

    ``retry_rate_limits``: calls are billed and never retried, except a 429 that
    carries ``Retry-After`` when this is True (then within ``retry``'s bounds).
    Span reads and updates are idempotent and are retried like Sutro reads.
    """

    model_config = ConfigDict(frozen=True)

    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr
    timeouts: Timeouts = Timeouts(read=120.0, function_read=300.0)
    retry: RetryPolicy = RetryPolicy()
    retry_rate_limits: bool = False
    max_connections: int = Field(default=32, ge=1)
    user_agent: str = "sutro-providers-opper"

    @field_validator("base_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalize_base_url(value)

    @field_validator("api_key")
    @classmethod
    def _non_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise SutroConfigurationError(f"Opper API key is empty: set {API_KEY_ENV} or pass api_key")
        return value

    @classmethod
    def resolve(
        cls, base_url: str | None = None, api_key: str | SecretStr | None = None, **kwargs: object
    ) -> OpperConfig:
        """Arguments win; otherwise ``OPPER_BASE_URL`` and ``OPPER_API_KEY``."""
        url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if key is None or (isinstance(key, str) and not key.strip()):
            raise SutroConfigurationError(f"no Opper API key: pass api_key or set {API_KEY_ENV}")
        secret = key if isinstance(key, SecretStr) else SecretStr(key)
        return cls(base_url=url, api_key=secret, **kwargs)  # type: ignore[arg-type]

    def transport_view(self) -> SutroConfig:
        """The shape :mod:`sutro_providers.client.transport` reads (key for redaction,
        timeouts); built without Sutro's URL rules, which do not apply here."""
        return SutroConfig.model_construct(
            api_url=self.base_url,
            api_key=self.api_key,
            timeouts=self.timeouts,
            retry=self.retry,
            max_connections=self.max_connections,
            user_agent=self.user_agent,
        )
