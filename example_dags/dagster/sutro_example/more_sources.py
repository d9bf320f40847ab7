"""Two more source tables, for the multi-Function examples: sales leads per hour and
the support backlog per customer tier (static partitions). Deterministic, like the tickets.

Example::

    from sutro_example.more_sources import backlog_for_tier, leads_for_hour

    assert len(leads_for_hour("2026-11-20-09:00")) == 6
    assert {r["customer_tier"] for r in backlog_for_tier("pro")} == {"pro"}
"""

import datetime as dt
import random

import dagster as dg
import polars as pl

from sutro_example.tickets import tickets_for_day

HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-11-01-00:00")
TIERS = dg.StaticPartitionsDefinition(["free", "pro", "enterprise"])
LEADS_KEY = dg.AssetKey(["sales", "leads"])
BACKLOG_KEY = dg.AssetKey(["support", "ticket_backlog"])
LEADS_PER_HOUR = 6
BACKLOG_DAY = "2026-11-20"
COMPANIES = ["Initech", "Globex", "Umbrella", "Hooli", "Vandelay Industries", "Soylent"]
ROLES = ["an engineer", "the head of data", "a VP of operations", "the CTO", "a product manager"]


def leads_for_hour(hour: "str | dt.datetime", count: int = LEADS_PER_HOUR) -> list[dict[str, object]]:
    """The inbound leads of one hour (``YYYY-MM-DD-HH:MM``): same rows for the same hour, always."""
    start = hour if isinstance(hour, dt.datetime) else dt.datetime.strptime(hour, "%Y-%m-%d-%H:%M")
    start = start.replace(tzinfo=None)
    rng = random.Random(int(start.timestamp()))
    rows = []
    for i in range(count):
        company, role = rng.choice(COMPANIES), rng.choice(ROLES)
        rows.append({
            "lead_id": f"L-{start:%Y%m%d%H}-{i + 1:03d}",
            "message": f"Hi, I am {role} at {company}. We want to enrich our tickets with LLMs; can we see a demo?",
            "employees": rng.choice([None, 12, 80, 450, 5000]),
            "received_at": start + dt.timedelta(minutes=(i * 60) // count),
        })
    return rows


def backlog_for_tier(tier: str, count: int = 8) -> list[dict[str, object]]:
    """The open tickets of customers of ``tier`` (a fixed day's sample, re-tiered)."""
    rows = tickets_for_day(BACKLOG_DAY, count)
    return [{**r, "ticket_id": f"{tier}-{r['ticket_id']}", "customer_tier": tier} for r in rows]


@dg.asset(key=LEADS_KEY, partitions_def=HOURLY, metadata={"partition_expr": "received_at"}, kinds={"duckdb", "polars"},
          group_name="sales", description="Inbound sales leads, per hour (deterministic sample data).")
def sales_leads(context: dg.AssetExecutionContext) -> pl.DataFrame:
    """The leads of each hour of the partition (range)."""
    window = context.partition_time_window
    hours = int((window.end - window.start).total_seconds() // 3600)
    rows = [r for n in range(hours) for r in leads_for_hour(window.start + dt.timedelta(hours=n))]
    return pl.DataFrame(rows, schema={"lead_id": pl.String, "message": pl.String, "employees": pl.Int64,
                                      "received_at": pl.Datetime("us")})


@dg.asset(key=BACKLOG_KEY, partitions_def=TIERS, metadata={"partition_expr": "customer_tier"},
          kinds={"duckdb", "polars"}, group_name="support",
          description="Open support tickets, per customer tier (deterministic sample data).")
def ticket_backlog(context: dg.AssetExecutionContext) -> pl.DataFrame:
    """The backlog of the partition's tier."""
    return pl.DataFrame(backlog_for_tier(context.partition_key),
                        schema={"ticket_id": pl.String, "subject": pl.String, "body": pl.String,
                                "customer_tier": pl.String, "created_at": pl.Datetime("us")})
