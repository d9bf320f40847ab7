"""The destination check that runs before anything is paid for.

:func:`enriched_schema` tells, before submitting, which columns the enriched
table will have (the source's, the Function's result columns, ``sutro_skip_reason``)
and their Arrow types; :func:`check_destination` asks the loader whether the table
exists with every column to insert and the partition column, and creates it when
asked (``create_destination_table=True``). Otherwise it raises
:class:`~sutro_providers.errors.SutroDestinationSchemaError` naming the table and the
missing columns -- the adapters call it before ``EnrichmentPipeline.submit``, so a
refused run has no job.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from sutro_providers.collection.unpack import result_schema
from sutro_providers.columns import CONFIDENCE, ROW_ID, SKIP_REASON
from sutro_providers.errors import SutroDestinationSchemaError
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.landing.base import Loader
from sutro_providers.options import EnrichmentOptions

log = logging.getLogger("sutro_providers.landing.preflight")


def enriched_schema(source: pa.Schema, spec: FunctionSpec | None, options: EnrichmentOptions) -> pa.Schema:
    """The enriched table's schema as far as it is known before the run: the source
    columns, the result columns (all of them with a published spec; only the
    confidence column without one) and ``sutro_skip_reason``."""
    fields = [f for f in source if f.name not in (ROW_ID, SKIP_REASON)]
    if spec is not None:
        fields += [f for f in result_schema(spec, prefix=options.output_prefix) if f.name != ROW_ID]
    else:
        fields.append(pa.field(options.output_prefix + CONFIDENCE, pa.float64()))
    return pa.schema([*fields, pa.field(SKIP_REASON, pa.string())])


def check_destination(
    loader: Loader,
    table: str,
    *,
    schema: pa.Schema,
    partition_column: str,
    columns: list[str] | None = None,
    create: bool = False,
    complete: bool = True,
) -> list[str]:
    """Check (or create) ``table`` for a load of ``columns`` (default: every column
    of ``schema``, the enriched schema) plus ``partition_column``; returns the
    columns that will be inserted.

    :param complete: whether ``schema`` holds every enriched column (``False`` when
        the Function publishes no spec: unknown result columns cannot be checked).
    :raises SutroDestinationSchemaError: the table is missing (and ``create`` is false),
        lacks some of the columns, or ``columns`` names a column the enriched
        table will not have.
    """
    wanted = [c for c in (columns if columns is not None else schema.names) if c != partition_column]
    unknown = [c for c in wanted if c not in schema.names]
    if unknown and complete:
        raise SutroDestinationSchemaError(
            f"destination_columns {unknown} are not columns of the enriched table (it has {schema.names})")
    existing = loader.columns(table)
    if existing is None:
        if not create:
            raise SutroDestinationSchemaError(
                f"destination table {table} does not exist: create it with the columns "
                f"{[*wanted, partition_column]} or pass create_destination_table=True; nothing was submitted")
        if unknown:
            raise SutroDestinationSchemaError(
                f"cannot create {table}: the types of {unknown} are unknown before the run (the Function "
                "publishes no spec); create the table yourself")
        known = pa.schema([schema.field(c) for c in wanted])
        loader.create(table, known, partition_column)
        log.info("created destination table %s (%d columns)", table, len(wanted) + 1)
        return wanted
    present = set(existing)
    missing = [c for c in [*wanted, partition_column] if c not in present and c not in unknown]
    if missing:
        folded = {c.lower(): c for c in existing}
        hints = [f"{c} (the table has {folded[c.lower()]})" for c in missing if c.lower() in folded]
        raise SutroDestinationSchemaError(
            f"destination table {table} lacks the column(s) {missing}"
            + (f"; names differ in case: {hints}" if hints else "")
            + f"; add them, or choose the columns to insert with destination_columns (the table has "
            f"{existing}); nothing was submitted")
    return wanted


__all__ = ["check_destination", "enriched_schema"]
