"""Example DAGs, Dagster projects and Function specs for sutro-providers."""
