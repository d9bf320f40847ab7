"""Where a run stages its input and keeps its record: the settings the Sutro and
Opper resources share (:class:`~dagster_sutro.SutroResource`,
:class:`~dagster_sutro.OpperResource`).

S3 settings are either the ``s3_*``/``aws_*`` fields or a nested dagster-aws
:class:`~dagster_aws.s3.S3Resource` (``s3=``), whose endpoint, region and
credentials fill what the fields leave unset; ``storage_options`` are merged last.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field

from sutro_providers.options import StagingLocation
from sutro_providers.storage_settings import StorageSettings


class StagingResource(dg.ConfigurableResource):
    """The staging location and its storage settings (a base of the backend resources)."""

    staging_url: str = Field(
        description="fsspec URL (e.g. s3://bucket/prefix) where inputs are staged as Parquet and the run record is kept."
    )
    s3: S3Resource | None = Field(
        default=None, description="Optional dagster-aws S3Resource whose endpoint, region and credentials are used for staging."
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, moto, R2...).")
    aws_access_key_id: str | None = Field(default=None, description="AWS access key id for staging (default: the AWS credential chain).")
    aws_secret_access_key: str | None = Field(default=None, description="AWS secret access key for staging.")
    aws_session_token: str | None = Field(default=None, description="AWS session token for staging.")
    aws_region_name: str | None = Field(default=None, description="AWS region of the staging bucket.")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="Extra fsspec storage options for the staging location (merged last)."
    )

    def storage_settings(self) -> StorageSettings:
        """The ``s3_*``/``aws_*`` fields and ``storage_options``, filled from the nested
        S3Resource (endpoint, region, credentials, profile)."""
        settings = StorageSettings(
            key=self.aws_access_key_id,
            secret=self.aws_secret_access_key,
            token=self.aws_session_token,
            endpoint_url=self.s3_endpoint_url,
            region_name=self.aws_region_name,
            extra=self.storage_options,
        )
        if (s3 := self.s3) is not None:
            settings = settings.fill(StorageSettings(
                key=s3.aws_access_key_id,
                secret=s3.aws_secret_access_key,
                token=s3.aws_session_token,
                endpoint_url=s3.endpoint_url,
                region_name=s3.region_name,
                profile=s3.profile_name,
            ))
        return settings

    def s3_storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs options from the nested S3Resource, the ``aws_*`` fields and ``storage_options``."""
        return self.storage_settings().storage_options()

    def staging_location(self) -> StagingLocation:
        return StagingLocation(url=self.staging_url, storage_options=self.storage_settings().options_for(self.staging_url))
