"""The run of an empty input: its manifest and its (row-less) enriched table."""

from __future__ import annotations

import logging

import pyarrow as pa

from sutro_providers.collection.join import ResultJoiner
from sutro_providers.collection.unpack import result_schema
from sutro_providers.columns import ROW_ID
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.identity import RunIdentity
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.manifest import Manifest
from sutro_providers.options import EnrichmentOptions
from sutro_providers.submission.ledger import utc_now

log = logging.getLogger("sutro_providers.pipeline")


def empty_manifest(identity: RunIdentity, options: EnrichmentOptions, validator: InputValidator,
                   schema: pa.Schema) -> Manifest:
    """The manifest of an empty input, once its columns are checked as any day's are
    (an input without any column, e.g. an empty list, has none to check)."""
    if schema.names:
        validator.check_schema(schema)
    log.info("input of %s is empty: no Sutro job submitted", options.function)
    return Manifest(run_key=identity.key, identity=identity.describe(), function=options.function,
                    state="noop", started_at=utc_now(), message="empty input: nothing submitted")


def empty_table(schema: pa.Schema, validator: InputValidator, spec: FunctionSpec | None,
                options: EnrichmentOptions) -> pa.Table:
    """No rows, the columns a run over rows would give (``schema``: the input's, or the
    declared inputs when it has none; then the result columns and ``sutro_skip_reason``)."""
    schema = (schema if schema.names else validator.declared_schema()).append(pa.field(ROW_ID, pa.int64()))
    results = result_schema(spec, prefix=options.output_prefix) if spec else pa.schema([(ROW_ID, pa.int64())])
    return ResultJoiner(schema, results).schema.empty_table()
