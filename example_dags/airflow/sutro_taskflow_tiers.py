"""``@task.sutro`` mapped over customer tiers, and a DAG scheduled on its assets.

Every day, the tickets of each tier (free, pro, enterprise) created during the data
interval are triaged by the ``ticket-triage`` Function: ``tickets_of_tier`` returns the
query of one tier and ``.expand()`` makes one mapped task instance, so one Sutro run,
per tier. Each map index is its own run (dag, task, run and map index name it): its
own job, its own ledger; a retry of one tier reattaches to that tier's job and pays
for nothing else.

Each run lands ``<staging>/enriched/tiers/<day>/<map index>.parquet``: a templated
``output_uri``, so the task declares the asset alias ``sutro/sutro_taskflow_tiers/tickets_of_tier``
and adds one asset event per file it writes. ``sutro_triage_report`` is scheduled on
that alias and runs after the files land.

Connections as in ``sutro_ticket_enrichment.py`` (``sutro_default``, ``sutro_source_db``).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, task

from example_dags.airflow import ticket_common as tickets

TIERS = ["free", "pro", "enterprise"]
ALIAS = "sutro/sutro_taskflow_tiers/tickets_of_tier"  # the default: sutro/<dag_id>/<task_id>

with DAG(
    dag_id="sutro_taskflow_tiers",
    description="Triage each customer tier's tickets of the day with @task.sutro, one mapped run per tier",
    **tickets.DAILY,  # daily data intervals, 2 retries (see ticket_common.py)
):
    # [START howto_decorator_sutro]
    @task.sutro(
        function_name="ticket-triage",
        conn_id=tickets.SOURCE_CONN_ID,
        id_column="id",
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/enriched/tiers/"
                   "{{ data_interval_start | ds }}/{{ ti.map_index }}.parquet",
        description="ticket triage {{ data_interval_start | ds }}",
        deferrable=True,
        poll_interval=tickets.POLL_INTERVAL,
        max_poll_interval=600,
    )
    def tickets_of_tier(tier: str, data_interval_start: Any = None, data_interval_end: Any = None) -> str:
        """The query of one tier's tickets of the interval (a constant tier: no user input)."""
        start, end = (d.strftime("%Y-%m-%d %H:%M:%S") for d in (data_interval_start, data_interval_end))
        return ("SELECT id, subject, body, customer_tier FROM support_tickets "
                f"WHERE customer_tier = '{tier}' AND created_at >= '{start}' AND created_at < '{end}' ORDER BY id")

    tickets_of_tier.expand(tier=TIERS)
    # [END howto_decorator_sutro]


with DAG(
    dag_id="sutro_triage_report",
    description="Runs when sutro_taskflow_tiers lands a tier's triaged tickets",
    schedule=AssetAlias(ALIAS),
    start_date=tickets.DAILY["start_date"],
    catchup=False,
    tags=tickets.DAILY["tags"],
):

    @task
    def report(triggering_asset_events: Any = None) -> list[str]:
        """The files that triggered this run, with the rows and jobs of each."""
        landed = []
        events_by_key = triggering_asset_events or {}
        for asset in [key for key in events_by_key if isinstance(key, Asset)]:  # the alias is a key too
            for event in events_by_key[asset]:
                print(f"{asset.uri}: {event.extra.get('rows')} rows, job(s) {event.extra.get('job_ids')}")
                landed.append(asset.uri)
        return landed

    report()
