"""SutroResource's storage options: its fields filled from a nested S3Resource, through
the core's StorageSettings; non-S3 staging gets only ``storage_options``."""

from __future__ import annotations

from dagster_aws.s3 import S3Resource

from dagster_sutro import SutroResource


def resource(**fields: object) -> SutroResource:
    return SutroResource(api_url="http://127.0.0.1:9", api_key="sk_x", staging_url="s3://b/staging", **fields)  # type: ignore[arg-type]


def test_fields_win_over_the_nested_s3_resource() -> None:
    s3 = S3Resource(endpoint_url="http://s3.example", region_name="eu-west-1", aws_access_key_id="AKIA_S3",
                    aws_secret_access_key="s3_secret", aws_session_token="s3_token", profile_name="dev")
    sutro = resource(s3=s3, s3_endpoint_url="http://127.0.0.1:9000", aws_access_key_id="AKIA_FIELD",
                     storage_options={"client_kwargs": {"verify": False}, "anon": False})
    expected = {"key": "AKIA_FIELD", "secret": "s3_secret", "token": "s3_token", "profile": "dev", "anon": False,
                "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1", "verify": False}}
    assert sutro.s3_storage_options() == expected
    assert sutro.staging_location().storage_options == expected


def test_non_s3_staging_gets_only_the_extra_options(tmp_path: object) -> None:
    sutro = resource(aws_access_key_id="AKIA", aws_secret_access_key="s", storage_options={"auto_mkdir": True})
    local = sutro.model_copy(update={"staging_url": f"{tmp_path}/staging"})
    assert local.staging_location().storage_options == {"auto_mkdir": True}
    assert sutro.staging_location().storage_options == {"key": "AKIA", "secret": "s", "auto_mkdir": True}
