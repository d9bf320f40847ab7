"""The sutro_providers pytest plugin (auto-loaded) finds the example Functions
through the ``sutro_functions_dir`` ini option in pyproject.toml."""
