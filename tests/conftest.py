"""The suite enables the opt-in pytest plugin of ``sutro-providers[local]``
(fixtures ``sutro_server``, ``sutro_clean``, ``sutro_env``, ``sutro_s3_server``,
``sutro_s3_bucket``); it finds the example Functions through the
``sutro_functions_dir`` ini option in pyproject.toml."""

pytest_plugins = ["sutro_providers.local.pytest_plugin"]
