"""Deterministic sample data for offline runs: support tickets with free text.

Used by the demo, the example DAG and asset, and handy in users' own tests::

    from sutro_providers.local.sample_data import support_tickets

    rows = support_tickets("2026-11-20", 100)   # same rows for the same arguments
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

TEMPLATES = [
    ("Charged twice this month", "My card was billed twice for the {plan} plan on {day}. Please refund one charge."),
    ("Invoice shows the wrong amount", "The invoice for {day} lists {seats} seats but we only have {half}."),
    ("App crashes on login", "Since version 3.{minor} the app crashes right after I enter my password."),
    ("Export button does nothing", "Clicking Export on the reports page has no effect in {browser}."),
    ("Please add dark mode", "It would be great to have a dark theme for late shifts."),
    ("Feature idea: Slack alerts", "Could you send an alert to Slack when a report finishes?"),
    ("Cannot reset my password", "The reset link says it expired even though I clicked it right away."),
    ("Change account owner", "Our admin left; please transfer ownership of workspace {seats} to me."),
    ("Question about data retention", "How long do you keep deleted projects before purging them?"),
    ("Slow dashboard", "The dashboard takes {seats} seconds to load since the last update in {browser}."),
]
TIERS = ["free", "pro", "enterprise", None]


def support_tickets(day: str | dt.date, count: int) -> list[dict[str, Any]]:
    """``count`` tickets created on ``day``, spread over the day: ``ticket_id``,
    ``subject``, ``body``, ``customer_tier`` (sometimes null) and ``created_at``
    (a naive UTC datetime). The same arguments always give the same rows."""
    date = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
    rng = random.Random(date.toordinal())
    rows = []
    for i in range(count):
        subject, body = TEMPLATES[rng.randrange(len(TEMPLATES))]
        seats = rng.randint(4, 80)
        text = body.format(plan=rng.choice(["Pro", "Team"]), day=date.isoformat(), seats=seats, half=seats // 2,
                           minor=rng.randint(0, 9), browser=rng.choice(["Firefox", "Safari", "Chrome"]))
        created = dt.datetime.combine(date, dt.time()) + dt.timedelta(seconds=(i * 86_400) // count + rng.randint(0, 59))
        rows.append({
            "ticket_id": f"T-{date:%Y%m%d}-{i + 1:05d}",
            "subject": subject,
            "body": text,
            "customer_tier": TIERS[rng.randrange(len(TIERS))],
            "created_at": created,
        })
    return rows
