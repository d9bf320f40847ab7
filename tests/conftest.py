"""The suite enables the opt-in pytest plugin of ``sutro-providers[local]``
(fixtures ``sutro_server``, ``sutro_clean``, ``sutro_env``, ``sutro_s3_server``,
``sutro_s3_bucket``); it finds the example Functions through the
``sutro_functions_dir`` ini option in pyproject.toml."""

pytest_plugins = ["sutro_providers.local.pytest_plugin"]

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A PostgreSQL cluster of this test session (:mod:`tests.pg_cluster`: pgserver's
    binaries, so it runs on a fresh machine too; never skipped)."""
    from tests.pg_cluster import pg_cluster

    with pg_cluster() as cluster:
        yield cluster
