"""Where a SQL table lives and how to reach it: one small description shared by
streaming reads (:mod:`sutro_providers.inputs.sql`) and loads (:mod:`sutro_providers.landing`).

A :class:`Database` names a ``dialect`` and gives either a ``uri`` (what ADBC, psycopg,
sqlite3 or DuckDB open directly: the fast paths) or a ``connect`` factory of any
DB-API connection (the generic path), or both. The orchestrator adapters build it
from their connection objects (Airflow: :func:`airflow_provider.sql.database`).

The URI may hold a password: it is never part of ``repr``, logs or error messages
(:func:`scrubbed` removes it from driver errors before they are wrapped).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")
DIALECTS = ("postgresql", "sqlite", "duckdb", "generic")


@dataclass(frozen=True)
class Database:
    """A database to read from or load into.

    :param dialect: ``postgresql``, ``sqlite``, ``duckdb`` or ``generic`` (any
        DB-API driver; only ``connect`` is used).
    :param uri: PostgreSQL: a libpq URI (``postgresql://user:pw@host:5432/db``);
        SQLite and DuckDB: the database file path.
    :param connect: returns a new DB-API connection (used for ``generic``, and for
        queries with parameters, whose placeholders follow that driver).
    :param placeholder: the DB-API driver's parameter marker (``%s``, ``?``).
    :param adbc_driver: an ADBC driver module (``adbc_driver_snowflake``...) that
        reads ``uri`` for the ``generic`` dialect.
    """

    dialect: str
    uri: str | None = field(default=None, repr=False)
    connect: Callable[[], Any] | None = field(default=None, repr=False)
    placeholder: str = "%s"
    adbc_driver: str | None = None

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, not {self.dialect!r}")
        if self.uri is None and self.connect is None:
            raise ValueError("a Database needs a uri or a connect factory")

    def dbapi(self) -> Any:
        """A new DB-API connection: ``connect()`` when given, else the dialect's own driver."""
        if self.connect is not None:
            return self.connect()
        assert self.uri is not None
        if self.dialect == "sqlite":
            import sqlite3

            return sqlite3.connect(self.uri, isolation_level=None)
        if self.dialect == "duckdb":
            import duckdb

            return duckdb.connect(self.uri)
        if self.dialect == "postgresql":
            import psycopg

            return psycopg.connect(self.uri)
        raise ValueError("a generic Database needs a connect factory")

    def secrets(self) -> list[str]:
        """What must never appear in a message: the URI and its password."""
        out = [self.uri or ""]
        if self.uri and "://" in self.uri:
            out.append(urlsplit(self.uri).password or "")
        return [s for s in out if s]

    def scrubbed(self, exc: BaseException) -> str:
        """``exc`` as text without the URI or password."""
        from sutro_providers.errors import redact

        return redact(f"{type(exc).__name__}: {exc}", self.secrets())


def check_identifier(name: str) -> str:
    """``name`` if it is a plain (optionally schema-qualified) SQL identifier; raises otherwise.
    Table and column names are put into SQL text, so nothing else is accepted."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def quote(name: str) -> str:
    """A column name as a double-quoted identifier (any name the enriched table can have)."""
    return '"' + name.replace('"', '""') + '"'


__all__ = ["DIALECTS", "Database", "check_identifier", "quote"]
