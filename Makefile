# One entry point for people and CI. `make test` is what .ci/run calls.
PYTHON ?= python3.11
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --python $(VENV)/bin/python -q --compile-bytecode -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## demo: run the main job (Airflow DAG and Dagster asset) on the embedded local stack
demo: $(STAMP)
	$(VENV)/bin/python -m example_dags.demo

## test: install into .venv (pinned) and run the whole suite
# The environment may set PYTHONDONTWRITEBYTECODE (this machine and CI do): then no
# process writes .pyc files, and every subprocess the suite starts (Airflow and Dagster
# CLIs, fresh-process memory tests) would compile its imports again (~6 s each). The
# install compiles site-packages (--compile-bytecode) and this compiles our own tree.
test: $(STAMP)
	$(VENV)/bin/python -m compileall -q -j 0 sutro_providers airflow_provider dagster_sutro example_dags tests bench >/dev/null
	$(VENV)/bin/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 -m "not e2e" -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check sutro_providers airflow_provider dagster_sutro tests bench example_dags
	$(VENV)/bin/mypy sutro_providers airflow_provider dagster_sutro

clean:
	rm -rf $(VENV) .venv-sdk .venv-opper-sdk .demo
