"""Connection settings resolved once in the core (client/config.py): the API URL of a
connection form's host/port, and the checks the Sutro and Opper configs share."""

from __future__ import annotations

import pytest

from sutro_providers.client.config import SutroConfig, api_url_from_host
from sutro_providers.errors import SutroConfigurationError
from sutro_providers.opper.config import OpperConfig


@pytest.mark.parametrize(("host", "port", "url"), [
    ("127.0.0.1", 8123, "http://127.0.0.1:8123/v1"),
    ("localhost:8000", 9999, "http://localhost:8000/v1"),
    ("acme.sutro.example", None, "https://acme.sutro.example/v1"),
    ("acme.sutro.example/v1/", 8443, "https://acme.sutro.example:8443/v1"),
    (" https://acme.sutro.example ", None, "https://acme.sutro.example/v1"),
    ("http://[::1]:7000", None, "http://[::1]:7000/v1"),
])
def test_api_url_from_host(host: str, port: int | None, url: str) -> None:
    assert api_url_from_host(host, port) == url


@pytest.mark.parametrize(("host", "why"), [
    ("", "empty"), ("http://acme.sutro.example", "must use https"), ("api.sutro.sh", "no longer supported"),
    ("acme.sutro.example/v2", "/v1 prefix"),
])
def test_api_url_from_host_keeps_the_url_rules(host: str, why: str) -> None:
    with pytest.raises(SutroConfigurationError, match=why):
        api_url_from_host(host)


def test_sutro_and_opper_configs_share_their_base() -> None:
    sutro = SutroConfig.resolve("http://127.0.0.1:9", "sk_one")
    opper = OpperConfig.resolve("http://127.0.0.1:9/", "op_two")
    assert (sutro.api_root, opper.api_root) == ("http://127.0.0.1:9/v1", "http://127.0.0.1:9")
    assert (sutro.auth_scheme, opper.auth_scheme) == ("Key", "Bearer")
    assert "sk_one" not in repr(sutro) and "op_two" not in repr(opper)
    for config, message in ((SutroConfig, "no Sutro API key"), (OpperConfig, "no Opper API key")):
        with pytest.raises(SutroConfigurationError, match=message):
            config.resolve("http://127.0.0.1:9", " ")
    for url, what in (("http://h.example", "Sutro API URL"), ("http://h.example", "Opper base URL")):
        config_type = SutroConfig if what.startswith("Sutro") else OpperConfig
        with pytest.raises(SutroConfigurationError, match=f"^{what} must use https"):
            config_type.resolve(url, "k")
