"""Fault injection rules, set at start (``--faults FILE``) or via ``/_admin/faults``
(the README's "Fault rules" has the same syntax with an example per kind).

A rule is a JSON object::

    {"kind": "status", "endpoint": "job-status", "status": 524, "count": 2}

* ``kind``: ``status`` (answer ``status`` with a JSON error, plus
  ``Retry-After`` when ``retry_after`` is set), ``drop_connection`` (close
  the socket without answering), ``latency`` (delay by ``latency_ms`` then
  answer normally), ``stream_drop`` (end ``stream-job-progress`` after its
  first line), ``results_not_ready`` (409 ``results_not_ready`` from
  ``job-results``/``results-url`` for a SUCCEEDED job), ``fail_job`` (the
  next matching jobs end FAILED with ``failure_reason``; ``message`` sets its
  text), ``hold_job`` (the next matching jobs stay RUNNING until
  ``POST /_admin/jobs/{id}/release``), ``hold_request`` (the request waits,
  before it is handled, until ``POST /_admin/faults/release`` or, when
  ``latency_ms`` is set, at most that long; clearing the rules releases it too).
* ``endpoint``: a route name or glob (``batch-inference``, ``job-status``,
  ``jobs``, ``list-jobs``, ``job-results``, ``results-url``, ``presigned``,
  ``job-cancel``, ``stream-job-progress``, ``functions-run``, ``functions``,
  ``auth-check``, ``get-quotas``, ``*``) or ``reads`` (every GET/HEAD plus
  ``job-results``). Admin routes are never faulted. Default ``*``.
* How often: ``count`` (the next N matching calls) or ``rate`` (probability
  per call, drawn from ``random.Random(seed)``); neither means every call.
* ``phase``: ``before`` (default) or ``after``: the request is fully handled
  (e.g. the job IS created) and then the fault replaces the answer.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

FaultKind = Literal[
    "status", "drop_connection", "latency", "stream_drop", "results_not_ready", "fail_job", "hold_job",
    "hold_request",
]
REQUEST_KINDS = ("status", "drop_connection")


class FaultRule(BaseModel):
    """One fault rule (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    endpoint: str = "*"
    status: int = Field(default=524, ge=400, le=599)
    rate: float | None = Field(default=None, ge=0, le=1)
    count: int | None = Field(default=None, ge=0)
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    retry_after: float | None = Field(default=None, ge=0)
    phase: Literal["before", "after"] = "before"
    seed: int = 0
    message: str | None = None

    _rng: random.Random = PrivateAttr(default_factory=random.Random)
    _remaining: int | None = PrivateAttr(default=None)

    def model_post_init(self, _: Any) -> None:
        self._rng = random.Random(self.seed)
        self._remaining = self.count

    def matches(self, endpoint: str, method: str) -> bool:
        if self.endpoint == "reads":
            return method in ("GET", "HEAD") or endpoint == "job-results"
        return fnmatch.fnmatchcase(endpoint, self.endpoint)

    def fire(self) -> bool:
        """Consume one firing if the rule applies now (call with the registry lock)."""
        if self._remaining is not None:
            if self._remaining <= 0:
                return False
            self._remaining -= 1
            return True
        if self.rate is not None:
            return self._rng.random() < self.rate
        return True

    def public(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        if self._remaining is not None:
            data["remaining"] = self._remaining
        return data


@dataclass(eq=False)
class _HeldRequest:
    """A request held by a ``hold_request`` rule: set ``event`` on ``loop`` to let it go."""

    endpoint: str
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self.event.set)


class FaultRegistry:
    """The active rules, how often each kind fired, and the requests held now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._held: list[_HeldRequest] = []
        self.injected: Counter[str] = Counter()

    def set(self, rules: list[dict[str, Any]], append: bool = False) -> list[FaultRule]:
        parsed = [FaultRule.model_validate(r) for r in rules]
        with self._lock:
            self._rules = [*self._rules, *parsed] if append else parsed
            return list(self._rules)

    def clear(self) -> None:
        """Drop every rule and release every held request."""
        with self._lock:
            self._rules = []
        self.release_held()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.public() for r in self._rules]

    def take(
        self,
        kinds: tuple[str, ...],
        endpoint: str,
        method: str = "POST",
        phase: str | None = None,
    ) -> FaultRule | None:
        """The first rule of ``kinds`` that matches and fires, or ``None``."""
        with self._lock:
            for rule in self._rules:
                if rule.kind not in kinds or not rule.matches(endpoint, method):
                    continue
                if phase is not None and rule.phase != phase:
                    continue
                if rule.fire():
                    self.injected[rule.kind] += 1
                    return rule
        return None

    def latency_ms(self, endpoint: str, method: str) -> int:
        """Total injected delay for this request (each matching latency rule fires once)."""
        total = 0
        with self._lock:
            for rule in self._rules:
                if rule.kind == "latency" and rule.matches(endpoint, method) and rule.fire():
                    self.injected["latency"] += 1
                    total += rule.latency_ms
        return total

    async def hold(self, endpoint: str, method: str) -> None:
        """Wait here while a ``hold_request`` rule holds this request (on the app's loop):
        until :meth:`release_held`, :meth:`clear`, or the rule's ``latency_ms`` when set."""
        rule = self.take(("hold_request",), endpoint, method)
        if rule is None:
            return
        held = _HeldRequest(endpoint, asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._held.append(held)
        try:
            await asyncio.wait_for(held.event.wait(), rule.latency_ms / 1000 if rule.latency_ms else None)
        except TimeoutError:
            pass  # held for latency_ms: answer normally
        finally:
            with self._lock:
                if held in self._held:
                    self._held.remove(held)

    def release_held(self, endpoint: str | None = None) -> int:
        """Let the held requests (of ``endpoint``, a route name or glob, else all) go on; how many."""
        with self._lock:
            chosen = [h for h in self._held if endpoint is None or fnmatch.fnmatchcase(h.endpoint, endpoint)]
            self._held = [h for h in self._held if h not in chosen]
        for held in chosen:
            held.release()
        return len(chosen)

    def held(self) -> dict[str, int]:
        """How many requests are held now, by route name."""
        with self._lock:
            return dict(Counter(h.endpoint for h in self._held))
