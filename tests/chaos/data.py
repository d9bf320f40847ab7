"""Deterministic source rows for chaos runs (support tickets with unique ids)."""

from __future__ import annotations

import random
from typing import Any

SUBJECTS = ["Refund request", "App crashes on login", "Please add dark mode", "Cannot reset password", "Hello"]
WORDS = "invoice charge crash error feature request login password account billing export slow page".split()


def tickets(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` tickets: ``ticket_id`` (unique), ``subject``, ``body``, ``customer_tier``."""
    rng = random.Random(seed)
    return [
        {
            "ticket_id": f"T{seed}-{i:06d}",
            "subject": rng.choice(SUBJECTS),
            "body": " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))),
            "customer_tier": rng.choice(["free", "pro", "enterprise"]),
        }
        for i in range(n)
    ]
