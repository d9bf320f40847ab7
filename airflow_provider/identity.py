"""The run identity of an Airflow task instance: what names a Sutro run across retries.

A run is named by ``dag_id``, ``task_id``, ``run_id`` and ``map_index`` (never the
try number), so a retry, a cleared task or a resumed deferral finds the ledger,
the jobs and the run plan of the attempts before it
(:meth:`sutro_providers.identity.RunIdentity.airflow`).
"""

from __future__ import annotations

from typing import Any

from sutro_providers.identity import RunIdentity


def map_index_of(ti: Any) -> int:
    """The task instance's map index; ``-1`` when it is not mapped."""
    map_index = getattr(ti, "map_index", -1)
    return -1 if map_index is None else int(map_index)


def task_run_identity(ti: Any, task_id: str | None = None) -> RunIdentity:
    """The run identity of ``ti`` (``task_id``: another task of the same DAG run and map
    index, e.g. the submit task a sensor or a collect task follows)."""
    return RunIdentity.airflow(ti.dag_id, task_id if task_id is not None else ti.task_id, ti.run_id, map_index_of(ti))
