"""The example in plain Python: tickets → ``ticket-triage`` → triaged tickets, in DuckDB.

Run one day end to end (from ``example_dags/dagster``)::

    dagster asset materialize -m sutro_example.definitions \
        --select 'support/tickets,support/tickets_triaged' --partition 2026-11-20
"""

from __future__ import annotations

import dagster as dg

from dagster_sutro import SutroChecks, sutro_function_asset
from sutro_example.settings import sutro_resource, warehouse
from sutro_example.tickets import DAILY, support_tickets

tickets_triaged = sutro_function_asset(
    function="ticket-triage",
    upstream=support_tickets,
    key=["support", "tickets_triaged"],
    group_name="support",
    partitions_def=DAILY,
    partition_expr="created_at",
    options={"confidence_threshold": 0.5, "max_cost_usd": 5.0},
    checks=SutroChecks(max_low_confidence_share=0.9, max_cost_usd=1.0),  # synthetic local confidences
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
    pool="sutro",
)

defs = dg.Definitions(
    assets=[support_tickets, tickets_triaged],
    resources={"sutro": sutro_resource(), "io_manager": warehouse()},
    # The Sutro step spends its time waiting on the API: one process is plenty for this
    # small graph (and starts faster). Remove it to get Dagster's multiprocess default.
    executor=dg.in_process_executor,
)
