"""Three Functions over two tables from one factory call: the support backlog (static
partitions by customer tier) triaged and scored for sentiment, the sales leads (hourly)
run through the lead extractor.

``build_sutro_assets_definitions`` makes one subsettable multi-asset per table: one
step loads the backlog once and runs the Functions of the selected assets only.
The same graph from YAML is ``defs/enriched/defs.yaml``. From ``example_dags/dagster``::

    dagster asset materialize -m sutro_example.multi_definitions \
        --select 'support/ticket_backlog,support/backlog_triaged,support/backlog_sentiment' --partition pro
    dagster asset materialize -m sutro_example.multi_definitions \
        --select 'sales/leads,sales/leads_enriched' --partition 2026-11-20-09:00
"""

from __future__ import annotations

import dagster as dg

from dagster_sutro import SutroChecks, SutroEnrichment, build_sutro_assets_definitions
from sutro_example.more_sources import HOURLY, TIERS, sales_leads, ticket_backlog
from sutro_example.settings import sutro_resource, warehouse

checks = SutroChecks(max_low_confidence_share=0.9)  # the local engine's confidences are synthetic
enrichments = [
    SutroEnrichment(function="ticket-triage", upstream=ticket_backlog, key="support/backlog_triaged",
                    partitions_def=TIERS, partition_expr="customer_tier", checks=checks),
    SutroEnrichment(function="ticket-sentiment", upstream=ticket_backlog, key="support/backlog_sentiment",
                    partitions_def=TIERS, partition_expr="customer_tier", checks=checks),
    SutroEnrichment(function="lead-extractor", upstream=sales_leads, key="sales/leads_enriched",
                    partitions_def=HOURLY, partition_expr="received_at", options={"output_prefix": "lead_"},
                    automation_condition=dg.AutomationCondition.eager()),
]

defs = dg.Definitions(
    assets=[ticket_backlog, sales_leads,
            *build_sutro_assets_definitions(enrichments, group_name="enriched", pool="sutro",
                                            retry_policy=dg.RetryPolicy(max_retries=2, delay=5))],
    resources={"sutro": sutro_resource(), "io_manager": warehouse()},
    executor=dg.in_process_executor,
)
