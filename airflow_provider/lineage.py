"""OpenLineage facets of the Sutro operators (imported only when the OpenLineage
provider asks for them, so it stays an optional dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from airflow.providers.common.compat.openlineage.facet import Dataset, ExternalQueryRunFacet
from airflow.providers.openlineage.extractors import OperatorLineage


class BatchLineageSource(Protocol):
    """What lineage reads of a batch operator (its input and output arguments)."""

    @property
    def input_uri(self) -> str | None: ...
    @property
    def sql(self) -> str | None: ...
    @property
    def conn_id(self) -> str | None: ...
    @property
    def output_uri(self) -> str | None: ...
    @property
    def destination_table(self) -> str | None: ...
    @property
    def destination_conn_id(self) -> str | None: ...


def uri_dataset(uri: str) -> Dataset:
    """``s3://bucket/key`` → namespace ``s3://bucket``, name ``key``; a local path → ``file``."""
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc:
        return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.lstrip("/") or "/")
    return Dataset(namespace="file", name=parts.path or uri)


def db_namespace(conn_id: str) -> str:
    """The OpenLineage namespace of a database connection (``postgres://host:port``...)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    try:
        hook = conn.get_hook()
        info = hook.get_openlineage_database_info(conn)
        if info is not None:
            return f"{info.scheme}://{info.authority}" if info.authority else f"{info.scheme}"
    except Exception:  # the database provider has no lineage support
        pass
    return f"{conn.conn_type}://{conn.host or 'localhost'}"


def sql_tables(sql: str, conn_id: str) -> list[str]:
    """Tables read by ``sql`` (empty when it cannot be parsed)."""
    try:
        from airflow.providers.openlineage.sqlparser import SQLParser

        meta = SQLParser().parse(sql)
    except Exception:
        return []
    return [t.qualified_name for t in (meta.in_tables if meta else [])]


def batch_lineage(op: BatchLineageSource, job_ids: Sequence[str] = (), origin: str | None = None) -> OperatorLineage:
    """Input and output datasets of ``op``; with ``job_ids``, an ``externalQuery`` run
    facet naming them at the deployment ``origin``."""
    inputs: list[Dataset] = []
    outputs: list[Dataset] = []
    if op.input_uri:
        inputs.append(uri_dataset(op.input_uri))
    if op.sql and op.conn_id:
        namespace = db_namespace(op.conn_id)
        inputs.extend(Dataset(namespace=namespace, name=t) for t in sql_tables(op.sql, op.conn_id))
    if op.output_uri:
        outputs.append(uri_dataset(op.output_uri))
    if op.destination_table and op.destination_conn_id:
        outputs.append(Dataset(namespace=db_namespace(op.destination_conn_id), name=op.destination_table))
    run_facets: dict[str, Any] = {}
    if job_ids:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=",".join(job_ids), source=origin or "")
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets=run_facets)
