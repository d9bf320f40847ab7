"""Components of the Dagster integration (configured in ``defs.yaml``)."""

from dagster_sutro.components.function_component import SutroFunctionComponent

__all__ = ["SutroFunctionComponent"]
