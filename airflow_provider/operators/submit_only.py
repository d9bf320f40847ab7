"""Helpers of the batch operator's submit-only mode and of its templated options."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider.run_plan import RunPlan, options_record
from sutro_providers.identity import RunIdentity
from sutro_providers.manifest import Manifest
from sutro_providers.options import EnrichmentOptions

if TYPE_CHECKING:
    from airflow_provider.operators.batch import SutroBatchFunctionOperator


def native_number(value: Any) -> Any:
    """A rendered template's number (``"1"`` → ``1``, ``"0.2"`` → ``0.2``, ``"true"`` →
    ``True``); anything else as it is (the options' validation then names it)."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value.strip())
    except ValueError:
        return value
    return parsed if isinstance(parsed, int | float | bool) or parsed is None else value


def native_params(value: Any) -> Any:
    """Templated ``sampling_params``: a dict whose rendered values become numbers, or a
    rendered JSON object (``"{{ var.json.sampling }}"``)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: native_number(v) for k, v in value.items()}
    return value


def write_plan(op: SutroBatchFunctionOperator, identity: RunIdentity, options: EnrichmentOptions,
               manifest: Manifest) -> None:
    """Write the run plan of a submit-only task next to its ledger (:mod:`airflow_provider.run_plan`)."""
    parts = dict(identity.parts)
    plan = RunPlan(
        dag_id=parts["dag_id"], task_id=parts["task_id"], run_id=parts["run_id"], map_index=int(parts["map_index"]),
        sutro_conn_id=op.sutro_conn_id, staging_url=op.staging_url, options=options_record(options),
        output_staged=bool(op.destination_table and not op.output_uri),
        destination_table=op.destination_table, destination_conn_id=op.destination_conn_id,
        destination_columns=op.destination_columns, partition_column=op.partition_column,
        partition_value=None if op.partition_value is None else str(op.partition_value),
        insert_chunk_size=op.insert_chunk_size, manifest=manifest.to_json_dict(),
    )
    plan.save(op.pipeline.area)
    op.log.info("Sutro run %s submitted, not waited for: wait with SutroJobSensor(submit_task_id=%r) and land "
                "with SutroCollectResultsOperator(submit_task_id=%r)", identity.short, plan.task_id, plan.task_id)
