"""Registration, SutroHook, SutroJobSensor, SutroRunFunctionOperator and the job link."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider.exceptions import SutroJobCancelledException, SutroJobFailedException
from airflow_provider.get_provider_info import get_provider_info
from airflow_provider.hooks.sutro import SutroHook
from airflow_provider.links import SutroJobLink
from airflow_provider.operators.run_function import SutroRunFunctionOperator
from airflow_provider.sensors.sutro import SutroJobSensor
from airflow_provider.triggers.sutro import SutroJobTrigger
from sutro_providers.client.sutro import SutroClient
from tests.airflow.conftest import TICKETS, conn_json, make_context

pytestmark = pytest.mark.timeout(120)


def test_provider_info_is_valid_and_importable() -> None:
    import importlib
    from pathlib import Path

    import airflow
    import jsonschema

    info = get_provider_info()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    assert info["package-name"] == "sutro-providers"
    for section in ("hooks", "operators", "sensors", "triggers"):
        for module in info[section][0]["python-modules"]:
            importlib.import_module(module)
    for path in [info["connection-types"][0]["hook-class-name"], *info["extra-links"]]:
        module, name = path.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name)


def test_providers_manager_sees_the_connection_form() -> None:
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "sutro-providers" in pm.providers
    widgets = {k for k in pm.connection_form_widgets if k.startswith("extra__sutro__")}
    assert widgets == {f"extra__sutro__{f}" for f in ("staging_url", "aws_conn_id", "s3_endpoint_url", "storage_options")}
    assert pm.field_behaviours["sutro"]["relabeling"] == {"host": "API URL", "password": "API key"}


def test_airflow_providers_list_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    packages = {p["package_name"] for p in json.loads(out[out.index("["):])}
    assert "sutro-providers" in packages


def test_hook_config_from_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SUTRO_X", conn_json(
        conn_type="sutro", host="127.0.0.1", port=8123, password="sk_secret_value_123",
        extra={"staging_url": "s3://bucket/prefix", "aws_conn_id": "aws_x", "retry": {"max_attempts": 3},
               "storage_options": json.dumps({"client_kwargs": {"region_name": "eu-west-1"}})}))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_X", conn_json(
        conn_type="aws", login="AKIATEST", password="aws_secret_value", extra={"endpoint_url": "http://127.0.0.1:9000"}))
    hook = SutroHook("sutro_x")
    config = hook.get_config()
    assert config.api_url == "http://127.0.0.1:8123/v1" and config.retry.max_attempts == 3
    assert "sk_secret_value_123" not in repr(config)
    staging = hook.get_staging()
    assert staging.url == "s3://bucket/prefix"
    assert staging.storage_options == {"key": "AKIATEST", "secret": "aws_secret_value", "client_kwargs": {
        "endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"}}
    assert hook.get_staging("s3://other/p").url == "s3://other/p"


def test_api_key_is_registered_with_the_secrets_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    key = "sk_mask_me_" + "7" * 20
    monkeypatch.setenv("AIRFLOW_CONN_SUTRO_M", conn_json(conn_type="sutro", host="https://acme.sutro.example",
                                                          password=key))
    SutroHook("sutro_m").get_config()
    assert key not in str(redact(f"calling with {key}"))


@pytest.mark.parametrize("host", ["", None])
def test_hook_rejects_missing_host(monkeypatch: pytest.MonkeyPatch, host: str | None) -> None:
    from sutro_providers.errors import SutroConfigurationError

    monkeypatch.setenv("AIRFLOW_CONN_SUTRO_BAD", conn_json(conn_type="sutro", host=host, password="sk_x_123456"))
    with pytest.raises(SutroConfigurationError, match="no host"):
        SutroHook("sutro_bad").get_config()


def test_test_connection(sutro_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert SutroHook().test_connection() == (True, "Connection to Sutro succeeded")
    monkeypatch.setenv("AIRFLOW_CONN_SUTRO_WRONG", conn_json(conn_type="sutro", host=sutro_conn.url,
                                                              password="sk_wrong_key_000000"))
    ok, message = SutroHook("sutro_wrong").test_connection()
    assert not ok and "sk_wrong_key_000000" not in message


def test_aget_client_reads_the_connection_asynchronously(sutro_conn: Any) -> None:
    async def main() -> bool:
        client = await SutroHook().aget_client()
        try:
            return await client.auth_check()
        finally:
            await client.aclose()

    assert asyncio.run(main()) is True


def _job(server: Any, faults: list[dict[str, Any]] | None = None) -> str:
    if faults:
        server.admin.set_faults(faults)
    with SutroClient(api_url=server.url, api_key=server.api_key) as client:
        return client.create_job(model="ticket-triage", inputs=TICKETS)


def test_sensor_defers_then_succeeds(sutro_conn: Any) -> None:
    job = _job(sutro_conn, [{"kind": "hold_job", "count": 1}])
    sensor = SutroJobSensor(task_id="s", job_ids=job, deferrable=True, poke_interval=0.2, timeout=60)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(make_context())
    trigger = info.value.trigger
    assert isinstance(trigger, SutroJobTrigger) and trigger.job_ids == [job]
    sutro_conn.admin.release(job)

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError

    assert sensor.execute_complete(make_context(), asyncio.run(first())) == {job: "SUCCEEDED"}


def test_sensor_poke_raises_on_failed_and_cancelled(sutro_conn: Any) -> None:
    import time

    failed = _job(sutro_conn, [{"kind": "fail_job", "count": 1}])
    held = _job(sutro_conn, [{"kind": "hold_job", "count": 1}])
    with SutroClient(api_url=sutro_conn.url, api_key=sutro_conn.api_key) as client:
        client.cancel_job(held)
        deadline = time.time() + 20
        while client.job_status(failed) != "FAILED" and time.time() < deadline:
            time.sleep(0.1)
    with pytest.raises(SutroJobFailedException, match=failed):
        SutroJobSensor(task_id="s", job_ids=[failed]).poke(make_context())
    with pytest.raises(SutroJobCancelledException, match=held):
        SutroJobSensor(task_id="s", job_ids=[held]).poke(make_context())


def test_run_function_single_call(sutro_conn: Any) -> None:
    result = SutroRunFunctionOperator(task_id="r", function_name="ticket-triage", input=TICKETS[0]).execute(
        make_context())
    json.dumps(result)
    assert result.get("response") or result.get("output")


def test_run_function_several_rows(sutro_conn: Any) -> None:
    result = SutroRunFunctionOperator(task_id="r", function_name="ticket-triage", input_data=TICKETS).execute(
        make_context())
    assert result["rows_out"] == len(TICKETS)
    assert [r["subject"] for r in result["rows"]] == [t["subject"] for t in TICKETS]
    assert all(r["label"] for r in result["rows"])


def test_job_link_reads_the_xcom(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time import xcom

    seen: dict[str, Any] = {}

    def get_value(*, ti_key: Any, key: str) -> Any:
        seen["key"] = key
        return "http://127.0.0.1:1/jobs/job-1"

    monkeypatch.setattr(xcom.XCom, "get_value", staticmethod(get_value))
    assert SutroJobLink().get_link(None, ti_key=None) == "http://127.0.0.1:1/jobs/job-1"  # type: ignore[arg-type]
    assert seen["key"] == "sutro_job_url"


def test_job_link_of_the_operator_that_ran_reads_no_xcom(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time import xcom

    from airflow_provider.operators.batch import SutroBatchFunctionOperator

    def get_value(*, ti_key: Any, key: str) -> Any:
        raise AssertionError("a missing XCom would be looked up (and logged as an error)")

    monkeypatch.setattr(xcom.XCom, "get_value", staticmethod(get_value))
    op = SutroBatchFunctionOperator(task_id="t", function_name="ticket-triage", input_data=[])
    assert SutroJobLink().get_link(op, ti_key=None) == ""  # type: ignore[arg-type]  # failed before submitting
    op.sutro_job_url = "http://127.0.0.1:1/jobs/job-1"
    assert SutroJobLink().get_link(op, ti_key=None) == "http://127.0.0.1:1/jobs/job-1"  # type: ignore[arg-type]


def test_openlineage_facets(sqlite_db: Any, sutro_conn: Any) -> None:
    from airflow_provider.operators.batch import SutroBatchFunctionOperator
    from sutro_providers.manifest import Manifest, ShardInfo

    op = SutroBatchFunctionOperator(task_id="t", function_name="ticket-triage", sql="SELECT * FROM support_tickets",
                                    conn_id="warehouse", output_uri="s3://bucket/out/day.parquet",
                                    destination_table="triaged", destination_conn_id="warehouse")
    op._manifest = Manifest(run_key="k", identity="i", function="ticket-triage", state="succeeded",
                            shards=[ShardInfo(index=0, job_id="job-1", job_name="sp-x-s0000", rows=3)])
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.outputs][0] == ("s3://bucket", "out/day.parquet")
    assert lineage.outputs[1].name == "triaged"
    assert [d.name for d in lineage.inputs] == ["support_tickets"]
    assert lineage.run_facets["externalQuery"].externalQueryId == "job-1"
    uri_op = SutroBatchFunctionOperator(task_id="u", function_name="f", input_uri="s3://in/tickets.parquet")
    assert [(d.namespace, d.name) for d in uri_op.get_openlineage_facets_on_complete(None).inputs] == [
        ("s3://in", "tickets.parquet")]
