"""Example Dagster project: support tickets triaged by the Sutro Function ``ticket-triage``."""
