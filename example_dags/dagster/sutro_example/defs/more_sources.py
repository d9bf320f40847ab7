"""The sources of ``enriched/defs.yaml``: sales leads (hourly) and the support backlog
(static partitions by customer tier), picked up from the defs folder."""

import dagster as dg

from sutro_example.more_sources import sales_leads, ticket_backlog


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[sales_leads, ticket_backlog])
