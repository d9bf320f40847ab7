"""Sans-IO pieces of the Sutro wire API: models and the endpoint table."""
