"""The installed version of the ``sutro-providers`` distribution (one answer for the
Airflow provider's metadata and Dagster's library registry)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGE_NAME = "sutro-providers"
UNKNOWN_VERSION = "0+unknown"


def package_version() -> str:
    """The version pip installed, or ``0+unknown`` when running from an uninstalled checkout."""
    try:
        return version(PACKAGE_NAME)
    except PackageNotFoundError:
        return UNKNOWN_VERSION


__version__ = package_version()

__all__ = ["PACKAGE_NAME", "__version__", "package_version"]
