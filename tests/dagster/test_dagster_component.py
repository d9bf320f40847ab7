"""SutroFunctionComponent: scaffolded, loaded from YAML with env templating, several Functions,
every partitions type, translation, code versions from the published specs, materialized."""

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
MORE_SOURCES = EXAMPLE_DIR / "sutro_example" / "defs" / "more_sources.py"
EXAMPLE_YAML = EXAMPLE_DIR / "sutro_example" / "defs" / "tickets_triaged" / "defs.yaml"
ENRICHED_YAML = EXAMPLE_DIR / "sutro_example" / "defs" / "enriched" / "defs.yaml"
TRIAGED = dg.AssetKey(["support", "tickets_triaged"])
BACKLOG_TRIAGED = dg.AssetKey(["support", "backlog_triaged"])
BACKLOG_SENTIMENT = dg.AssetKey(["support", "backlog_sentiment"])
LEADS_ENRICHED = dg.AssetKey(["sales", "leads_enriched"])


def add_source_table(defs_folder: Path, *, more: bool = False) -> None:
    """The upstream table and the warehouse IO manager: the example project's own defs module
    (``more``: and the leads and backlog tables of ``enriched/defs.yaml``)."""
    (defs_folder / "sources.py").write_text(EXAMPLE_SOURCES.read_text())
    if more:
        (defs_folder / "more_sources.py").write_text(MORE_SOURCES.read_text())


def test_scaffolded_component_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUTRO_API_URL", "http://127.0.0.1:9")
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=SutroFunctionComponent)
        attributes = yaml.safe_load((path / "defs.yaml").read_text())["attributes"]
        assert [f["function"] for f in attributes["functions"]] == ["ticket-triage", "ticket-sentiment"]
        assert attributes["resource"]["api_url"] == "{{ env.SUTRO_API_URL }}"
        add_source_table(sandbox.defs_folder_path)
        with sandbox.build_component_tree() as tree:
            assert isinstance(tree.load_component(path), SutroFunctionComponent)
            defs = tree.build_defs()  # the deployment cannot be reached: the load still succeeds
            asset = defs.resolve_assets_def(TRIAGED)
            assert asset.keys == {TRIAGED, dg.AssetKey(["support", "tickets_sentiment"])} and asset.can_subset
            assert {c.name for c in asset.check_keys} == {"sutro_row_parity", "sutro_low_confidence"}
            assert asset.partitions_def == dg.DailyPartitionsDefinition(start_date="2026-11-01")
            resource = defs.resources["sutro"]
            assert isinstance(resource, SutroResource) and resource.api_url == "http://127.0.0.1:9"


def test_every_partitions_type() -> None:
    base = {"function": "ticket-triage", "upstream": "support/tickets"}
    cases = [
        ({"start_date": "2026-11-01"}, dg.DailyPartitionsDefinition(start_date="2026-11-01")),
        ({"type": "daily", "start_date": "2026-11-01", "timezone": "Europe/Berlin", "end_offset": 1},
         dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="Europe/Berlin", end_offset=1)),
        ({"type": "hourly", "start_date": "2026-11-01-00:00"}, dg.HourlyPartitionsDefinition(start_date="2026-11-01-00:00")),
        ({"type": "weekly", "start_date": "2026-11-01", "day_offset": 1},
         dg.WeeklyPartitionsDefinition(start_date="2026-11-01", day_offset=1)),
        ({"type": "monthly", "start_date": "2026-11-01"}, dg.MonthlyPartitionsDefinition(start_date="2026-11-01")),
        ({"type": "time_window", "start_date": "2026-11-01-00:00", "cron_schedule": "0 */6 * * *"},
         dg.TimeWindowPartitionsDefinition(cron_schedule="0 */6 * * *", start="2026-11-01-00:00", fmt="%Y-%m-%d-%H:%M")),
        ({"type": "static", "partition_keys": ["eu", "us"]}, dg.StaticPartitionsDefinition(["eu", "us"])),
        ({"type": "dynamic", "name": "customers"}, dg.DynamicPartitionsDefinition(name="customers")),
    ]
    for partitions, expected in cases:
        component = SutroFunctionComponent.resolve_from_dict({**base, "partitions": partitions})
        assert component.build_asset().partitions_def == expected, partitions
    with pytest.raises(Exception, match="partition_keys"):
        SutroFunctionComponent.resolve_from_dict({**base, "partitions": {"type": "static"}})
    # the schema dg check yaml validates against: a misspelt field is an error
    with pytest.raises(ValueError, match="partition_kyes"):
        SutroFunctionComponent.model().model_validate({"functions": [base], "partitions": {
            "type": "static", "partition_kyes": ["eu"]}})


def test_several_functions_translation_and_code_version(sutro_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's three Functions over two tables: top-level defaults, per-entry overrides,
    translation, automation condition, and code versions from the published specs."""
    from dagster_sutro import code_version

    monkeypatch.setattr(code_version, "_published", {})
    monkeypatch.setenv("SUTRO_STAGING_URL", "s3://unused/staging")
    contents = yaml.safe_load(ENRICHED_YAML.read_text())
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=SutroFunctionComponent, defs_yaml_contents=contents)
        add_source_table(sandbox.defs_folder_path, more=True)
        with sandbox.build_component_tree() as tree:
            component = tree.load_component(path)
            assert isinstance(component, SutroFunctionComponent)
            defs = tree.build_defs()
    backlog = defs.resolve_assets_def(BACKLOG_TRIAGED)
    leads = defs.resolve_assets_def(LEADS_ENRICHED)
    assert backlog.keys == {BACKLOG_TRIAGED, BACKLOG_SENTIMENT} and leads.keys == {LEADS_ENRICHED}
    assert backlog.partitions_def == dg.StaticPartitionsDefinition(["free", "pro", "enterprise"])
    assert leads.partitions_def == dg.HourlyPartitionsDefinition(start_date="2026-11-01-00:00")
    specs = {s.key: s for a in (backlog, leads) for s in a.specs}
    assert {s.group_name for s in specs.values()} == {"enriched"}
    assert all(list(s.owners) == ["team:support-ml"] for s in specs.values())
    assert specs[BACKLOG_SENTIMENT].tags["sutro_function"] == "ticket-sentiment"
    assert specs[LEADS_ENRICHED].automation_condition == dg.AutomationCondition.eager()
    assert specs[BACKLOG_TRIAGED].automation_condition is None
    assert specs[LEADS_ENRICHED].metadata["partition_expr"] == "received_at"
    assert specs[BACKLOG_TRIAGED].metadata["partition_expr"] == "customer_tier"
    assert "Route a customer support ticket" in (specs[BACKLOG_TRIAGED].description or "")  # published description
    # code versions: a hash of each published spec; lead-extractor's with its cache_version
    with SutroResource(api_url=sutro_env.url, api_key=sutro_env.api_key, staging_url="s3://unused").get_client() as c:
        published = {name: c.get_function(name) for name in ("ticket-triage", "ticket-sentiment", "lead-extractor")}
    assert specs[BACKLOG_TRIAGED].code_version == code_version.function_code_version("ticket-triage", published["ticket-triage"])
    assert specs[LEADS_ENRICHED].code_version == code_version.function_code_version(
        "lead-extractor", published["lead-extractor"]) + "-1"
    assert len({s.code_version for s in specs.values()}) == 3
    assert set(defs.resources) == {"sutro_enriched", "io_manager"}


def test_code_version_follows_the_published_spec() -> None:
    from dagster_sutro.code_version import function_code_version
    from sutro_providers.function_spec import load_function_spec

    spec = load_function_spec(EXAMPLE_DIR.parent / "functions" / "ticket_triage.yaml")
    republished = spec.model_copy(update={"system_prompt": "Triage tickets. Be brief."})
    assert function_code_version("ticket-triage", spec) == function_code_version("ticket-triage", spec.model_copy())
    assert function_code_version("ticket-triage", spec) != function_code_version("ticket-triage", republished)
    assert function_code_version("ticket-triage", spec, cache_version="2").endswith("-2")
    declared = function_code_version("ticket-triage", None, input_fields=[{"name": "subject"}])
    assert declared is not None and declared.startswith("declared-")
    assert function_code_version("ticket-triage", None) is None
    assert function_code_version("ticket-triage", None, cache_version="3") == "3"


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
