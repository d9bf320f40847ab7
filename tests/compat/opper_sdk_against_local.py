"""Drive the official, unmodified ``opperai`` SDK 2.1.1 against the local server.

Run with the SDK's own venv (``.venv-opper-sdk/bin/python``), never the project
venv. Environment: ``OPPER_BASE_URL`` / ``OPPER_API_KEY`` (the local server).
Prints ``ok <step>`` per step and ``OPPER SDK COMPAT OK`` at the end; exits
non-zero at the first mismatch (an exception or a failed check).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import urllib.request
from typing import Any

from opperai import Opper
from opperai.types import AuthenticationError, BadRequestError, CompleteChunk, ContentChunk, NotFoundError

URL = os.environ["OPPER_BASE_URL"]
KEY = os.environ["OPPER_API_KEY"]
STEPS: list[str] = []


def check(condition: object, message: str) -> None:
    if not condition:
        print(f"FAILED: {message}", flush=True)
        sys.exit(1)


def step(name: str) -> None:
    STEPS.append(name)
    print(f"ok {name}", flush=True)


@dataclasses.dataclass
class Triage:
    label: str
    urgent: bool


TRIAGE_SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["bug", "billing", "other"]},
                                                  "urgent": {"type": "boolean"}},
                 "required": ["label", "urgent"]}


def calls_log() -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{URL}/_opper/calls", timeout=10) as reply:
        return json.loads(reply.read())["calls"]


def main() -> None:
    opper = Opper(api_key=KEY, base_url=URL)

    text = opper.call("compat/summarize", input="The app crashes when I log in", instructions="Summarise")
    check(isinstance(text.data, str) and text.data, f"text call gave {text.data!r}")
    meta = text.meta or {}
    check(meta.get("usage", {}).get("input_tokens", 0) > 0 and isinstance(meta.get("cost"), float), f"meta {meta}")
    check(meta.get("cached") is False, f"first call should not be cached: {meta}")
    step("call by name (text)")

    again = opper.call("compat/summarize", input="The app crashes when I log in", instructions="Summarise")
    check(again.data == text.data and (again.meta or {}).get("cached") is True, f"repeat: {again}")
    step("same input again: cached")

    structured = opper.call("compat-triage", input={"subject": "Refund", "body": "charged twice"},
                            input_schema={"type": "object", "properties": {"subject": {"type": "string"},
                                                                            "body": {"type": "string"}},
                                          "required": ["subject", "body"]},
                            output_schema=Triage)
    check(isinstance(structured.data, Triage) and isinstance(structured.data.urgent, bool),
          f"structured (dataclass) gave {structured.data!r}")
    raw = opper.call("compat-triage-raw", input={"subject": "Crash"}, output_schema=TRIAGE_SCHEMA)
    check(isinstance(raw.data, dict) and raw.data["label"] in {"bug", "billing", "other"}
          and isinstance(raw.data["urgent"], bool), f"structured (dict schema) gave {raw.data!r}")
    step("call by name (structured output)")

    try:
        opper.call("compat-triage", input={"subject": 3},
                   input_schema={"type": "object", "properties": {"subject": {"type": "string"}}})
    except BadRequestError as exc:
        check("subject" in str(exc), f"the input error should name the field: {exc}")
    else:
        check(False, "an input not matching input_schema was accepted")
    step("input not matching input_schema: 400")

    chunks = list(opper.stream("compat/summarize", input="stream me"))
    deltas = "".join(c.delta for c in chunks if isinstance(c, ContentChunk))
    complete = [c for c in chunks if isinstance(c, CompleteChunk)]
    check(complete and deltas == complete[0].data, f"stream: {deltas!r} vs {complete}")
    step("stream")

    names = {f.name for f in opper.functions.list()}
    check({"compat/summarize", "compat-triage", "compat-triage-raw"} <= names, f"functions.list gave {names}")
    step("functions.list")

    details = opper.functions.get("compat/summarize")
    check(details.name == "compat/summarize" and details.hit_count == 3 and details.source, f"get: {details}")
    updated = opper.functions.update("compat/summarize", source="def run(input):\n    return input\n")
    check(updated.source.startswith("def run"), f"update: {updated}")
    revisions = opper.functions.list_revisions("compat/summarize")
    check([r.revision_id for r in revisions] == [1, 2] and revisions[-1].is_current, f"revisions: {revisions}")
    first = opper.functions.get_revision("compat/summarize", 1)
    check(first.revision_id == 1 and first.source != updated.source, f"revision 1: {first}")
    reverted = opper.functions.revert_revision("compat/summarize", 1)
    check(reverted.source == first.source and len(opper.functions.list_revisions("compat/summarize")) == 3,
          f"revert: {reverted}")
    step("functions get/update/revisions/revert")

    created = opper.functions.create_example("compat-triage", input={"subject": "Refund"},
                                             output={"label": "billing", "urgent": False}, tag="gold")
    opper.functions.create_examples_batch("compat-triage", [
        {"input": {"subject": "Crash"}, "output": {"label": "bug", "urgent": True}},
        {"input": {"subject": "Hi"}, "output": {"label": "other", "urgent": False}, "tag": "gold"},
    ])
    check(len(opper.functions.list_examples("compat-triage")) == 3, "three examples stored")
    gold = opper.functions.list_examples("compat-triage", tag="gold")
    check(len(gold) == 2 and len(opper.functions.list_examples("compat-triage", limit=1, offset=1)) == 1, f"{gold}")
    opper.functions.delete_example("compat-triage", created["uuid"])
    check(len(opper.functions.list_examples("compat-triage")) == 2, "an example deleted")
    step("examples create/batch/list/delete")

    opper.functions.delete("compat-triage-raw")
    try:
        opper.functions.get("compat-triage-raw")
    except NotFoundError:
        pass
    else:
        check(False, "a deleted function was still found")
    step("functions.delete")

    with opper.trace("compat-run", tags={"run": "r1"}) as handle:
        inner = opper.call("compat/summarize", input="inside a trace")
    span = opper.spans.get(handle.id)
    check(span.name == "compat-run" and span.end_time, f"trace span: {span}")
    logged = [c for c in calls_log() if c["input"] == "inside a trace"]
    check(inner.data and logged and logged[-1]["parent_span_id"] == handle.id, f"parent span not sent: {logged}")
    trace = opper.traces.get(handle.trace_id)
    check(trace.span_count >= 2, f"trace holds the run span and the call: {trace}")
    step("trace: call under a parent span")

    made = opper.spans.create(name="compat-span", input="in", meta={"k": 1}, tags={"team": "data"})
    opper.spans.update(made.id, output="out")
    got = opper.spans.get(made.id)
    check(got.output == "out" and got.input == "in" and (got.tags or {}).get("team") == "data", f"span: {got}")
    opper.spans.delete(made.id)
    try:
        opper.spans.get(made.id)
    except NotFoundError:
        pass
    else:
        check(False, "a deleted span was still found")
    step("spans create/get/update/delete")

    async def in_async() -> Any:
        return await opper.call_async("compat/summarize", input="async")

    check(isinstance(asyncio.run(in_async()).data, str), "call_async")
    step("call_async")

    wrong = Opper(api_key="op-wrong-key", base_url=URL)
    try:
        wrong.call("compat/summarize", input="x")
    except AuthenticationError as exc:
        check("401" in str(exc) and "API key" in str(exc) and "op-wrong-key" not in str(exc), f"auth error: {exc}")
    else:
        check(False, "a wrong key was accepted")
    step("wrong key: AuthenticationError")

    print(f"OPPER SDK COMPAT OK ({len(STEPS)} steps)", flush=True)


if __name__ == "__main__":
    main()
