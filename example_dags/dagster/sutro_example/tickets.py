"""The source table: support tickets, generated deterministically per day.

Each daily partition holds ``TICKETS_PER_DAY`` tickets (env
``SUTRO_EXAMPLE_TICKETS_PER_DAY``, default 24) whose text, tier and time depend only
on the date (:mod:`sutro_providers.local.sample_data`), so every run of the example
produces the same table.

Example::

    from sutro_example.tickets import tickets_for_day

    rows = tickets_for_day("2026-11-20")
    assert len(rows) == 24 and rows[0]["ticket_id"] == "T-20261120-00001"
"""


import datetime as dt
import os

import dagster as dg
import polars as pl

from sutro_providers.local.sample_data import support_tickets as sample_tickets

START_DATE = "2026-11-01"
TICKETS_PER_DAY = int(os.environ.get("SUTRO_EXAMPLE_TICKETS_PER_DAY", "24"))
DAILY = dg.DailyPartitionsDefinition(start_date=START_DATE)
TICKETS_KEY = dg.AssetKey(["support", "tickets"])


def tickets_for_day(day: "str | dt.date", count: int = TICKETS_PER_DAY) -> list[dict[str, object]]:
    """The tickets created on ``day`` (same output for the same day, always)."""
    return sample_tickets(day, count)


@dg.asset(
    key=TICKETS_KEY,
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"partition_expr": "created_at"},
    kinds={"duckdb", "polars"},
    group_name="support",
    description="Support tickets created each day (deterministic sample data).",
)
def support_tickets(context: dg.AssetExecutionContext) -> pl.DataFrame:
    """One day of tickets (or every day of a partition range, for single-run backfills)."""
    window = context.partition_time_window
    days = (window.end - window.start).days
    rows = [r for n in range(days) for r in tickets_for_day((window.start + dt.timedelta(days=n)).date())]
    return pl.DataFrame(rows, schema={"ticket_id": pl.String, "subject": pl.String, "body": pl.String,
                                      "customer_tier": pl.String, "created_at": pl.Datetime("us")})
