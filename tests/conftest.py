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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--dist loadgroup`` on pytest 9.2: xdist 3.8 tells the scheduler a test's
    ``xdist_group`` by appending ``@<group>`` to its node id through the old ``_nodeid``
    attribute, which pytest 9.2's structured node ids no longer read, so every group
    was silently split across the workers (pytest-dev/pytest-xdist#1386). Append it to
    the structured id instead (what the open fix, pytest-dev/pytest-xdist#1388, does)."""
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9.2: xdist's own suffix works
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = NodeId.parse(item.nodeid + suffix)
