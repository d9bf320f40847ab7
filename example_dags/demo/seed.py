"""Seed the demo's SQLite warehouse (the Airflow DAG's source)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from sutro_providers.local.sample_data import support_tickets


def seed_sqlite(path: Path, day: dt.date, count: int) -> int:
    """(Re)create ``support_tickets`` with ``count`` tickets on ``day``, plus a few on
    the days around it that the DAG's data interval must leave out."""
    path.unlink(missing_ok=True)
    rows = [*support_tickets(day - dt.timedelta(days=1), 5), *support_tickets(day, count),
            *support_tickets(day + dt.timedelta(days=1), 5)]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE support_tickets (id INTEGER PRIMARY KEY, ticket_id TEXT, subject TEXT, "
                   "body TEXT, customer_tier TEXT, created_at TEXT)")
        db.executemany(
            "INSERT INTO support_tickets (ticket_id, subject, body, customer_tier, created_at) VALUES (?, ?, ?, ?, ?)",
            [(r["ticket_id"], r["subject"], r["body"], r["customer_tier"], r["created_at"].strftime("%Y-%m-%d %H:%M:%S"))
             for r in rows],
        )
    return count
