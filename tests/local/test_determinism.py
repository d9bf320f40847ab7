"""The same row gives the same output in batch (JSON, CSV, Parquet) and in functions/run."""

from __future__ import annotations

import json

import httpx
import pyarrow as pa
import pytest

from sutro_providers.function_spec import load_function_specs
from sutro_providers.local.engine import DeterministicEngine, EngineRequest
from sutro_providers.local.pytest_plugin import MotoS3
from sutro_providers.local.render import build_prompts, render_column, render_object_row, render_value
from tests.local.conftest import TICKETS, csv_bytes, parquet_bytes, results, submit, wait_for
from tests.local.test_lifecycle import FUNCTIONS

SPECS = load_function_specs(FUNCTIONS)


def test_batch_and_run_agree(api: httpx.Client) -> None:
    job_id = submit(api, model="ticket-triage", inputs=TICKETS)
    wait_for(api, job_id)
    cols = results(api, job_id)
    for row, out, conf in zip(TICKETS, cols["outputs"], cols["confidence_score"], strict=True):
        run = api.post("/v1/functions/ticket-triage/run", json={"input": row}).json()
        assert json.loads(out) == run["output"] and conf == pytest.approx(run["confidence"])


def test_json_csv_parquet_rows_agree(api: httpx.Client, sutro_s3_server: MotoS3, sutro_s3_bucket: str) -> None:
    table = pa.table({"message": ["Ping from Umbrella", "Need pricing"], "employees": pa.array([3, 12000], pa.int64())})
    outputs = []
    for name, data in (("l.parquet", parquet_bytes(table)), ("l.csv", csv_bytes(table))):
        sutro_s3_server.put(f"{sutro_s3_bucket}/{name}", data)
        job_id = submit(api, model="lead-extractor", inputs=sutro_s3_server.presigned_url(f"{sutro_s3_bucket}/{name}"))
        wait_for(api, job_id)
        outputs.append(results(api, job_id)["outputs"])
    json_job = submit(api, model="lead-extractor", inputs=table.to_pylist())
    wait_for(api, json_job)
    outputs.append(results(api, json_job)["outputs"])
    assert outputs[0] == outputs[1] == outputs[2]
    run = api.post("/v1/functions/lead-extractor/run", json={"input": {"message": "Need pricing", "employees": 12000}}).json()
    assert json.loads(outputs[0][1]) == run["output"]


def test_rendering_rules() -> None:
    assert [render_value(v) for v in (None, float("nan"), 3, 2.5, True, "x", {"a": 1}, [1, "b"])] == [
        "", "", "3", "2.5", "True", "x", '{"a": 1}', '[1, "b"]'
    ]  # fmt: skip
    arrow = pa.array([3, None, -7], pa.int32())
    assert render_column(arrow).to_pylist() == ["3", "", "-7"]
    floats = pa.array([2.5, None, float("nan"), 1.0])
    assert render_column(floats).to_pylist() == [render_value(v) for v in (2.5, None, float("nan"), 1.0)]
    assert render_column(pa.array([True, False])).to_pylist() == ["True", "False"]
    prompts = build_prompts(["a", "b"], [pa.array(["1"]), pa.array(["2"])])
    assert prompts.to_pylist() == ["a: 1\nb: 2"] == [render_object_row({"b": 2, "a": 1, "z": 0}, ["a", "b"])]


def test_engine_classification_and_extraction_contracts() -> None:
    engine = DeterministicEngine()
    prompts = pa.array([f"subject: Case {i}\nbody: text {i * 7}" for i in range(300)])
    triage = engine.infer(EngineRequest(model="ticket-triage", function=SPECS["ticket-triage"]), prompts)
    assert triage.label_probs is not None
    assert triage.label_probs.sum(axis=1) == pytest.approx([1.0] * 300)
    labels = [json.loads(o)["label"] for o in triage.outputs.to_pylist()]
    assert len(set(labels)) == 5  # all labels reachable
    best = [SPECS["ticket-triage"].labels[i] for i in triage.label_probs.argmax(axis=1)]
    assert labels == best
    assert triage.confidence.to_pylist() == pytest.approx(triage.label_probs.max(axis=1).tolist())
    leads = engine.infer(EngineRequest(model="lead-extractor", function=SPECS["lead-extractor"]), prompts)
    for text in leads.outputs.to_pylist():
        obj = json.loads(text)
        assert list(obj) == ["company", "seniority", "intent_score", "wants_demo"]
        assert obj["company"] == "Case" and obj["seniority"] in ("individual", "manager", "director", "executive")
        assert 0 <= obj["intent_score"] <= 1 and isinstance(obj["wants_demo"], bool)
    again = engine.infer(EngineRequest(model="lead-extractor", function=SPECS["lead-extractor"]), prompts)
    assert again.outputs.equals(leads.outputs)
    tokens = leads.input_tokens.to_pylist()
    assert tokens == [max(1, -(-len(p) // 4)) for p in prompts.to_pylist()]


def test_engine_json_schema_with_refs_and_arrays() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "n": {"type": "integer", "minimum": 5, "maximum": 6},
        },
        "$defs": {"Item": {"type": "object", "properties": {"ok": {"type": "boolean"}, "k": {"const": "fixed"}}}},
    }
    out = DeterministicEngine().infer(EngineRequest(model="gpt-oss-20b", json_schema=schema), pa.array(["Quote from Zurich"]))
    obj = json.loads(out.outputs[0].as_py())
    assert obj["items"][0]["k"] == "fixed" and isinstance(obj["items"][0]["ok"], bool)
    assert obj["note"] == "Quote" and obj["n"] in (5, 6)
