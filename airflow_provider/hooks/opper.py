"""The Opper hook: turns an Airflow ``opper`` connection into an Opper client
configuration and a staging location.

Connection fields (see ``get_provider_info``):

* ``host``: the API base URL (default ``https://api.opper.ai``; ``http://`` only on
  loopback, e.g. the local server);
* ``password``: the API key (registered with Airflow's secrets masker);
* extras ``retry`` / ``timeouts`` (JSON objects of
  :class:`~sutro_providers.client.config.RetryPolicy` / ``Timeouts`` fields),
  ``max_connections``;
* staging extras, as for the ``sutro`` connection: ``staging_url`` (any fsspec URL:
  Opper needs no pre-signing, so a local folder works too), ``aws_conn_id``,
  ``s3_endpoint_url``, ``storage_options``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider.hooks.sutro import SutroHook
from sutro_providers.client.config import url_from_host
from sutro_providers.errors import SutroError
from sutro_providers.opper.client import OpperClient
from sutro_providers.opper.config import DEFAULT_BASE_URL, OpperConfig

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from sutro_providers.opper_rows import OpperRowPipeline


class OpperHook(SutroHook):
    """Interact with Opper. Staging settings are read exactly as :class:`SutroHook` does.

    :param opper_conn_id: the Airflow connection of type ``opper`` (default ``opper_default``).
    :param staging_url: overrides the connection's ``staging_url`` extra.
    """

    conn_name_attr = "opper_conn_id"
    default_conn_name = "opper_default"
    conn_type = "opper"
    hook_name = "Opper"

    def __init__(self, opper_conn_id: str = default_conn_name, staging_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(opper_conn_id, staging_url=staging_url, **kwargs)
        self.opper_conn_id = opper_conn_id

    @classmethod
    def opper_config_of(cls, conn: Connection) -> OpperConfig:
        """An :class:`OpperConfig` from a connection; the key is masked in logs."""
        key, tuning = cls.key_and_tuning(conn)
        extra = conn.extra_dejson
        if extra.get("max_connections"):
            tuning["max_connections"] = int(extra["max_connections"])
        # the host as typed (scheme and port filled in); OpperConfig normalises it (no Sutro /v1)
        url = url_from_host(conn.host or "", conn.port) if (conn.host or "").strip() else DEFAULT_BASE_URL
        return OpperConfig.resolve(url, key, **tuning)

    def get_opper_config(self) -> OpperConfig:
        return self.opper_config_of(self.connection)

    def get_conn(self) -> OpperClient:  # type: ignore[override]
        return OpperClient(config=self.get_opper_config())

    def get_client(self) -> OpperClient:  # type: ignore[override]
        """A new synchronous :class:`OpperClient`; close it (or use it as a context manager)."""
        return self.get_conn()

    def get_opper_pipeline(self, staging_url: str | None = None) -> OpperRowPipeline:
        """An :class:`~sutro_providers.opper_rows.OpperRowPipeline` for this connection."""
        from sutro_providers.opper_rows import OpperRowPipeline

        return OpperRowPipeline(self.get_opper_config(), self.get_staging(staging_url))

    def test_connection(self) -> tuple[bool, str]:
        """Check the URL and the key with ``GET /v3/functions`` (the UI's Test button)."""
        try:
            with self.get_client() as client:
                client.list_functions()
        except SutroError as exc:
            return False, str(exc)
        return True, "Connection to Opper succeeded"
