"""The Sutro hook: turns an Airflow ``sutro`` connection into clients and a staging location.

Connection fields (see ``get_provider_info``):

* ``host``: the deployment's API URL (``https://acme.sutro.sh`` or with ``/v1``).
  A bare host name gets ``https://`` (``http://`` on loopback); ``port`` is added
  when set separately.
* ``password``: the API key. It is registered with Airflow's secrets masker every
  time a client is built, so it is redacted from task and triggerer logs.
* extras ``retry`` and ``timeouts``: JSON objects of
  :class:`~sutro_providers.client.config.RetryPolicy` / :class:`~sutro_providers.client.config.Timeouts`
  fields (e.g. ``{"max_attempts": 3}``).
* extras: ``staging_url`` (``s3://bucket/prefix``), ``aws_conn_id`` (an Airflow AWS
  connection whose login/password and extra ``endpoint_url``/``region_name``/
  ``aws_session_token`` are used for staging; read with plain ``get_connection``,
  so the Amazon provider is not required), ``s3_endpoint_url`` and
  ``storage_options`` (a JSON object merged last into the fsspec options).

Inside a trigger only :meth:`SutroHook.aget_client` and :meth:`SutroHook.aget_config`
may be used: they read the connection with ``BaseHook.aget_connection`` (a sync ``get_connection`` on the
triggerer's event loop raises).
"""

from __future__ import annotations

import asyncio
import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from sutro_providers.client.config import SutroConfig, api_url_from_host
from sutro_providers.client.sutro import AsyncSutroClient, SutroClient
from sutro_providers.errors import SutroConfigurationError, SutroError
from sutro_providers.options import StagingLocation
from sutro_providers.storage_settings import StorageSettings

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from sutro_providers.pipeline import EnrichmentPipeline


class SutroHook(BaseHook):
    """Interact with a Sutro deployment.

    :param sutro_conn_id: the Airflow connection of type ``sutro``
        (default ``sutro_default``).
    :param staging_url: overrides the connection's ``staging_url`` extra.
    """

    conn_name_attr = "sutro_conn_id"
    default_conn_name = "sutro_default"
    conn_type = "sutro"
    hook_name = "Sutro"

    def __init__(self, sutro_conn_id: str = default_conn_name, staging_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sutro_conn_id = sutro_conn_id
        self.staging_url = staging_url
        self._conn: Connection | None = None

    # ------------------------------------------------------------------ config
    @property
    def connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.get_connection(self.sutro_conn_id)
        return self._conn

    @staticmethod
    def api_url_of(conn: Connection) -> str:
        """The normalised API URL of a connection (``host`` with optional ``port``,
        see :func:`~sutro_providers.client.config.api_url_from_host`)."""
        if not (conn.host or "").strip():
            raise SutroConfigurationError(f"Sutro connection {conn.conn_id!r} has no host (the API URL)")
        return api_url_from_host(conn.host or "", conn.port)

    @classmethod
    def key_and_tuning(cls, conn: Connection) -> tuple[str, dict[str, Any]]:
        """The connection's API key (``password``, else the ``api_key`` extra; masked in
        logs from here on) and its ``retry`` / ``timeouts`` extras as config fields."""
        key = conn.password or conn.extra_dejson.get("api_key")
        if not key:
            raise SutroConfigurationError(f"{cls.hook_name} connection {conn.conn_id!r} has no password (the API key)")
        mask_secret(key)
        extra = conn.extra_dejson
        return key, {name: _json_object(extra[name], name) for name in ("retry", "timeouts") if extra.get(name)}

    @classmethod
    def config_of(cls, conn: Connection) -> SutroConfig:
        """A :class:`SutroConfig` from a connection; the key is masked in logs."""
        key, tuning = cls.key_and_tuning(conn)
        return SutroConfig.resolve(api_url=cls.api_url_of(conn), api_key=key, **tuning)

    def get_config(self) -> SutroConfig:
        return self.config_of(self.connection)

    # ------------------------------------------------------------------ clients
    def get_conn(self) -> SutroClient:
        """Alias of :meth:`get_client` (the ``BaseHook`` convention)."""
        return self.get_client()

    def get_client(self) -> SutroClient:
        """A new synchronous client; close it (or use it as a context manager)."""
        return SutroClient(config=self.get_config())

    async def aget_client(self) -> AsyncSutroClient:
        """A new async client, reading the connection without blocking the event loop.

        The client is built in a worker thread: creating httpx's SSL context takes
        ~0.1 s of CPU, which would stall every other trigger on the triggerer."""
        config = await self.aget_config()
        return await asyncio.to_thread(AsyncSutroClient, config=config)

    async def aget_config(self) -> SutroConfig:
        """The connection's :class:`SutroConfig`, read without blocking the event loop."""
        return self.config_of(await type(self).aget_connection(self.sutro_conn_id))

    def job_url(self, job_id: str) -> str:
        """Where a human looks at the job (no secret in it)."""
        return f"{self.get_config().origin}/jobs/{job_id}"

    # ------------------------------------------------------------------ staging
    def get_staging(self, staging_url: str | None = None) -> StagingLocation:
        """The staging location: ``staging_url`` argument, hook argument, then the
        connection's ``staging_url`` extra; storage options from ``aws_conn_id``,
        ``s3_endpoint_url`` and ``storage_options`` (in that order, later wins)."""
        extra = self.connection.extra_dejson
        url = staging_url or self.staging_url or extra.get("staging_url")
        if not url:
            raise SutroConfigurationError(
                f"no staging URL: set the 'staging_url' extra of connection {self.sutro_conn_id!r} "
                "or pass staging_url"
            )
        return StagingLocation(url=url, storage_options=self.storage_options())

    def storage_settings(self) -> StorageSettings:
        """The connection's storage settings: ``s3_endpoint_url`` and ``storage_options``
        extras, filled from ``aws_conn_id``'s login/password, ``aws_session_token``,
        ``endpoint_url`` (or host) and ``region_name``. Every secret is masked."""
        extra = self.connection.extra_dejson
        raw = extra.get("storage_options")
        settings = StorageSettings(
            endpoint_url=extra.get("s3_endpoint_url"),
            extra=_json_object(raw, "storage_options") if raw else {},
        )
        if aws_conn_id := extra.get("aws_conn_id"):
            aws = self.get_connection(aws_conn_id)
            aws_extra = aws.extra_dejson
            settings = settings.fill(StorageSettings(
                key=aws.login,
                secret=aws.password,
                token=aws_extra.get("aws_session_token"),
                endpoint_url=aws_extra.get("endpoint_url") or aws.host,
                region_name=aws_extra.get("region_name"),
            ))
        for secret in settings.secrets():
            mask_secret(secret)
        return settings

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for the staging and output locations (secrets masked)."""
        return self.storage_settings().storage_options()

    def get_pipeline(self, staging_url: str | None = None) -> EnrichmentPipeline:
        """An :class:`~sutro_providers.pipeline.EnrichmentPipeline` on a new client."""
        from sutro_providers.pipeline import EnrichmentPipeline

        return EnrichmentPipeline(self.get_client(), self.get_staging(staging_url))

    # ------------------------------------------------------------------ UI
    def test_connection(self) -> tuple[bool, str]:
        """Check the URL and the key with ``GET auth/check`` (the UI's Test button)."""
        try:
            with self.get_client() as client:
                ok = client.auth_check()
        except SutroError as exc:
            return False, str(exc)
        return (True, "Connection to Sutro succeeded") if ok else (False, "the API key was refused")


class SutroHookMixin:
    """``hook`` and ``pipeline`` of a task with ``sutro_conn_id`` and ``staging_url``
    (the batch and collect operators): one hook and one pipeline per task instance."""

    sutro_conn_id: str
    staging_url: str | None

    @cached_property
    def hook(self) -> SutroHook:
        return SutroHook(self.sutro_conn_id, staging_url=self.staging_url)

    @cached_property
    def pipeline(self) -> EnrichmentPipeline:
        return self.hook.get_pipeline()


def _json_object(raw: Any, name: str) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise SutroConfigurationError(f"the {name!r} extra of the connection must be a JSON object")
    return dict(value)
