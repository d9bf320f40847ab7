"""SutroFunctionComponent: scaffolded, loaded from YAML with env templating, materialized."""

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from dagster_sutro import SutroFunctionComponent, SutroResource
from tests.dagster.conftest import DAY, EXAMPLE_DIR, job_names

EXAMPLE_SOURCES = EXAMPLE_DIR / "sutro_example" / "defs" / "sources.py"
EXAMPLE_YAML = EXAMPLE_DIR / "sutro_example" / "defs" / "tickets_triaged" / "defs.yaml"
TRIAGED = dg.AssetKey(["support", "tickets_triaged"])


def add_source_table(defs_folder: Path) -> None:
    """The upstream table and the warehouse IO manager: the example project's own defs module."""
    (defs_folder / "sources.py").write_text(EXAMPLE_SOURCES.read_text())


def test_scaffolded_component_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUTRO_API_URL", "http://127.0.0.1:9")
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=SutroFunctionComponent)
        attributes = yaml.safe_load((path / "defs.yaml").read_text())["attributes"]
        assert attributes["function"] == "ticket-triage" and attributes["resource"]["api_url"] == "{{ env.SUTRO_API_URL }}"
        add_source_table(sandbox.defs_folder_path)
        with sandbox.build_component_tree() as tree:
            assert isinstance(tree.load_component(path), SutroFunctionComponent)
            defs = tree.build_defs()
            asset = defs.resolve_assets_def(TRIAGED)
            assert [s.name for s in asset.check_specs] == ["sutro_row_parity", "sutro_low_confidence"]
            resource = defs.resources["sutro"]
            assert isinstance(resource, SutroResource) and resource.api_url == "http://127.0.0.1:9"


def test_example_yaml_materializes(make_resource: Any, sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str,
                                   instance: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUTRO_API_URL", sutro_clean.url)
    monkeypatch.setenv("SUTRO_API_KEY", sutro_clean.api_key)
    monkeypatch.setenv("SUTRO_STAGING_URL", f"s3://{sutro_s3_bucket}/staging")
    monkeypatch.setenv("SUTRO_S3_ENDPOINT_URL", sutro_s3_server.endpoint_url)
    database = str(tmp_path / "w.duckdb")
    monkeypatch.setenv("SUTRO_EXAMPLE_DUCKDB", database)
    contents = yaml.safe_load(EXAMPLE_YAML.read_text())
    contents["attributes"]["resource"]["poll_interval"] = 0.2
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=SutroFunctionComponent, defs_yaml_contents=contents)
        add_source_table(sandbox.defs_folder_path)
        with sandbox.build_component_tree() as tree:
            component = tree.load_component(path)
            assert isinstance(component, SutroFunctionComponent) and component.partitions is not None
            defs = tree.build_defs()
            asset = defs.resolve_assets_def(TRIAGED)
            assert asset.partitions_def == dg.DailyPartitionsDefinition(start_date="2026-11-01")
            assert asset.backfill_policy == dg.BackfillPolicy.single_run()
            assert asset.op.pool == "sutro"
            resource = defs.resources["sutro"]
            # the key stays an environment variable reference, never a resolved value
            assert sutro_clean.api_key not in repr(resource._get_non_default_public_field_values())  # noqa: SLF001
            result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, partition_key=DAY)
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "sutro_row_parity": True, "sutro_low_confidence": True, "sutro_cost": True}
    with duckdb.connect(database) as con:
        assert con.execute("select count(*), count(label) from support.tickets_triaged").fetchone() == (24, 24)
    # one batch job, plus the free cost-estimate job that max_cost_usd asks for
    batch, estimates = job_names(sutro_clean)
    assert len(batch) == 1 and len(estimates) == 1
