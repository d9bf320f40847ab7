"""Step 4 of the run: waiting for the jobs. ``polling`` holds the sans-IO poll
state and the sync poller; ``job_watch`` the shared async poller of the trigger."""
