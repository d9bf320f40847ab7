"""Reading a SQL query into Arrow and landing enriched rows through a common.sql ``DbApiHook``.

Destination writes are idempotent per partition: every row is tagged with a
partition value in ``partition_column`` (by default the Airflow run id; a daily
DAG uses its data interval) and, in ONE transaction, the rows of that partition
are deleted and the new rows inserted in chunks. A retry, a cleared task or a new
run of the same interval therefore replaces its partition and never duplicates
rows; other partitions are untouched; readers see either the old rows of the
partition or all the new ones. The insert statements come from the hook itself
(``_generate_insert_sql``/``_serialize_cells``, what ``DbApiHook.insert_rows``
uses), so placeholders and quoting follow the database; ``insert_rows`` itself is
not called because it commits every chunk and could not share the transaction
with the delete.
"""

from __future__ import annotations

import json
import re
from contextlib import closing
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")


def db_hook(conn_id: str) -> DbApiHook:
    """The connection's ``DbApiHook`` (any common.sql database provider)."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook = BaseHook.get_connection(conn_id).get_hook()
    if not isinstance(hook, DbApiHook):
        raise TypeError(f"connection {conn_id!r} does not give a common.sql DbApiHook ({type(hook).__name__})")
    return hook


def read_sql(conn_id: str, sql: str, parameters: Any = None) -> pa.Table:
    """Run ``sql`` and return the rows as an Arrow table (via a DB-API cursor, so
    any driver works; column types are inferred from the values)."""
    hook = db_hook(conn_id)
    with closing(hook.get_conn()) as conn, closing(conn.cursor()) as cur:
        cur.execute(sql, parameters) if parameters is not None else cur.execute(sql)
        names = [d[0] for d in cur.description or []]
        rows = cur.fetchall()
    table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})
    # A column with no non-null value (or no rows at all) has no type to infer: string.
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return value


def write_rows(
    conn_id: str,
    table_name: str,
    data: pa.Table,
    *,
    partition: str,
    partition_column: str = "airflow_run_id",
    columns: list[str] | None = None,
    chunk_size: int = 1000,
) -> int:
    """Replace the rows of ``partition`` in ``table_name`` with ``data``; returns the row count.

    :param columns: the columns of ``data`` to insert (default: all of them); the
        destination table must have these columns plus ``partition_column``.
    :param chunk_size: rows per ``executemany`` call (one transaction for all).
    """
    for name in (table_name, partition_column):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
    hook = db_hook(conn_id)
    names = [c for c in (columns or data.column_names) if c != partition_column]
    missing = [c for c in names if c not in data.column_names]
    if missing:
        raise ValueError(f"columns {missing} are not in the enriched table ({data.column_names})")
    fields = [*names, partition_column]
    data = data.select(names)
    inserted = 0
    with closing(hook.get_conn()) as conn:
        if hook.supports_autocommit:  # DB-API connections start in a transaction otherwise
            hook.set_autocommit(conn, False)
        try:
            with closing(conn.cursor()) as cur:
                cur.execute(f"DELETE FROM {table_name} WHERE {partition_column} = {hook.placeholder}", (partition,))
                for batch in data.to_batches(max_chunksize=chunk_size):
                    rows = [tuple(_cell(v) for v in row.values()) + (partition,) for row in batch.to_pylist()]
                    if not rows:
                        continue
                    values = [hook._serialize_cells(row, conn) for row in rows]
                    sql = hook._generate_insert_sql(table_name, values[0], fields)
                    cur.executemany(sql, values)
                    inserted += len(rows)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return inserted
