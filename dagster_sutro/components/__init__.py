"""Components of the Dagster integration (configured in ``defs.yaml``)."""

from dagster_sutro.components.function_component import SutroFunctionComponent
from dagster_sutro.components.opper_component import OpperFunctionComponent

__all__ = ["OpperFunctionComponent", "SutroFunctionComponent"]
