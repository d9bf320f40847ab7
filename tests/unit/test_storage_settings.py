"""Storage settings (sutro_providers.storage_settings): what the Airflow hook and the
Dagster resource both turn their configuration into."""

from __future__ import annotations

from sutro_providers.storage_settings import StorageSettings


def test_explicit_values_win_and_the_fallback_fills_the_rest() -> None:
    explicit = StorageSettings(endpoint_url="http://127.0.0.1:9000", key="", extra={"anon": False})
    settings = explicit.fill(StorageSettings(key="AKIA", secret="s3cr3t", token="t0k", endpoint_url="http://aws",
                                             region_name="eu-west-1", profile="dev"))
    assert settings.storage_options() == {
        "key": "AKIA", "secret": "s3cr3t", "token": "t0k", "profile": "dev", "anon": False,
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"},
    }
    assert explicit.fill(StorageSettings()) is explicit


def test_extra_is_merged_last_and_client_kwargs_key_by_key() -> None:
    settings = StorageSettings(key="AKIA", endpoint_url="http://e", region_name="r1",
                               extra={"key": "OTHER", "client_kwargs": {"region_name": "r2", "verify": False}})
    assert settings.storage_options() == {
        "key": "OTHER", "client_kwargs": {"endpoint_url": "http://e", "region_name": "r2", "verify": False}}
    assert StorageSettings(extra={"client_kwargs": {"verify": False}}).storage_options() == {
        "client_kwargs": {"verify": False}}
    assert StorageSettings().storage_options() == {}


def test_other_filesystems_get_only_the_extra_options() -> None:
    settings = StorageSettings(key="AKIA", secret="s", extra={"auto_mkdir": True})
    assert settings.options_for("s3://b/p") == settings.options_for("s3a://b/p") == settings.storage_options()
    assert settings.options_for("/tmp/staging") == {"auto_mkdir": True}
    assert settings.options_for("gs://b/p") == {"auto_mkdir": True}


def test_secrets_are_listed_and_never_in_the_repr() -> None:
    settings = StorageSettings(key="AKIA", secret="aws_secret_1", token="aws_token_2",
                               extra={"secret": "extra_secret_3", "token": 4})
    assert settings.secrets() == ["aws_secret_1", "aws_token_2", "extra_secret_3"]
    text = repr(settings) + str(settings)
    assert "AKIA" in text and not any(s in text for s in ("aws_secret_1", "aws_token_2", "extra_secret_3"))
