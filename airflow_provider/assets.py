"""Airflow Assets of the Sutro batch operator: where its outputs are, as asset URIs,
and the asset events it emits when it lands them.

* A literal ``output_uri`` (no Jinja) is a static ``Asset`` outlet, declared at parse
  time; Airflow records its event when the task succeeds.
* A templated ``output_uri`` (``.../{{ ds }}.parquet``) and a ``destination_table``
  are only known at run time (the table's URI needs its connection). The operator
  declares an :class:`~airflow.sdk.AssetAlias` outlet, by default named
  ``sutro/<dag_id>/<task_id>`` (``asset_alias=`` to choose), and adds one event per
  landed output through it (``context["outlet_events"][alias].add(...)``). A DAG
  scheduled on that alias (``schedule=AssetAlias("sutro/<dag_id>/<task_id>")``) runs
  after each event; a DAG scheduled on the concrete asset runs as usual.

A destination table's URI follows Airflow's asset URI conventions for its database:
``postgres://host:port/database/schema/table`` (schema ``public`` unless the table
is qualified); file databases (SQLite, DuckDB) ``sqlite://localhost/<file>/<table>``;
any other connection ``<its OpenLineage namespace>/<table parts>``. Event extras are
small and free of secrets: the Function, the row count, the job ids and the run key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sutro_providers.manifest import Manifest

FILE_DATABASES = ("sqlite", "duckdb")
SCHEMA_DATABASES = {"postgres": "public", "redshift": "public"}  # scheme -> default schema


@dataclass(frozen=True)
class TableLocation:
    """One SQL table as OpenLineage and Airflow name it."""

    namespace: str
    """OpenLineage namespace, e.g. ``postgres://db:5432``."""
    name: str
    """OpenLineage dataset name, e.g. ``warehouse.public.tickets``."""
    asset_uri: str
    """Airflow asset URI, e.g. ``postgres://db:5432/warehouse/public/tickets``."""


def default_alias(dag_id: str, task_id: str) -> str:
    """The asset alias name of a task that did not choose one."""
    return f"sutro/{dag_id}/{task_id}"


def needs_alias(output_uri: str | None, destination_table: str | None, asset_alias: str | None) -> bool:
    """Whether the task emits its asset events through an alias (see the module docstring)."""
    return bool(asset_alias or destination_table or (output_uri and "{{" in output_uri))


def table_location(conn_id: str, table: str) -> TableLocation:
    """Where ``table`` of connection ``conn_id`` lives (see the module docstring)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    conn_type = (conn.conn_type or "").lower()
    parts = [p.strip('"') for p in table.split(".")]
    if conn_type in FILE_DATABASES:
        path = (conn.host or ":memory:").lstrip("/")
        namespace = f"{conn_type}://localhost/{path}"
        return TableLocation(namespace, ".".join(parts), f"{namespace}/{'/'.join(parts)}")
    scheme, authority, database = conn_type, f"{conn.host or 'localhost'}", conn.schema or None
    try:
        info = conn.get_hook().get_openlineage_database_info(conn)
        if info is not None:
            scheme, authority, database = info.scheme, info.authority or authority, info.database or database
    except Exception:  # a database provider without OpenLineage support
        pass
    namespace = f"{scheme}://{authority}"
    if scheme in SCHEMA_DATABASES:
        if conn_type in ("postgres", "postgresql") and ":" not in authority:
            authority, namespace = f"{authority}:{conn.port or 5432}", f"{scheme}://{authority}:{conn.port or 5432}"
        full = {1: [database or "postgres", SCHEMA_DATABASES[scheme], *parts],
                2: [database or "postgres", *parts]}.get(len(parts), parts)
        return TableLocation(namespace, ".".join(full), f"{namespace}/{'/'.join(full)}")
    return TableLocation(namespace, ".".join(parts), f"{namespace}/{'/'.join(parts)}")


def event_extra(manifest: Manifest) -> dict[str, Any]:
    """What an asset event of a run carries (JSON, small, no secrets)."""
    return {"sutro_function": manifest.function, "rows": manifest.rows_out, "job_ids": manifest.job_ids,
            "run_key": manifest.run_key}


def emit_asset_events(context: Context, alias: str, uris: list[str], manifest: Manifest) -> list[str]:
    """Add an event of each asset URI in ``uris`` through the alias ``alias``; returns
    the URIs added (none when the context has no outlet events: a unit test)."""
    from airflow.sdk import Asset, AssetAlias

    events = context.get("outlet_events")
    if events is None or not uris:
        return []
    extra = event_extra(manifest)
    for uri in uris:
        events[AssetAlias(alias)].add(Asset(uri), extra=extra)
    return uris


def emit_run_events(op: Any, context: Context, manifest: Manifest) -> None:
    """The asset events of a batch operator's landed run: one per output whose URI is
    only known now (a templated ``output_uri``, the destination table), through
    ``op.asset_alias``. A failure is logged, never raised: the rows are landed, and a
    bad asset URI must not fail (and re-run) the task."""
    if op.asset_alias is None:
        return
    uris = [op.output_uri] if op.output_uri and manifest.output_uri and op._templated_output else []
    try:
        if op.destination_table and op.destination_conn_id:
            uris.append(table_location(op.destination_conn_id, op.destination_table).asset_uri)
        added = emit_asset_events(context, op.asset_alias, uris, manifest)
    except Exception as exc:
        op.log.warning("No asset event for %s: %s", uris or op.destination_table, exc)
        return
    if added:
        op.log.info("Asset event(s) through alias %s: %s", op.asset_alias, ", ".join(added))


__all__ = ["TableLocation", "default_alias", "emit_asset_events", "emit_run_events", "event_extra", "needs_alias", "table_location"]
