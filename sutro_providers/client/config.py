"""Client configuration: where the API is, the key, timeouts and the retry policy.

Values come from arguments first, then the environment variables ``SUTRO_API_URL``
and ``SUTRO_API_KEY``, which are read as a pair as the official SDK does. The URL
is normalised exactly like SDK 0.1.67: a deployment origin or origin + ``/v1``;
plain ``http`` only on loopback; no credentials, query or fragment; the retired
centralized hosts refused. The key is a :class:`pydantic.SecretStr` and never
appears in ``repr``/``str``.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Callable
from typing import ClassVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from sutro_providers.errors import SutroConfigurationError

API_URL_ENV = "SUTRO_API_URL"
API_KEY_ENV = "SUTRO_API_KEY"

RETIRED_HOSTS = ("api.sutro.sh", "serve.sutro.sh", "api.materialized.dev")
RETIRED_HOST_SUFFIX = "--tensor-factory-fastapi-app.modal.run"
RETIRED_API_MESSAGE = (
    "Direct Sutro Batch API access is no longer supported by the Sutro SDK. "
    "Upgrade the sutro package, then set SUTRO_API_URL to your Sutro "
    "single-tenant deployment URL and use an API key from that deployment's "
    "API Keys panel."
)


def check_http_url(url: str, what: str, refuse_host: Callable[[str], None] | None = None) -> SplitResult:
    """The parts of an absolute http(s) URL without credentials, query or fragment,
    plain ``http`` only on loopback; else :class:`SutroConfigurationError` naming ``what``
    (e.g. "Sutro API URL"). What Sutro and Opper URLs both must be. ``refuse_host``
    may raise for a host name (lower case, no trailing dot) before the scheme check."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SutroConfigurationError(f"{what} must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise SutroConfigurationError(f"{what} must not contain credentials")
    if parts.query or parts.fragment:
        raise SutroConfigurationError(f"{what} must not contain a query string or fragment")
    if refuse_host is not None:
        refuse_host(_host(parts))
    if parts.scheme == "http" and not _is_loopback(_host(parts)):
        raise SutroConfigurationError(
            f"{what} must use https unless the host is loopback (localhost, 127.0.0.0/8, ::1)"
        )
    return parts


def normalize_api_url(api_url: str) -> str:
    """Return ``<scheme>://<host[:port]>/v1`` or raise :class:`SutroConfigurationError`."""
    value = (api_url or "").strip()
    if not value:
        raise SutroConfigurationError(f"Sutro API URL is empty: set {API_URL_ENV} or pass api_url")
    parts = check_http_url(value, "Sutro API URL", _refuse_retired)
    path = parts.path.rstrip("/")
    if path not in {"", "/v1"}:
        raise SutroConfigurationError(
            "Sutro API URL must be a deployment origin or end at its /v1 prefix"
        )
    return urlunsplit((parts.scheme, parts.netloc, "/v1", "", ""))


def api_url_from_host(host: str, port: int | None = None) -> str:
    """The normalised API URL of a connection form's ``host`` (and separate ``port``).

    A bare host name gets ``https://`` (``http://`` on loopback); ``port`` is added
    when the host carries none; then :func:`normalize_api_url` applies."""
    value = (host or "").strip()
    if value and "://" not in value:
        name = value.split("/")[0].split(":")[0]
        value = ("http://" if _is_loopback(name) else "https://") + value
    if value and port:
        parts = urlsplit(value)
        if parts.port is None:
            value = f"{parts.scheme}://{parts.hostname}:{port}{parts.path}"
    return normalize_api_url(value)


def _refuse_retired(host: str) -> None:
    if host.endswith(RETIRED_HOST_SUFFIX) or any(host == h or host.endswith("." + h) for h in RETIRED_HOSTS):
        raise SutroConfigurationError(RETIRED_API_MESSAGE)


def _host(parts: SplitResult) -> str:
    return (parts.hostname or "").lower().rstrip(".")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RetryPolicy(BaseModel):
    """How reads are retried (job creation and Function runs never are).

    Exponential backoff with full jitter: the n-th wait is random in
    ``[0, min(max_backoff, initial_backoff * 2**(n-1))]`` seconds; a server's
    ``Retry-After`` is honoured when longer.
    Gives up after ``max_attempts`` tries or ``max_elapsed`` seconds, whichever
    comes first.
    """

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=6, ge=1, le=100)
    max_elapsed: float = Field(default=120.0, gt=0)
    initial_backoff: float = Field(default=0.5, ge=0)
    max_backoff: float = Field(default=30.0, ge=0)


class Timeouts(BaseModel):
    """Seconds. ``read`` bounds every API call; ``function_read`` a real-time Function
    run (the server's own deadline is 90 s); ``download_read`` a gap between chunks."""

    model_config = ConfigDict(frozen=True)

    connect: float = Field(default=10.0, gt=0)
    read: float = Field(default=60.0, gt=0)
    write: float = Field(default=60.0, gt=0)
    pool: float = Field(default=10.0, gt=0)
    function_read: float = Field(default=100.0, gt=0)
    download_read: float = Field(default=120.0, gt=0)

    def httpx(self, read: float | None = None) -> httpx.Timeout:
        return _httpx_timeout(self.connect, read or self.read, self.write, self.pool)


@functools.lru_cache(maxsize=64)
def _httpx_timeout(connect: float, read: float, write: float, pool: float) -> httpx.Timeout:
    """One immutable ``httpx.Timeout`` per combination (built per call otherwise)."""
    return httpx.Timeout(connect=connect, read=read, write=write, pool=pool)


class ClientConfig(BaseModel):
    """What every HTTP client of this package needs (the Sutro and the Opper one):
    the key, timeouts, retry policy, pool size and user agent. Subclasses add where
    the API is (:attr:`base_url`), the ``Authorization`` scheme and their own
    environment variables."""

    model_config = ConfigDict(frozen=True)

    product: ClassVar[str] = "API"
    """Names the service in messages ("Sutro", "Opper")."""
    key_env: ClassVar[str] = ""
    auth_scheme: ClassVar[str] = "Bearer"
    """``Authorization: <scheme> <key>``."""

    api_key: SecretStr
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    max_connections: int = Field(default=32, ge=1)
    user_agent: str = "sutro-providers"

    @field_validator("api_key")
    @classmethod
    def _non_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise SutroConfigurationError(f"{cls.product} API key is empty: set {cls.key_env} or pass api_key")
        return value

    @classmethod
    def _secret(cls, api_key: str | SecretStr | None) -> SecretStr:
        """``api_key`` as a :class:`SecretStr`, or the "no key" error."""
        if api_key is None or (isinstance(api_key, str) and not api_key.strip()):
            raise SutroConfigurationError(f"no {cls.product} API key: pass api_key or set {cls.key_env}")
        return api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)

    @property
    def api_root(self) -> str:
        """The URL every API path is relative to (no trailing ``/``)."""
        raise NotImplementedError


class SutroConfig(ClientConfig):
    """Everything a client needs. Build with :meth:`resolve` to fill from the environment."""

    product: ClassVar[str] = "Sutro"
    key_env: ClassVar[str] = API_KEY_ENV
    auth_scheme: ClassVar[str] = "Key"

    api_url: str

    @field_validator("api_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalize_api_url(value)

    @classmethod
    def resolve(
        cls,
        api_url: str | None = None,
        api_key: str | SecretStr | None = None,
        **kwargs: object,
    ) -> SutroConfig:
        """Arguments win; otherwise ``SUTRO_API_URL``/``SUTRO_API_KEY`` as a pair."""
        if api_url is None and api_key is None:
            api_url, api_key = os.environ.get(API_URL_ENV), os.environ.get(API_KEY_ENV)
        if not api_url:
            raise SutroConfigurationError(f"no Sutro API URL: pass api_url or set {API_URL_ENV}")
        return cls(api_url=api_url, api_key=cls._secret(api_key), **kwargs)  # type: ignore[arg-type]

    @property
    def api_root(self) -> str:
        return self.api_url

    @property
    def origin(self) -> str:
        """The deployment origin, without ``/v1`` (for links shown to users)."""
        return self.api_url[: -len("/v1")]
