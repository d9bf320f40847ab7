"""``make demo``: the main job on embedded defaults.

Starts the local Sutro server and a local S3-compatible server (moto), seeds a
warehouse with a few thousand support tickets (deterministic), runs the example
Airflow DAG (``airflow dags test``, deferrable path) and the example Dagster asset
(``dagster asset materialize``), prints a summary per orchestrator, stops what it
started and leaves the outputs under ``.demo/``. The same DAG and asset point at a
real Sutro deployment and a real bucket by configuration only (see the README).
"""
