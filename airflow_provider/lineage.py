"""OpenLineage facets of the Sutro operators (imported only when the OpenLineage
provider asks for them, so it stays an optional dependency).

Datasets: the input (``input_uri``, or the tables a ``sql`` query reads) and the
outputs (``output_uri``, ``destination_table`` on ``destination_conn_id``). Rows
passed inline (``input_data``, ``@task.sutro`` rows) are no dataset.

Facets, when the enriched table's schema is known (the start event: only for an
``input_uri`` or inline rows, from the file's footer or the rows; the complete
event: from the written Parquet's footer):

* ``schema`` on every dataset: the input's columns (a query's input tables: the
  columns the query reads), the enriched table (the result columns described from
  the Function spec), the destination's loaded columns plus ``partition_column``;
* ``columnLineage`` on every output: each kept column from itself (``IDENTITY``),
  each result column from all the input fields the Function reads
  (:mod:`sutro_providers.column_lineage`), traced through the query to its table
  column when the query can be parsed.

Without a published Function spec the source and result columns of the output
cannot be told apart: only ``confidence`` and ``sutro_skip_reason`` get lineage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
from airflow.providers.common.compat.openlineage.facet import (
    ColumnLineageDatasetFacet,
    Dataset,
    ExternalQueryRunFacet,
    Fields,
    InputField,
    SchemaDatasetFacet,
    SchemaDatasetFacetFields,
)
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.generated.column_lineage_dataset import Transformation

from airflow_provider.assets import table_location
from sutro_providers.column_lineage import ResultColumn, column_lineage, result_column_lineage
from sutro_providers.columns import ROW_ID
from sutro_providers.function_spec import FunctionSpec

log = logging.getLogger(__name__)
SQL_DIALECTS = {"postgres": "postgres", "postgresql": "postgres", "sqlite": "sqlite", "duckdb": "duckdb"}


@dataclass
class Enrichment:
    """What the facets describe: the Function, its spec and the enriched table's schema."""

    function: str
    spec: FunctionSpec | None
    schema: pa.Schema
    prefix: str = ""
    input_fields: Sequence[str] | None = None
    """The fields the Function reads, when given to the operator (else the spec's inputs)."""

    def function_inputs(self) -> list[str]:
        """The input columns the Function reads (those of the table)."""
        inputs = self.input_fields if self.input_fields is not None else (self.spec.input_names if self.spec else ())
        names = set(self.schema.names)
        return [n for n in inputs if n in names]

    def results(self) -> list[ResultColumn]:
        return result_column_lineage(self.function, self.spec, self.function_inputs(), prefix=self.prefix)

    def source_fields(self) -> list[pa.Field]:
        """The enriched table's columns that came from the input (known with a spec only)."""
        if self.spec is None:
            return []
        added = {c.name for c in self.results()}
        return [f for f in self.schema if f.name not in added and f.name != ROW_ID]

    def lineage(self) -> dict[str, tuple[str, ...]]:
        kept = [f.name for f in self.source_fields()]
        return column_lineage(self.function, self.spec, self.function_inputs(), kept, prefix=self.prefix)

    def descriptions(self) -> dict[str, str]:
        return {c.name: c.description for c in self.results()}


@dataclass
class _Inputs:
    datasets: list[Dataset] = field(default_factory=list)
    columns: dict[str, list[tuple[Dataset, str]]] = field(default_factory=dict)
    """source column -> the input dataset fields it is read from."""


def uri_dataset(uri: str) -> Dataset:
    """``s3://bucket/key`` → namespace ``s3://bucket``, name ``key``; a local path → ``file``."""
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc:
        return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.lstrip("/") or "/")
    return Dataset(namespace="file", name=parts.path or uri)


def table_dataset(conn_id: str, table: str) -> Dataset:
    """A SQL table as OpenLineage names it (:func:`airflow_provider.assets.table_location`)."""
    where = table_location(conn_id, table)
    return Dataset(namespace=where.namespace, name=where.name)


def sql_lineage(sql: str, conn_id: str) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """The tables ``sql`` reads, and each result column's (table, column) origins
    (empty when the query cannot be parsed)."""
    try:
        from airflow.providers.openlineage.sqlparser import SQLParser
        from airflow.sdk import BaseHook

        conn_type = (BaseHook.get_connection(conn_id).conn_type or "").lower()
        meta = SQLParser(dialect=SQL_DIALECTS.get(conn_type, "generic")).parse(sql)
    except Exception:
        return [], {}
    if meta is None:
        return [], {}
    origins = {c.descendant.name: [(c_in.origin.qualified_name, c_in.name) for c_in in c.lineage if c_in.origin]
               for c in meta.column_lineage}
    return [t.qualified_name for t in meta.in_tables], origins


def sql_tables(sql: str, conn_id: str) -> list[str]:
    """Tables read by ``sql`` (empty when it cannot be parsed)."""
    return sql_lineage(sql, conn_id)[0]


def schema_facet(fields: Sequence[pa.Field], descriptions: dict[str, str] | None = None) -> SchemaDatasetFacet:
    texts = descriptions or {}
    return SchemaDatasetFacet(fields=[
        SchemaDatasetFacetFields(name=f.name, type=str(f.type), description=texts.get(f.name), ordinal_position=i)
        for i, f in enumerate(fields, start=1)])


def _inputs(op: Any, enrichment: Enrichment | None) -> _Inputs:
    found = _Inputs()
    source = enrichment.source_fields() if enrichment is not None else []
    if getattr(op, "input_uri", None):
        dataset = uri_dataset(op.input_uri)
        if source:
            dataset.facets = {"schema": schema_facet(source)}
        found.datasets.append(dataset)
        found.columns = {f.name: [(dataset, f.name)] for f in source}
    sql, conn_id = getattr(op, "sql", None), getattr(op, "conn_id", None)
    if sql and conn_id:
        tables, origins = sql_lineage(sql, conn_id)
        by_table = {t: table_dataset(conn_id, t) for t in tables}
        read: dict[str, list[pa.Field]] = {t: [] for t in tables}
        for f in source:
            pairs = origins.get(f.name) or ([(tables[0], f.name)] if len(tables) == 1 else [])
            pairs = [(t, c) for t, c in pairs if t in by_table]
            found.columns[f.name] = [(by_table[t], c) for t, c in pairs]
            for t, c in pairs:
                if c not in {x.name for x in read[t]}:
                    read[t].append(pa.field(c, f.type))
        for t, dataset in by_table.items():
            if read[t]:
                dataset.facets = {"schema": schema_facet(read[t])}
            found.datasets.append(dataset)
    return found


def _column_lineage(columns: Sequence[str], enrichment: Enrichment, inputs: _Inputs) -> ColumnLineageDatasetFacet | None:
    lineage, texts = enrichment.lineage(), enrichment.descriptions()
    fields: dict[str, Fields] = {}
    for name in columns:
        sources = lineage.get(name, ())
        identity = sources == (name,) and name not in texts
        transformation = (Transformation(type="DIRECT", subtype="IDENTITY") if identity else Transformation(
            type="DIRECT", subtype="TRANSFORMATION",
            description=f"Sutro Function {enrichment.function!r}: {texts.get(name, name)}"))
        refs = [InputField(namespace=ds.namespace, name=ds.name, field=col, transformations=[transformation])
                for source in sources for ds, col in inputs.columns.get(source, [])]
        if refs:
            fields[name] = Fields(inputFields=refs, transformationDescription=None if identity else texts.get(name),
                                  transformationType="IDENTITY" if identity else None)
    return ColumnLineageDatasetFacet(fields=fields) if fields else None


def _output(dataset: Dataset, fields: Sequence[pa.Field], enrichment: Enrichment | None, inputs: _Inputs) -> Dataset:
    if enrichment is None:
        return dataset
    facets: dict[str, Any] = {"schema": schema_facet(fields, enrichment.descriptions())}
    lineage = _column_lineage([f.name for f in fields], enrichment, inputs)
    if lineage is not None:
        facets["columnLineage"] = lineage
    dataset.facets = facets
    return dataset


def batch_lineage(op: Any, job_ids: Sequence[str] = (), origin: str | None = None,
                  enrichment: Enrichment | None = None) -> OperatorLineage:
    """Input and output datasets of ``op`` (any Sutro operator: its ``input_uri``,
    ``sql``/``conn_id``, ``output_uri``, ``destination_table``/``destination_conn_id``
    arguments), with the facets of ``enrichment`` when given; with ``job_ids``, an
    ``externalQuery`` run facet naming them at the deployment ``origin``."""
    inputs = _inputs(op, enrichment)
    outputs: list[Dataset] = []
    enriched = [f for f in enrichment.schema if f.name != ROW_ID] if enrichment is not None else []
    if getattr(op, "output_uri", None):
        outputs.append(_output(uri_dataset(op.output_uri), enriched, enrichment, inputs))
    table, conn_id = getattr(op, "destination_table", None), getattr(op, "destination_conn_id", None)
    if table and conn_id:
        wanted = op.destination_columns or [f.name for f in enriched]
        by_name = {f.name: f for f in enriched}
        loaded = [by_name[c] for c in wanted if c in by_name and c != op.partition_column]
        outputs.append(_output(table_dataset(conn_id, table), [*loaded, pa.field(op.partition_column, pa.string())],
                               enrichment, inputs))
    run_facets: dict[str, Any] = {}
    if job_ids:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=",".join(job_ids), source=origin or "")
    return OperatorLineage(inputs=inputs.datasets, outputs=outputs, run_facets=run_facets)


# ---------------------------------------------------------------------- what the operators know
def parquet_schema(uri: str, storage_options: dict[str, Any]) -> pa.Schema:
    """The Arrow schema in a Parquet file's footer (no rows are read)."""
    import pyarrow.parquet as pq
    from fsspec.core import url_to_fs

    from sutro_providers.parquet_io import open_parquet

    fs, path = url_to_fs(uri, **storage_options)
    with open_parquet(fs, path) as handle:
        return pq.ParquetFile(handle).schema_arrow


def _spec(op: Any) -> FunctionSpec | None:
    try:
        spec: FunctionSpec | None = op.pipeline.function_spec(op.function_name)
        return spec
    except Exception as exc:  # a deployment without specs, or an operator without a Sutro pipeline
        log.debug("no Function spec for lineage: %s", exc)
        return None


def _enrichment(op: Any, schema: pa.Schema, spec: FunctionSpec | None, options: Any) -> Enrichment:
    fields = [f.name for f in options.input_fields] if getattr(options, "input_fields", None) is not None else None
    return Enrichment(op.function_name, spec, schema, getattr(options, "output_prefix", ""), fields)


def batch_enrichment_at_start(op: Any) -> Enrichment | None:
    """Before the run: known only for an ``input_uri`` (its footer or header) or
    inline rows, with the Function spec (a query is not run twice for lineage)."""
    from sutro_providers.inputs.sources import open_source
    from sutro_providers.landing import enriched_schema

    if op.input_uri is None and not isinstance(op.input_data, list):
        return None
    try:
        reader = open_source(op.source(), storage_options=op.hook.storage_options() if op.input_uri else None)
        reader.close()
        spec, options = _spec(op), op.build_options()
        return _enrichment(op, enriched_schema(reader.schema, spec, options), spec, options)
    except Exception as exc:  # lineage never fails a task
        log.warning("no schema for the OpenLineage start event: %s", exc)
        return None


def batch_enrichment_at_end(op: Any) -> Enrichment | None:
    """After the run: the schema of the enriched Parquet it wrote (footer only)."""
    manifest = op._manifest
    if manifest is None or not manifest.output_uri:
        return None
    try:
        options = op.build_options()
        schema = parquet_schema(manifest.output_uri, options.output_storage_options)
        return _enrichment(op, schema, _spec(op), options)
    except Exception as exc:  # lineage never fails a task
        log.warning("no schema for the OpenLineage complete event: %s", exc)
        return None


__all__ = ["Enrichment", "batch_enrichment_at_end", "batch_enrichment_at_start", "batch_lineage", "parquet_schema", "schema_facet", "sql_lineage", "sql_tables", "table_dataset", "uri_dataset"]
