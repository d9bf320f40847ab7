"""Asset checks for enriched tables, declared on the asset and evaluated in its step.

Three checks, each optional, each blocking or not:

* ``sutro_row_parity``: every input row is in the output exactly once and was
  enriched (no row skipped as invalid);
* ``sutro_low_confidence``: the share of enriched rows whose confidence is below
  ``confidence_threshold`` is at most ``max_low_confidence_share``;
* ``sutro_cost``: the run's reported cost is at most ``max_cost_usd``.

A blocking check fails with severity ERROR and stops downstream assets of the
same run; a non-blocking one fails with WARN. For a cost bound evaluated from the
materialization metadata instead, :func:`cost_bounds_checks` wraps
:func:`dagster.build_metadata_bounds_checks` on ``sutro/cost_usd``.

Example::

    import dagster as dg
    from dagster_sutro.checks import SutroChecks

    checks = SutroChecks(max_low_confidence_share=0.2, max_cost_usd=5.0, cost_blocking=True)
    specs = checks.specs(dg.AssetKey(["support", "tickets_triaged"]))
    assert [s.name for s in specs] == ["sutro_row_parity", "sutro_low_confidence", "sutro_cost"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field, model_validator

from dagster_sutro.metadata import COST_KEY
from sutro_providers.manifest import Manifest
from sutro_providers.money import usd

ROW_PARITY = "sutro_row_parity"
LOW_CONFIDENCE = "sutro_low_confidence"
COST = "sutro_cost"


class SutroChecks(dg.Model, dg.Resolvable):
    """Which checks an enriched asset declares, their bounds, and which block."""

    row_parity: bool = Field(default=True, description="Check that every input row was enriched exactly once.")
    row_parity_blocking: bool = Field(default=True, description="A row-parity failure blocks downstream assets.")
    max_low_confidence_share: float | None = Field(
        default=None,
        description="Fail when more than this share of enriched rows has a confidence below the run's "
        "confidence_threshold. None: no confidence check.",
    )
    confidence_blocking: bool = Field(default=False, description="A low-confidence failure blocks downstream assets.")
    max_cost_usd: float | None = Field(default=None, description="Fail when the run cost more than this. None: no cost check.")
    cost_blocking: bool = Field(default=False, description="A cost failure blocks downstream assets.")

    @model_validator(mode="after")
    def _check_bounds(self) -> SutroChecks:
        if self.max_low_confidence_share is not None and not 0 <= self.max_low_confidence_share <= 1:
            raise ValueError("max_low_confidence_share must be between 0 and 1")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise ValueError("max_cost_usd must not be negative")
        return self

    def specs(self, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
        """The :class:`AssetCheckSpec` of each enabled check, for the asset's ``check_specs``."""
        specs = []
        if self.row_parity:
            specs.append(dg.AssetCheckSpec(ROW_PARITY, asset=asset_key, blocking=self.row_parity_blocking,
                                           description="Every input row was enriched exactly once."))
        if self.max_low_confidence_share is not None:
            specs.append(dg.AssetCheckSpec(
                LOW_CONFIDENCE, asset=asset_key, blocking=self.confidence_blocking,
                description=f"At most {self.max_low_confidence_share:.0%} of rows below the confidence threshold."))
        if self.max_cost_usd is not None:
            specs.append(dg.AssetCheckSpec(COST, asset=asset_key, blocking=self.cost_blocking,
                                           description=f"The Sutro run cost at most ${self.max_cost_usd}."))
        return specs

    def evaluate(self, manifest: Manifest, table: pa.Table | None, asset_key: dg.AssetKey) -> list[dg.AssetCheckResult]:
        """One :class:`AssetCheckResult` per enabled check, from the run's manifest and table."""
        results = []
        if self.row_parity:
            results.append(self._row_parity(manifest, table, asset_key))
        if self.max_low_confidence_share is not None:
            results.append(self._confidence(manifest, asset_key, self.max_low_confidence_share))
        if self.max_cost_usd is not None:
            results.append(self._cost(manifest, asset_key, self.max_cost_usd))
        return results

    @staticmethod
    def _severity(blocking: bool) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN

    def _row_parity(self, manifest: Manifest, table: pa.Table | None, key: dg.AssetKey) -> dg.AssetCheckResult:
        table_rows = table.num_rows if table is not None else manifest.rows_out
        enriched = manifest.rows_out - manifest.rows_skipped
        failed = manifest.rows_failed  # per-row backends: answers that failed (kept without results, not skipped as invalid)
        passed = table_rows == manifest.rows_in and manifest.rows_out == manifest.rows_in and manifest.rows_skipped == 0
        metadata = {"rows_in": manifest.rows_in, "rows_out": table_rows, "rows_enriched": enriched,
                    "rows_skipped": manifest.rows_skipped}
        if failed:
            metadata["rows_failed"] = failed
        return dg.AssetCheckResult(
            check_name=ROW_PARITY, asset_key=key, passed=passed, severity=self._severity(self.row_parity_blocking),
            description=None if passed else (
                f"{manifest.rows_in} input rows, {table_rows} output rows, "
                f"{manifest.rows_skipped - failed} skipped as invalid" + (f", {failed} failed" if failed else "")),
            metadata=metadata,
        )

    def _confidence(self, manifest: Manifest, key: dg.AssetKey, bound: float) -> dg.AssetCheckResult:
        summary = manifest.summary
        enriched = manifest.rows_out - manifest.rows_skipped
        below = summary.rows_below_confidence
        metadata: dict[str, Any] = {"max_share": bound, "rows_enriched": enriched}
        if summary.confidence_threshold is not None:
            metadata["confidence_threshold"] = summary.confidence_threshold
        if summary.mean_confidence is not None:
            metadata["mean_confidence"] = summary.mean_confidence
        if below is None:
            passed = enriched == 0
            description = None if passed else "the results carry no confidence scores"
        else:
            share = below / enriched if enriched else 0.0
            metadata.update(rows_below_confidence=below, share_below_confidence=round(share, 6))
            passed = share <= bound
            description = None if passed else f"{share:.1%} of rows are below the confidence threshold (max {bound:.0%})"
        return dg.AssetCheckResult(check_name=LOW_CONFIDENCE, asset_key=key, passed=passed,
                                   severity=self._severity(self.confidence_blocking),
                                   description=description, metadata=metadata)

    def _cost(self, manifest: Manifest, key: dg.AssetKey, bound: float) -> dg.AssetCheckResult:
        cost = manifest.cost_usd
        if cost is None and manifest.rows_in == 0:
            cost = 0.0
        passed = cost is not None and cost <= bound
        description = None if passed else ("the deployment reported no cost" if cost is None
                                           else f"the run cost ${usd(cost, distinct_from=bound)}, above ${usd(bound, distinct_from=cost)}")
        metadata: dict[str, Any] = {"max_cost_usd": bound}
        if cost is not None:
            metadata["cost_usd"] = cost
        return dg.AssetCheckResult(check_name=COST, asset_key=key, passed=passed,
                                   severity=self._severity(self.cost_blocking),
                                   description=description, metadata=metadata)


def cost_bounds_checks(
    assets: Sequence[dg.AssetsDefinition | dg.AssetKey | str], max_cost_usd: float,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
) -> Sequence[dg.AssetChecksDefinition]:
    """Separate checks that read ``sutro/cost_usd`` from the latest materialization.

    Example::

        import dagster as dg
        from dagster_sutro.checks import cost_bounds_checks

        checks = cost_bounds_checks(["tickets_triaged"], max_cost_usd=10.0)
    """
    return dg.build_metadata_bounds_checks(assets=list(assets), severity=severity, metadata_key=COST_KEY,
                                           max_value=max_cost_usd)
