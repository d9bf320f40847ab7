"""Storage settings resolved once: the fsspec/s3fs options of staging and output locations.

Both adapters read their own world (the Airflow hook: the ``sutro`` connection's
extras and an optional AWS connection; the Dagster resource: its ``s3_*``/``aws_*``
fields and an optional ``S3Resource``) into plain values of a
:class:`StorageSettings`, and take the options from here:

* explicit values win over those of a credentials source (:meth:`StorageSettings.fill`);
* ``key``/``secret``/``token``/``profile`` become s3fs's top-level options,
  ``endpoint_url``/``region_name`` its ``client_kwargs``;
* ``extra`` (the user's own fsspec options) is merged last, ``client_kwargs``
  key by key.

The secret, the session token and ``extra`` never appear in a ``repr``;
:meth:`StorageSettings.secrets` lists every secret value, for an
adapter to register with its log masker.

Example::

    settings = StorageSettings(endpoint_url="http://127.0.0.1:9000", extra={"anon": False})
    settings = settings.fill(StorageSettings(key="AKIA...", secret="...", region_name="eu-west-1"))
    options = settings.options_for("s3://bucket/staging")
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

S3_SCHEMES = ("s3://", "s3a://")
SECRET_OPTIONS = ("secret", "token")
"""Top-level fsspec options that hold a secret (also inside ``extra``)."""


class StorageSettings(BaseModel):
    """Where and as whom S3-compatible storage is reached. Every field is optional:
    unset (or empty) values leave s3fs to the AWS credential chain and defaults."""

    model_config = ConfigDict(frozen=True)

    key: str | None = None
    secret: str | None = Field(default=None, repr=False)
    token: str | None = Field(default=None, repr=False)
    endpoint_url: str | None = None
    region_name: str | None = None
    profile: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict, repr=False)

    def fill(self, fallback: StorageSettings) -> StorageSettings:
        """These settings, each unset value taken from ``fallback`` (e.g. an AWS
        connection or an ``S3Resource`` behind explicit fields); ``extra`` stays ours."""
        update = {
            name: getattr(fallback, name)
            for name in ("key", "secret", "token", "endpoint_url", "region_name", "profile")
            if not getattr(self, name) and getattr(fallback, name)
        }
        return self.model_copy(update=update) if update else self

    def storage_options(self) -> dict[str, Any]:
        """The fsspec/s3fs options (secrets in clear: hand them only to fsspec)."""
        options: dict[str, Any] = {}
        for name in ("key", "secret", "token"):
            if value := getattr(self, name):
                options[name] = value
        client_kwargs = {name: value for name in ("endpoint_url", "region_name") if (value := getattr(self, name))}
        if client_kwargs:
            options["client_kwargs"] = client_kwargs
        if self.profile:
            options["profile"] = self.profile
        extra = dict(self.extra)
        if isinstance(extra.get("client_kwargs"), dict) and "client_kwargs" in options:
            extra["client_kwargs"] = {**options["client_kwargs"], **extra["client_kwargs"]}
        return {**options, **extra}

    def options_for(self, url: str) -> dict[str, Any]:
        """The options for ``url``: all of them for ``s3://``/``s3a://``, only ``extra``
        for any other filesystem (S3 credentials mean nothing to it)."""
        return self.storage_options() if url.startswith(S3_SCHEMES) else dict(self.extra)

    def secrets(self) -> list[str]:
        """Every secret value held (secret, token, and those in ``extra``)."""
        values = [self.secret, self.token, *(self.extra.get(name) for name in SECRET_OPTIONS)]
        return [value for value in values if isinstance(value, str) and value]
