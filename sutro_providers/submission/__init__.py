"""Step 3 of the run: exactly-once job creation. ``ledger`` is the durable record
on the staging store; ``submitter`` creates (or reattaches to) each shard's job."""
