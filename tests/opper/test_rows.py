"""The Opper backend of the enrichment run against the emulator over real sockets:
one call per row with tags and the run's parent span, typed output columns, usage
and cost in the manifest, the journal making retries skip answered rows, 429s,
row errors, bad input, completed and changed runs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sutro_providers.client.config import RetryPolicy
from sutro_providers.columns import SKIP_REASON
from sutro_providers.errors import SutroInputError, SutroLedgerConflictError, SutroRowsFailedError
from sutro_providers.identity import RunIdentity
from sutro_providers.opper import OpperConfig
from sutro_providers.opper_rows import OpperOptions, OpperRowPipeline
from sutro_providers.options import StagingLocation
from tests.opper.opper_harness import OpperServer

INPUT_SCHEMA = {"type": "object", "properties": {"subject": {"type": "string"}, "body": {"type": "string"}},
                "required": ["subject", "body"]}
OUTPUT_SCHEMA = {"type": "object", "properties": {
    "label": {"type": "string", "enum": ["billing", "bug", "other"]},
    "urgent": {"type": "boolean"}, "priority": {"type": "integer"}}, "required": ["label", "urgent", "priority"]}


def tickets(n: int) -> pa.Table:
    return pa.table({"ticket_id": [f"T-{i}" for i in range(n)], "subject": [f"subject {i}" for i in range(n)],
                     "body": [f"body of ticket {i}" for i in range(n)]})


def make(opper: OpperServer, tmp_path: Path) -> OpperRowPipeline:
    config = OpperConfig(base_url=opper.url, api_key=opper.api_key,  # type: ignore[arg-type]
                         retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.05))
    return OpperRowPipeline(config, StagingLocation(url=str(tmp_path / "staging")))


def options(**kw: Any) -> OpperOptions:
    base: dict[str, Any] = dict(function="ticket-triage", instructions="Triage the ticket", input_schema=INPUT_SCHEMA,
                                output_schema=OUTPUT_SCHEMA, model="openai/gpt-4o-mini", id_column="ticket_id",
                                concurrency=8, journal_chunk_rows=10)
    return OpperOptions(**{**base, **kw})


def calls(opper: OpperServer) -> list[dict[str, Any]]:
    return list(opper.emulator.calls)


def test_every_row_once_with_tags_parent_span_usage_and_typed_columns(opper: OpperServer, tmp_path: Path) -> None:
    identity = RunIdentity.airflow("tickets", "triage", "manual__1")
    out = tmp_path / "out.parquet"
    result = make(opper, tmp_path).run(tickets(57), identity, options(output_uri=str(out)))
    m = result.manifest
    assert (m.state, m.backend, m.rows_in, m.rows_out, m.rows_failed) == ("succeeded", "opper", 57, 57, 0)
    logged = calls(opper)
    rows = Counter(c["tags"]["sutro.row"] for c in logged)
    assert len(logged) == 57 and set(rows.values()) == {1} and len(rows) == 57
    assert all(c["parent_span_id"] == m.trace_span_id for c in logged)
    tags = logged[0]["tags"]
    assert tags["sutro.run"] == identity.short and tags["sutro.dag_id"] == "tickets" and tags["sutro.run_id"] == "manual__1"
    parent = opper.emulator.get_span(str(m.trace_span_id))
    assert parent["name"] == "ticket-triage" and parent["end_time"] and parent["tags"]["sutro.task_id"] == "triage"
    children = [s for s in opper.emulator.spans.values() if s["parent_id"] == m.trace_span_id]
    assert len(children) == 57 and {s["trace_id"] for s in children} == {parent["trace_id"]}
    assert m.input_tokens > 0 and m.output_tokens > 0 and m.cost_usd and m.cost_usd > 0
    usage = m.usage_by_model["openai/gpt-4o-mini"]
    assert (usage.calls, usage.input_tokens, usage.cost_usd) == (57, m.input_tokens, m.cost_usd)
    table = pq.read_table(out)
    assert table.column_names == ["ticket_id", "subject", "body", "label", "urgent", "priority", SKIP_REASON]
    assert table.schema.field("urgent").type == pa.bool_() and table.schema.field("priority").type == pa.int64()
    assert table["ticket_id"].to_pylist() == [f"T-{i}" for i in range(57)]
    assert set(table["label"].to_pylist()) <= {"billing", "bug", "other"} and table["label"].null_count == 0
    assert result.table is not None and result.table.equals(table)
    # the same row gives the same answer as a direct call
    direct = opper.emulator.calls[0]
    assert json.loads(direct["input"]).keys() == {"subject", "body"}


def test_text_output_examples_from_list_and_file(opper: OpperServer, tmp_path: Path) -> None:
    examples = tmp_path / "shots.jsonl"
    examples.write_text('{"input": {"subject": "a", "body": "b"}, "output": "x"}\n'
                        '{"input": {"subject": "c", "body": "d"}, "output": "y", "comment": "c"}\n')
    opts = options(function="summarize", output_schema=None, output_prefix="opper_", examples_file=str(examples),
                   examples=[{"input": {"subject": "e", "body": "f"}, "output": "z"}])
    result = make(opper, tmp_path).run(tickets(5), RunIdentity.of("script", n=1), opts)
    assert result.table is not None
    assert result.table.column_names == ["ticket_id", "subject", "body", "opper_output", SKIP_REASON]
    assert all(isinstance(v, str) and v.startswith("summarize: ") for v in result.table["opper_output"].to_pylist())
    assert [c["examples"] for c in calls(opper)] == [3] * 5


def test_rate_limits_are_waited_out_and_each_row_answered_once(opper: OpperServer, tmp_path: Path) -> None:
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-call-revision", "status": 429, "count": 6,
                                "retry_after": 0.05}])
    result = make(opper, tmp_path).run(tickets(20), RunIdentity.of("script", n=2), options())
    assert result.manifest.rows_out == 20
    assert opper.attempts("opper-call-revision") == 26  # 6 refused + 20 answered
    assert sorted(Counter(c["tags"]["sutro.row"] for c in calls(opper)).values()) == [1] * 20


def test_failed_rows_fail_the_run_and_a_retry_calls_only_unanswered_rows(opper: OpperServer, tmp_path: Path) -> None:
    pipeline, identity = make(opper, tmp_path), RunIdentity.of("script", n=3)
    opts = options(concurrency=1, max_row_attempts=2, journal_chunk_rows=4)
    # let 9 calls through, then fail the next row twice (its two attempts)
    state = {"n": 0}
    original = opper.emulator.call_v2

    def flaky(rev: Any, body: dict[str, Any]) -> dict[str, Any]:
        state["n"] += 1
        if state["n"] in (10, 11):
            from sutro_providers.local.opper_registry import OpperAPIError

            raise OpperAPIError(500, "internal", "model exploded")
        return original(rev, body)

    opper.emulator.call_v2 = flaky  # type: ignore[method-assign]
    try:
        with pytest.raises(SutroRowsFailedError) as caught:
            pipeline.run(tickets(30), identity, opts)
    finally:
        opper.emulator.call_v2 = original  # type: ignore[method-assign]
    assert "row 9 (id T-9)" in str(caught.value) and "model exploded" in str(caught.value)
    assert caught.value.rows[0]["id"] == "T-9"
    first = Counter(c["tags"]["sutro.row"] for c in calls(opper))
    assert len(first) == 9  # nothing started after the failure
    result = pipeline.run(tickets(30), identity, opts)
    assert result.manifest.rows_out == 30 and result.manifest.rows_failed == 0
    every = Counter(c["tags"]["sutro.row"] for c in calls(opper))
    assert len(every) == 30 and set(every.values()) == {1}  # no answered row called twice
    assert result.manifest.usage_by_model["openai/gpt-4o-mini"].calls == 30
    again = pipeline.run(tickets(30), identity, opts)  # completed: no call
    assert len(calls(opper)) == 30 and again.manifest == result.manifest


def test_on_row_error_record_keeps_the_row_with_its_reason(opper: OpperServer, tmp_path: Path) -> None:
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-call-revision", "status": 400, "count": 1,
                                "message": "input refused"}])
    result = make(opper, tmp_path).run(tickets(6), RunIdentity.of("script", n=4),
                                       options(concurrency=1, on_row_error="record"))
    m = result.manifest
    assert (m.state, m.rows_out, m.rows_failed) == ("succeeded", 6, 1)
    assert m.row_errors[0].row == 0 and m.row_errors[0].id == "T-0" and "input refused" in m.row_errors[0].reason
    assert result.table is not None
    assert result.table["label"][0].as_py() is None and "input refused" in result.table[SKIP_REASON][0].as_py()
    assert result.table[SKIP_REASON].null_count == 5


def test_bad_input_is_refused_before_any_call(opper: OpperServer, tmp_path: Path) -> None:
    bad = tickets(4).set_column(2, "body", pa.array(["x", None, "y", "z"]))
    with pytest.raises(SutroInputError, match="body"):
        make(opper, tmp_path).run(bad, RunIdentity.of("script", n=5), options())
    assert calls(opper) == [] and opper.emulator.spans == {}


def test_a_changed_input_is_refused_on_retry(opper: OpperServer, tmp_path: Path) -> None:
    pipeline, identity = make(opper, tmp_path), RunIdentity.of("script", n=6)
    opper.emulator.faults.set([{"kind": "status", "endpoint": "opper-call-revision", "status": 400, "count": 1}])
    with pytest.raises(SutroRowsFailedError):
        pipeline.run(tickets(3), identity, options(concurrency=1))
    first = pipeline.load(identity)
    assert first is not None and first.stage_id
    first_folder = Path(pipeline.area.files_prefix(identity, first.stage_id))
    assert (first_folder / "source.parquet").exists()
    with pytest.raises(SutroLedgerConflictError):
        pipeline.run(tickets(4), identity, options(concurrency=1))
    result = pipeline.run(tickets(4), identity, options(concurrency=1, on_input_change="resubmit", keep_staged=True))
    assert result.manifest.rows_out == 4
    second = pipeline.load(identity)
    assert second is not None and second.stage_id not in (None, first.stage_id)
    assert not list(first_folder.glob("*.parquet"))  # the first staging's files went with its answers
    assert (Path(pipeline.area.files_prefix(identity, second.stage_id)) / "source.parquet").exists()


def test_empty_input_calls_nothing_and_gives_the_empty_enriched_table(opper: OpperServer, tmp_path: Path) -> None:
    result = make(opper, tmp_path).run(tickets(1).slice(0, 0), RunIdentity.of("script", n=8), options())
    assert (result.manifest.state, result.manifest.rows_in, result.manifest.backend) == ("noop", 0, "opper")
    assert result.table is not None and result.table.num_rows == 0
    assert result.table.column_names == ["ticket_id", "subject", "body", "label", "urgent", "priority", SKIP_REASON]
    assert result.table.schema.field("priority").type == pa.int64()
    assert calls(opper) == [] and opper.emulator.spans == {}


def test_pinned_revision_call(opper: OpperServer, tmp_path: Path) -> None:
    rev = opper.emulator.register_function("pinned", output_schema=OUTPUT_SCHEMA, model="anthropic/claude-3-haiku")
    opts = options(function="pinned", function_id=rev.function_id, revision_id=rev.revision_id, model=None,
                   instructions=None)
    result = make(opper, tmp_path).run(tickets(3), RunIdentity.of("script", n=7), opts)
    assert list(result.manifest.usage_by_model) == ["anthropic/claude-3-haiku"]
    assert result.table is not None and result.table["label"].null_count == 0
