"""What a submit-only task (``wait_for_completion=False``) leaves for the tasks after it.

The submitting task writes its plan next to the run's ledger, at
``<staging>/runs/<key[:32]>/airflow-plan.json``: the run identity (dag, task, run,
map index), the connection, the run's options (without storage credentials), the
destination table settings and the manifest of the submit. It is small, free of
secrets and signed URLs, and written on every try (same path: a retry replaces it).

:class:`~airflow_provider.sensors.sutro.SutroJobSensor` (``submit_task_id=...``) and
:class:`~airflow_provider.operators.collect.SutroCollectResultsOperator` find it by
the run identity of the submitting task, so the pattern needs no XCom and works
with ``do_xcom_push=False``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from sutro_providers.identity import RunIdentity
from sutro_providers.manifest import Manifest
from sutro_providers.options import EnrichmentOptions
from sutro_providers.staging.area import StagingArea
from sutro_providers.staging.store import store_errors

PLAN_FILE = "airflow-plan.json"


class RunPlan(BaseModel):
    """The submit-only task's record (see the module docstring)."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    sutro_conn_id: str
    staging_url: str | None = None
    options: dict[str, Any]
    output_staged: bool = False
    destination_table: str | None = None
    destination_conn_id: str | None = None
    destination_columns: list[str] | None = None
    partition_column: str = "airflow_run_id"
    partition_value: str | None = None
    insert_chunk_size: int | None = None
    manifest: dict[str, Any] = Field(default_factory=dict)

    @property
    def identity(self) -> RunIdentity:
        return RunIdentity.airflow(self.dag_id, self.task_id, self.run_id, self.map_index)

    def submitted(self) -> Manifest:
        return Manifest.model_validate(self.manifest)

    def enrichment_options(self, output_storage_options: dict[str, Any]) -> EnrichmentOptions:
        return EnrichmentOptions(**self.options, output_storage_options=output_storage_options)

    def save(self, area: StagingArea) -> None:
        path = plan_path(area, self.identity)
        with store_errors(f"cannot write the run plan {area.display(path)}"):
            area.fs.pipe_file(path, json.dumps(self.model_dump(mode="json"), indent=1).encode())

    @classmethod
    def load(cls, area: StagingArea, identity: RunIdentity) -> RunPlan | None:
        """The plan of ``identity``, ``None`` when its task wrote none (it did not run
        submit-only, or failed before submitting)."""
        path = plan_path(area, identity)
        try:
            with store_errors(f"cannot read the run plan {area.display(path)}"):
                raw = area.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return cls.model_validate_json(raw)


def plan_path(area: StagingArea, identity: RunIdentity) -> str:
    return f"{area.run_prefix(identity)}/{PLAN_FILE}"


def options_record(options: EnrichmentOptions) -> dict[str, Any]:
    """The options as the plan keeps them: storage options (credentials) left out."""
    return options.model_dump(mode="json", exclude={"output_storage_options"})
