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


def _first_rank(item: pytest.Item) -> int:
    """0: in an ``xdist_group`` (a chain that one worker runs end to end: the longest
    unit of work); 1: marked ``slow`` or ``e2e``; 2: the rest."""
    if item.get_closest_marker("xdist_group") is not None:
        return 0
    if item.get_closest_marker("slow") is not None or item.get_closest_marker("e2e") is not None:
        return 1
    return 2


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, long work first (:func:`_long_work_first`), then the group suffix
    of ``--dist loadgroup`` (:func:`_group_suffix`)."""
    if config.getoption("dist", "no") != "no":
        _long_work_first(items)
    _group_suffix(config, items)


def _long_work_first(items: list[pytest.Item]) -> None:
    """The xdist scheduler hands out tests (and whole groups) in collection order, so a
    long test collected late (the Dagster and bench files come after most quick ones)
    could start when the other worker has nothing left to do, and the run would last as
    long as that one test. Longest units first (a group, then ``slow``/``e2e`` tests, each
    rank in file order) and the many short tests last let both workers end together.
    Every worker sorts the same collection the same way."""
    items.sort(key=_first_rank)  # stable: file order within a rank


def _group_suffix(config: pytest.Config, items: list[pytest.Item]) -> None:
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
