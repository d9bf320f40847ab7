"""v3 calls by name and v2 revision calls, over real sockets, sync and async clients."""

from __future__ import annotations

import uuid

import httpx
import jsonschema
import pytest
from pydantic import BaseModel

from sutro_providers.errors import (
    SutroAuthenticationError,
    SutroNotFoundError,
    SutroValidationError,
)
from tests.opper.opper_harness import MakeClient, OpperServer

TICKET_SCHEMA = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["billing", "bug", "other"]},
        "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
        "summary": {"type": "string"},
        "escalate": {"type": "boolean"},
    },
    "required": ["category", "urgency", "summary", "escalate"],
    "additionalProperties": False,
}
INPUT_SCHEMA = {
    "type": "object",
    "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
    "required": ["subject", "body"],
}
TICKET = {"subject": "Refund please", "body": "Charged Twice for March"}


class Party(BaseModel):
    name: str
    role: str


class Contract(BaseModel):
    title: str
    parties: list[Party]
    value_usd: float


def test_v3_call_output_fits_schema_with_usage_and_cost(make_client: MakeClient) -> None:
    client = make_client()
    result = client.call("triage", TICKET, input_schema=INPUT_SCHEMA, output_schema=TICKET_SCHEMA)
    jsonschema.validate(result.data, TICKET_SCHEMA)
    assert result.meta.function_name == "triage"
    assert result.usage.input_tokens and result.usage.input_tokens > 0
    assert result.usage.output_tokens and result.usage.output_tokens > 0
    assert isinstance(result.cost, float) and result.cost > 0
    assert result.meta.models_used == ["openai/gpt-4o-mini"]
    assert result.meta.script_cached is False
    again = client.call("triage", TICKET, input_schema=INPUT_SCHEMA, output_schema=TICKET_SCHEMA)
    assert again.data == result.data  # deterministic engine
    assert again.meta.script_cached is True


def test_v3_call_without_output_schema_returns_text(make_client: MakeClient) -> None:
    result = make_client().call("echo", "hello there", model=[{"name": "anthropic/claude-3-haiku"}, "x/y"])
    assert isinstance(result.data, str) and "hello there" in result.data
    assert result.meta.models_used == ["anthropic/claude-3-haiku"]


def test_v3_call_with_pydantic_models(make_client: MakeClient) -> None:
    result = make_client().call("extract", TICKET, output_schema=Contract, instructions="Extract the contract")
    contract = result.data_as(Contract)  # $defs were inlined; the fake fills every field
    assert contract.parties and contract.parties[0].name


def test_v3_input_schema_mismatch_is_a_400_validation_error(make_client: MakeClient, opper: OpperServer) -> None:
    client = make_client()
    with pytest.raises(SutroValidationError) as info:
        client.call("triage", {"subject": "no body"}, input_schema=INPUT_SCHEMA)
    err = info.value
    assert err.status_code == 400 and err.code == "invalid_input"
    assert str(err).startswith("Opper opper-call: HTTP 400") and "'body' is a required property" in str(err)
    assert opper.attempts("opper-call") == 1


def test_v3_name_is_percent_encoded(make_client: MakeClient) -> None:
    result = make_client().call("team/summarize v2", "text")
    assert result.meta.function_name == "team/summarize v2"


def test_wrong_key_is_an_authentication_error_without_the_key(make_client: MakeClient) -> None:
    client = make_client(api_key="op-wrong-secret-987654")
    with pytest.raises(SutroAuthenticationError) as info:
        client.call("triage", TICKET)
    assert info.value.status_code == 401 and info.value.code == "unauthorized"
    assert "op-wrong-secret-987654" not in str(info.value) and "op-wrong-secret-987654" not in repr(info.value)


def test_mounted_under_a_prefix(make_client: MakeClient, opper: OpperServer) -> None:
    result = make_client(base_url=opper.url + "/opper/").call("echo", "prefixed")
    assert "prefixed" in result.data


def test_v2_revision_call_with_schema_tags_and_parent(make_client: MakeClient, opper: OpperServer) -> None:
    rev = opper.emulator.register_function("triage", output_schema=TICKET_SCHEMA, input_schema=INPUT_SCHEMA)
    client = make_client()
    root = client.create_span("pipeline-run")
    result = client.call_revision(rev.function_id, rev.revision_id, TICKET, tags={"env": "test"},
                                  examples=[{"input": TICKET, "output": {"category": "billing"}, "comment": "x"}],
                                  parent_span_id=root.id)
    jsonschema.validate(result.json_payload, TICKET_SCHEMA)
    assert result.message is None and result.value == result.json_payload and result.cached is False
    usage, cost = result.usage, result.cost
    assert usage is not None and cost is not None
    assert usage.total_tokens == (usage.input_tokens or 0) + (usage.output_tokens or 0) > 0
    assert cost.total == pytest.approx((cost.generation or 0) + (cost.platform or 0)) and cost.total > 0
    span = client.get_span(result.span_id)
    assert span.parent_id == root.id and span.trace_id == root.trace_id
    assert span.tags == {"env": "test"} and span.type == "call"


def test_v2_text_revision_and_result_cache(make_client: MakeClient, opper: OpperServer) -> None:
    rev = opper.emulator.register_function("chat", cache_ttl=60)
    client = make_client()
    first = client.call_revision(rev.function_id, rev.revision_id, "What is 1+3?")
    assert isinstance(first.message, str) and first.json_payload is None and first.cached is False
    second = client.call_revision(rev.function_id, rev.revision_id, "What is 1+3?")
    assert second.cached is True and second.message == first.message
    assert second.span_id != first.span_id


def test_v2_unknown_revision_is_not_found(make_client: MakeClient, opper: OpperServer) -> None:
    rev = opper.emulator.register_function("chat")
    with pytest.raises(SutroNotFoundError) as info:
        make_client().call_revision(rev.function_id, str(uuid.uuid4()), "x")
    assert info.value.code == "not_found"


@pytest.mark.parametrize("function_id, revision_id", [("7", "723e7f7e-9322-451c-9e94-f0086d5a3cf1"), ("6b0a6a1b-7d06-4125-b8cb-17c8e19a3215", "3")])
def test_v2_ids_must_be_uuids_and_nothing_is_sent(
    make_client: MakeClient, opper: OpperServer, function_id: str, revision_id: str
) -> None:
    with pytest.raises(SutroValidationError, match="must be a UUID"):
        make_client().call_revision(function_id, revision_id, "x")
    assert opper.attempts("opper-call-revision") == 0


def test_bad_request_fields_are_refused_client_side(make_client: MakeClient, opper: OpperServer) -> None:
    client = make_client()
    with pytest.raises(SutroValidationError, match="tags"):
        client.call_revision(str(uuid.uuid4()), str(uuid.uuid4()), "x", tags={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(SutroValidationError, match="function name is empty"):
        client.call(" ", "x")
    assert sum(opper.emulator.stats.values()) == 0


def test_error_envelope_on_unknown_route(opper: OpperServer) -> None:
    resp = httpx.get(opper.url + "/v3/nothing/here", headers={"Authorization": f"Bearer {opper.api_key}"})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_v2_call_by_name_creates_then_reuses_the_function(opper: OpperServer) -> None:
    headers = {"Authorization": f"Bearer {opper.api_key}"}
    body = {"name": "adder", "input": {"a": 1, "b": 3}, "output_schema": {"type": "object", "properties": {"sum": {"type": "integer"}}}}
    first = httpx.post(opper.url + "/v2/call", json=body, headers=headers).json()
    second = httpx.post(opper.url + "/v2/call", json=body, headers=headers).json()
    assert isinstance(first["json_payload"]["sum"], int) and first["json_payload"] == second["json_payload"]
    listed = httpx.get(opper.url + "/v2/functions", headers=headers).json()
    assert listed["meta"]["total_count"] == 1 and listed["data"][0]["name"] == "adder"
