"""Dagster integration of ``sutro-providers``: run Sutro batch-LLM Functions as assets.

* :class:`SutroResource`: connection, staging and waiting settings (``get_client()``,
  ``get_pipeline()``, ``enrich()``);
* :func:`sutro_function_asset`: an asset that enriches an upstream table;
* :class:`SutroChecks`: row parity, low-confidence share and cost checks;
* :class:`SutroParquetIOManager` / :class:`ConfigurableSutroParquetIOManager` and
  :class:`SutroDuckDBIOManager`: where enriched tables land;
* :class:`SutroFunctionComponent`: the same asset configured in YAML (``dg``);
* :class:`OpperResource`, :func:`opper_function_asset` and
  :class:`OpperFunctionComponent`: the same asset with the rows answered by Opper
  (one call per row; :mod:`dagster_sutro.opper`);
* :func:`build_sutro_jobs_sensor`: observations of Sutro jobs finished outside Dagster.

Importing the package registers ``dagster-sutro`` with the package version in
Dagster's library registry (``DagsterLibraryRegistry``), as Dagster's own
integrations do.

Example::

    import dagster as dg
    from dagster_sutro import SutroResource, sutro_function_asset

    triaged = sutro_function_asset(function="ticket-triage", upstream="support/tickets",
                                   key="support/tickets_triaged")
    defs = dg.Definitions(
        assets=[triaged],
        resources={"sutro": SutroResource(api_url=dg.EnvVar("SUTRO_API_URL"), api_key=dg.EnvVar("SUTRO_API_KEY"),
                                          staging_url="s3://my-bucket/sutro")},
    )
"""

from dagster_shared.libraries import DagsterLibraryRegistry

from dagster_sutro.asset_decorator import sutro_function_asset
from dagster_sutro.checks import SutroChecks, cost_bounds_checks
from dagster_sutro.components import OpperFunctionComponent, SutroFunctionComponent
from dagster_sutro.io_managers import (
    ConfigurableSutroParquetIOManager,
    SutroDuckDBIOManager,
    SutroDuckDBTypeHandler,
    SutroParquetIOManager,
)
from dagster_sutro.metadata import SutroMetadataSet
from dagster_sutro.opper import OpperMetadataSet, OpperResource, opper_function_asset
from dagster_sutro.resources import SutroResource
from dagster_sutro.sensors import build_sutro_jobs_sensor
from sutro_providers.version import __version__

LIBRARY_NAME = "dagster-sutro"
DagsterLibraryRegistry.register(LIBRARY_NAME, __version__, is_dagster_package=False)

__all__ = [
    "ConfigurableSutroParquetIOManager",
    "OpperFunctionComponent",
    "OpperMetadataSet",
    "OpperResource",
    "SutroChecks",
    "SutroDuckDBIOManager",
    "SutroDuckDBTypeHandler",
    "SutroFunctionComponent",
    "SutroMetadataSet",
    "SutroParquetIOManager",
    "SutroResource",
    "__version__",
    "build_sutro_jobs_sensor",
    "cost_bounds_checks",
    "opper_function_asset",
    "sutro_function_asset",
]
