"""Materialization metadata for a Sutro enrichment run, built from its manifest.

Keys written (all plain JSON-able values, never a secret or a pre-signed URL):

* ``dagster/row_count`` and ``dagster/column_schema`` (:class:`TableMetadataSet`);
* the :class:`SutroMetadataSet` namespace ``sutro/``: ``function``, ``state``,
  ``job_ids``, ``rows_in``, ``rows_out``, ``rows_skipped``, ``input_tokens``,
  ``output_tokens``, ``cost_usd``, ``cost_estimate_usd``, ``rows_submitted``, ``rows_reused`` and
  ``cost_avoided_usd`` (incremental runs: rows and dollars the results cache saved), ``mean_confidence``, ``rows_below_confidence``,
  ``confidence_threshold``, ``run_key``;
* one link per job, ``sutro/job/<n>`` (:meth:`dagster.MetadataValue.url`);
* per-model batch usage in the ``dagster-openai`` style, ``sutro.{model}.input_tokens``
  and ``sutro.{model}.output_tokens`` (for Insights);
* ``sutro/label_distribution``: a markdown table of label counts and shares.

Building metadata never fails the asset: each part is built on its own and a part
that raises is logged and left out.

Example::

    import dagster as dg
    from sutro_providers.manifest import Manifest
    from dagster_sutro.metadata import build_metadata

    manifest = Manifest(run_key="k", identity="dagster: ...", function="ticket-triage", state="succeeded")
    metadata = build_metadata(manifest, table=None)
    assert metadata["sutro/state"] == "succeeded"
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster._core.definitions.metadata import NamespacedMetadataSet

from dagster_sutro.io_managers import table_metadata
from sutro_providers.manifest import Manifest

DEFAULT_JOB_URL_TEMPLATE = "{origin}/jobs/{job_id}"
COST_KEY = "sutro/cost_usd"
ROWS_IN_KEY = "sutro/rows_in"
ROWS_OUT_KEY = "sutro/rows_out"

_log = logging.getLogger(__name__)


class SutroMetadataSet(NamespacedMetadataSet):
    """The ``sutro/`` metadata namespace of an enriched asset's materialization."""

    function: str | None = None
    state: str | None = None
    job_ids: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_skipped: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cost_estimate_usd: float | None = None
    rows_submitted: int | None = None
    rows_reused: int | None = None
    cost_avoided_usd: float | None = None
    mean_confidence: float | None = None
    rows_below_confidence: int | None = None
    confidence_threshold: float | None = None
    run_key: str | None = None

    @classmethod
    def namespace(cls) -> str:
        return "sutro"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> SutroMetadataSet:
        summary = manifest.summary
        return cls(
            function=manifest.function,
            state=manifest.state,
            job_ids=", ".join(manifest.job_ids) or None,
            rows_in=manifest.rows_in,
            rows_out=manifest.rows_out,
            rows_skipped=manifest.rows_skipped,
            input_tokens=manifest.input_tokens,
            output_tokens=manifest.output_tokens,
            cost_usd=manifest.cost_usd,
            cost_estimate_usd=manifest.cost_estimate_usd,
            rows_submitted=manifest.rows_submitted,
            rows_reused=manifest.rows_reused,
            cost_avoided_usd=manifest.cost_avoided_usd,
            mean_confidence=summary.mean_confidence,
            rows_below_confidence=summary.rows_below_confidence,
            confidence_threshold=summary.confidence_threshold,
            run_key=manifest.run_key,
        )


def usage_metadata(manifest: Manifest) -> dict[str, int]:
    """Batch token usage per model: ``sutro.{model}.input_tokens`` / ``.output_tokens``."""
    model = manifest.model or manifest.function
    return {
        f"sutro.{model}.input_tokens": int(manifest.input_tokens or 0),
        f"sutro.{model}.output_tokens": int(manifest.output_tokens or 0),
    }


def job_links(manifest: Manifest, origin: str, template: str = DEFAULT_JOB_URL_TEMPLATE) -> dict[str, Any]:
    """One ``sutro/job/<n>`` URL per shard that has a job id."""
    return {
        f"sutro/job/{shard.index}": dg.MetadataValue.url(template.format(origin=origin, job_id=shard.job_id))
        for shard in manifest.shards
        if shard.job_id
    }


def label_distribution_markdown(label_counts: Mapping[str, int]) -> str:
    """A markdown table of labels, counts and shares, most frequent first."""
    total = sum(label_counts.values()) or 1
    lines = ["| label | rows | share |", "|---|---:|---:|"]
    for label, count in sorted(label_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {label} | {count} | {count / total:.1%} |")
    return "\n".join(lines)


def _label_metadata(manifest: Manifest) -> dict[str, Any]:
    counts = manifest.summary.label_counts
    if not counts:
        return {}
    return {"sutro/label_distribution": dg.MetadataValue.md(label_distribution_markdown(counts))}


def build_metadata(
    manifest: Manifest,
    table: pa.Table | None,
    *,
    origin: str | None = None,
    job_url_template: str = DEFAULT_JOB_URL_TEMPLATE,
    log: logging.Logger | Any | None = None,
) -> dict[str, Any]:
    """All materialization metadata of one run. Never raises: a part that fails is
    logged as a warning on ``log`` and left out."""
    parts: list[tuple[str, Callable[[], Mapping[str, Any]]]] = [
        ("table", lambda: table_metadata(table) if table is not None else {}),
        ("sutro", lambda: dict(SutroMetadataSet.from_manifest(manifest))),
        ("usage", lambda: usage_metadata(manifest)),
        ("links", lambda: job_links(manifest, origin, job_url_template) if origin else {}),
        ("labels", lambda: _label_metadata(manifest)),
    ]
    metadata: dict[str, Any] = {}
    for name, build in parts:
        try:
            metadata.update(build())
        except Exception as exc:  # metadata must never fail the asset
            (log or _log).warning(f"could not build the {name} metadata of the Sutro run: {type(exc).__name__}: {exc}")
    return metadata
