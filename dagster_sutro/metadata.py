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
  and ``sutro.{model}.output_tokens`` (for Insights); an Opper run gives
  ``opper.{model}.calls``, ``.input_tokens``, ``.output_tokens``, ``.cost_usd`` per model;
* ``sutro/label_distribution``: a markdown table of label counts and shares;
* ``dagster/column_lineage`` (:class:`dagster.TableColumnLineage`): each result column
  from the Function's input columns of the upstream asset, each kept column from
  itself (:mod:`sutro_providers.column_lineage`), and the result columns'
  descriptions (from the Function spec) in ``dagster/column_schema``.

The asset definition carries the same lineage and descriptions where they are known
before any run (:func:`definition_metadata`); a sensor's observation of a job
finished outside Dagster carries :func:`job_metadata`.

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

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster._core.definitions.metadata import NamespacedMetadataSet

from dagster_sutro.io_managers import COLUMN_SCHEMA_KEY, table_metadata
from dagster_sutro.streams import ParquetTable
from sutro_providers.client.models import JobRecord
from sutro_providers.collection.unpack import result_schema
from sutro_providers.column_lineage import column_lineage, result_column_lineage
from sutro_providers.columns import SKIP_REASON
from sutro_providers.function_spec import FunctionSpec, InputField
from sutro_providers.manifest import Manifest

DEFAULT_JOB_URL_TEMPLATE = "{origin}/jobs/{job_id}"
COST_KEY = "sutro/cost_usd"
ROWS_IN_KEY = "sutro/rows_in"
ROWS_OUT_KEY = "sutro/rows_out"
COLUMN_LINEAGE_KEY = "dagster/column_lineage"

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


def _usage(model: str, input_tokens: int | None, output_tokens: int | None) -> dict[str, int]:
    return {f"sutro.{model}.input_tokens": int(input_tokens or 0), f"sutro.{model}.output_tokens": int(output_tokens or 0)}


def usage_metadata(manifest: Manifest) -> dict[str, Any]:
    """Token usage per model: ``sutro.{model}.input_tokens`` / ``.output_tokens``; a
    per-row backend's run (Opper: ``usage_by_model``) gives ``{backend}.{model}.calls``,
    ``.input_tokens``, ``.output_tokens`` and ``.cost_usd`` for each model it called."""
    if manifest.usage_by_model:
        usage: dict[str, Any] = {}
        for name, used in manifest.usage_by_model.items():
            key = f"{manifest.backend}.{name}"
            usage.update({f"{key}.calls": used.calls, f"{key}.input_tokens": used.input_tokens,
                          f"{key}.output_tokens": used.output_tokens})
            if used.cost_usd is not None:
                usage[f"{key}.cost_usd"] = used.cost_usd
        return usage
    return _usage(manifest.model or manifest.function, manifest.input_tokens, manifest.output_tokens)


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


@dataclass(frozen=True)
class EnrichedColumns:
    """What the column lineage of one enriched table is derived from.

    ``input_columns``: the fields the Function reads (its declared inputs);
    ``upstream_key``: the asset they are read from; ``source_columns``: the upstream
    table's columns (``None`` when unknown: then every column that is not a known
    result column counts as kept); ``prefix``: the run's ``output_prefix``."""

    function: str
    spec: FunctionSpec | None
    input_columns: tuple[str, ...]
    upstream_key: dg.AssetKey | None
    source_columns: frozenset[str] | None = None
    prefix: str = ""

    def lineage_and_descriptions(self, columns: Sequence[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
        """For the table's ``columns``: column -> the upstream columns it comes from,
        and result column -> description."""
        added = {c.name: c for c in result_column_lineage(self.function, self.spec, self.input_columns,
                                                          prefix=self.prefix)}
        kept = [c for c in columns if c not in added and (self.source_columns is None or c in self.source_columns)]
        lineage = column_lineage(self.function, self.spec, self.input_columns, kept, prefix=self.prefix)
        descriptions = {name: column.description for name, column in added.items()}
        for name in columns:
            if name not in lineage:  # an output field of a Function that publishes no spec: read from the results
                lineage[name] = self.input_columns
                descriptions[name] = f"Output of the Sutro Function {self.function!r}"
        return {c: lineage[c] for c in columns if c in lineage}, descriptions

    def lineage_value(self, columns: Sequence[str]) -> dg.TableColumnLineage:
        if self.upstream_key is None:
            raise ValueError("the upstream asset is not known")
        lineage, _ = self.lineage_and_descriptions(columns)
        return dg.TableColumnLineage({
            column: [dg.TableColumnDep(self.upstream_key, source) for source in sources]
            for column, sources in lineage.items() if sources
        })


def column_metadata(columns: EnrichedColumns, table: pa.Table | ParquetTable) -> dict[str, Any]:
    """``dagster/column_schema`` of ``table`` with the result columns' descriptions, and
    ``dagster/column_lineage`` (when the upstream asset is known)."""
    _, descriptions = columns.lineage_and_descriptions(table.schema.names)
    metadata = table_metadata(table, descriptions)
    if columns.upstream_key is not None:
        metadata[COLUMN_LINEAGE_KEY] = columns.lineage_value(table.schema.names)
    return metadata


def declared_column_schema(upstream: Any) -> dg.TableSchema | None:
    """The ``dagster/column_schema`` an upstream :class:`dagster.AssetSpec` or
    single-asset :class:`dagster.AssetsDefinition` declares, if any."""
    if isinstance(upstream, dg.AssetsDefinition):
        metadata = upstream.metadata_by_key.get(upstream.key, {}) if len(upstream.keys) == 1 else {}
    elif isinstance(upstream, dg.AssetSpec):
        metadata = upstream.metadata
    else:
        return None
    value = metadata.get(COLUMN_SCHEMA_KEY)
    schema = getattr(value, "schema", value)
    return schema if isinstance(schema, dg.TableSchema) else None


def definition_metadata(
    function: str,
    upstream_key: dg.AssetKey,
    *,
    spec: FunctionSpec | None = None,
    input_fields: Sequence[InputField] | None = None,
    upstream_schema: dg.TableSchema | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """Column metadata of the asset *definition*, from what is known before any run:

    * with the Function's input fields (``input_fields``, else the ``spec``'s):
      ``dagster/column_lineage`` of the result columns the spec names (without a spec:
      ``confidence`` and ``sutro_skip_reason``), plus the upstream's columns as kept
      columns when the upstream declares a ``dagster/column_schema``;
    * with a ``spec`` and that upstream schema too: the whole enriched
      ``dagster/column_schema`` (kept columns as declared, result columns typed and
      described).

    Nothing when the input fields are not known (the spec is then read at run time,
    and the materialization carries the metadata)."""
    fields = list(input_fields) if input_fields is not None else (spec.inputs if spec is not None else None)
    if not fields:
        return {}
    upstream_columns = list(upstream_schema.columns) if upstream_schema is not None else []
    columns = EnrichedColumns(function, spec, tuple(f.name for f in fields), upstream_key,
                              frozenset(c.name for c in upstream_columns), prefix)
    added = [c.name for c in result_column_lineage(function, spec, columns.input_columns, prefix=prefix)]
    names = [c.name for c in upstream_columns if c.name not in added] + added
    metadata: dict[str, Any] = {COLUMN_LINEAGE_KEY: columns.lineage_value(names)}
    if spec is not None and upstream_schema is not None:
        _, descriptions = columns.lineage_and_descriptions(names)
        types = {f.name: str(f.type) for f in result_schema(spec, prefix=prefix)}
        types[SKIP_REASON] = "string"
        metadata[COLUMN_SCHEMA_KEY] = dg.TableSchema(columns=[
            *(c for c in upstream_columns if c.name not in added),
            *(dg.TableColumn(name, types.get(name, "string"), description=descriptions.get(name)) for name in added),
        ])
    return metadata


def utc_timestamp(value: dt.datetime) -> float:
    """Seconds since the epoch of a server time (a time without a zone is UTC)."""
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def job_metadata(job: JobRecord, origin: str | None = None,
                 template: str = DEFAULT_JOB_URL_TEMPLATE) -> dict[str, Any]:
    """Metadata of one Sutro job seen by a sensor (no manifest: the job record alone):
    ``sutro/job_id``, ``sutro/job_name``, the :class:`SutroMetadataSet` keys the
    record knows (``function`` is the job's model, ``state`` its final status in lower
    case as on materializations: ``succeeded``, ``failed``, ``cancelled``; ``rows_out``, tokens,
    ``cost_usd``, ``cost_estimate_usd``), the usage keys and a ``sutro/job`` link."""
    model = job.model or "unknown"
    metadata: dict[str, Any] = {
        "sutro/job_id": job.job_id,
        "sutro/job_name": job.name or "",
        **SutroMetadataSet(function=job.model, state=job.status.value.lower(), job_ids=job.job_id,
                           rows_out=job.num_rows, input_tokens=job.input_tokens, output_tokens=job.output_tokens,
                           cost_usd=job.job_cost, cost_estimate_usd=job.cost_estimate),
        **_usage(model, job.input_tokens, job.output_tokens),
    }
    if job.datetime_completed is not None:
        metadata["sutro/completed_at"] = dg.MetadataValue.timestamp(utc_timestamp(job.datetime_completed))
    if job.failure_reason is not None and job.failure_reason.message:
        metadata["sutro/failure_reason"] = job.failure_reason.message
    if origin:
        metadata["sutro/job"] = dg.MetadataValue.url(template.format(origin=origin, job_id=job.job_id))
    return metadata


def build_metadata(
    manifest: Manifest,
    table: pa.Table | ParquetTable | None,
    *,
    origin: str | None = None,
    job_url_template: str = DEFAULT_JOB_URL_TEMPLATE,
    columns: EnrichedColumns | None = None,
    log: logging.Logger | Any | None = None,
) -> dict[str, Any]:
    """All materialization metadata of one run. Never raises: a part that fails is
    logged as a warning on ``log`` and left out. ``columns``: what the column
    lineage and descriptions are derived from (without it: the plain column schema)."""
    parts: list[tuple[str, Callable[[], Mapping[str, Any]]]] = [
        ("table", lambda: table_metadata(table) if table is not None else {}),
        ("column lineage", lambda: column_metadata(columns, table) if columns is not None and table is not None else {}),
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
