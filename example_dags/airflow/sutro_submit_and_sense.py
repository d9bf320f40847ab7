"""Submit a Sutro batch run, wait on the triggerer, then land the results: three small tasks.

The pattern of ``DbtCloudRunJobOperator(wait_for_termination=False)`` +
``DbtCloudJobRunSensor``: the submitting task holds a worker slot only while it
validates, stages and submits, and ends at once; the wait happens in a deferrable
sensor (on the triggerer, no worker slot); a last small task downloads, verifies and
lands the rows. Useful when the wait is long (priority-0 jobs, big inputs) or when
other tasks should run between the submit and the landing.

* ``submit_tickets`` (``wait_for_completion=False``): submits (a retry reattaches to
  the same job), pushes ``sutro_job_ids``, writes the run plan next to the run's
  ledger and returns the manifest (state ``submitted``).
* ``wait_for_tickets``: ``SutroJobSensor(submit_task_id=...)`` finds the jobs (XCom,
  else the ledger) and defers until they succeed; it never cancels them.
* ``land_tickets``: ``SutroCollectResultsOperator(submit_task_id=...)`` reads the plan
  and lands the rows in ``output_uri`` and ``support_tickets_triaged`` (the day's
  partition replaced in one transaction).

Connections as in ``sutro_ticket_enrichment.py``.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider.operators.batch import SutroBatchFunctionOperator
from airflow_provider.operators.collect import SutroCollectResultsOperator
from airflow_provider.sensors.sutro import SutroJobSensor
from example_dags.airflow import ticket_common as tickets

with DAG(
    dag_id="sutro_submit_and_sense",
    description="Submit the ticket triage, wait in a deferrable sensor, land the rows",
    **tickets.DAILY,  # daily data intervals, 2 retries (see ticket_common.py)
) as dag:
    create_destination = tickets.create_destination_table()

    # [START howto_operator_sutro_submit_only]
    submit = SutroBatchFunctionOperator(
        task_id="submit_tickets",
        function_name="ticket-triage",
        sql=tickets.TICKETS_OF_THE_INTERVAL,
        conn_id=tickets.SOURCE_CONN_ID,
        id_column="id",
        output_uri="{{ conn.sutro_default.extra_dejson.staging_url }}/enriched/submit_and_sense/"
                   "{{ data_interval_start | ds }}.parquet",
        **tickets.INTERVAL_PARTITION,  # the destination table: checked before submitting; landed by land_tickets
        wait_for_completion=False,
    )
    wait = SutroJobSensor(
        task_id="wait_for_tickets",
        submit_task_id="submit_tickets",
        deferrable=True,
        poke_interval=tickets.POLL_INTERVAL,
        timeout=6 * 3600,
    )
    land = SutroCollectResultsOperator(task_id="land_tickets", submit_task_id="submit_tickets")
    # [END howto_operator_sutro_submit_only]

    create_destination >> submit >> wait >> land
