"""Engines for local servers that misbehave on purpose (``--engine tests.reliability.engines:off_label``)."""

from __future__ import annotations

import json

import pyarrow as pa

from sutro_providers.local.engine import DeterministicEngine, EngineOutput, EngineRequest


class OffLabelEngine(DeterministicEngine):
    """Answers every classification with a label the Function does not declare."""

    def infer(self, request: EngineRequest, prompts: pa.Array) -> EngineOutput:
        out = super().infer(request, prompts)
        out.outputs = pa.array([json.dumps({"label": "spam", "rationale": "off the list"})] * len(prompts))
        return out


def off_label() -> OffLabelEngine:
    return OffLabelEngine()
