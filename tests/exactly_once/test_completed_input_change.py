"""A completed run whose input changed is not reused silently: the default
``on_input_change="fail"`` refuses, ``"resubmit"`` runs the new input; the same
input still returns the stored result without a new job."""

from __future__ import annotations

from typing import Any

import pytest

from sutro_providers.errors import SutroLedgerConflictError
from sutro_providers.identity import RunIdentity
from tests.pipeline.conftest import options

ROWS = [{"ticket_id": f"t{i}", "subject": f"Subject {i}", "body": f"Body {i}.", "customer_tier": "pro"} for i in range(20)]
CHANGED = [*[dict(r) for r in ROWS], *[{"ticket_id": f"n{i}", "subject": "New", "body": "Added later.",
                                        "customer_tier": "free"} for i in range(5)]]
CHANGED[3]["body"] = "This body was edited after the first run."


def test_a_completed_run_with_changed_input_is_not_reused(pipeline: Any, sutro_clean: Any,
                                                            sutro_s3_server: Any, sutro_s3_bucket: str) -> None:
    identity = RunIdentity.airflow("dag", "enrich", "scheduled__2026-11-20", -1)
    out = f"s3://{sutro_s3_bucket}/out/2026-11-20.parquet"
    opts = options(id_column="ticket_id", output_uri=out, output_storage_options=sutro_s3_server.storage_options)
    first = pipeline.run(ROWS, identity, opts)
    assert first.manifest.rows_out == 20 and sutro_clean.admin.job_count() == 1

    same = pipeline.run(ROWS, identity, opts)  # same input: the stored result, no job
    assert same.manifest.job_ids == first.manifest.job_ids and sutro_clean.admin.job_count() == 1

    with pytest.raises(SutroLedgerConflictError, match="changed since its earlier attempt"):
        pipeline.run(CHANGED, identity, opts)
    assert sutro_clean.admin.job_count() == 1  # nothing paid for the refused run

    again = pipeline.run(CHANGED, identity, opts.model_copy(update={"on_input_change": "resubmit"}))
    assert sutro_clean.admin.job_count() == 2
    assert again.manifest.rows_out == 25
    assert again.table["ticket_id"].to_pylist() == [r["ticket_id"] for r in CHANGED]
