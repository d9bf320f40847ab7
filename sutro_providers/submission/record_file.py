"""One small JSON record of a run (a pydantic model) on the staging store, read and
written through the store's conditional writes
(:mod:`sutro_providers.submission.ledger_store`).

What the Sutro run ledger (:class:`~sutro_providers.submission.ledger.Ledger`) and
the Opper run record (:class:`~sutro_providers.opper_rows.run_record.OpperRunFile`)
share: the file remembers the version it last read or wrote; :meth:`RecordFile.save`
creates the object only if absent (first write) and otherwise replaces it only if
unchanged since then, else raises
:class:`~sutro_providers.submission.ledger_store.LedgerWriteConflict` (another attempt
of the same run wrote in between). :meth:`RecordFile.update` re-reads and re-applies
a change until it lands. Each write replaces the whole (small) object atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from sutro_providers.errors import SutroConcurrentAttemptError, SutroError
from sutro_providers.staging.store import store_errors
from sutro_providers.submission.ledger_store import LedgerStore, LedgerWriteConflict, open_ledger_store

CONFLICT_RETRIES = 20  # writes lost to other attempts before giving up

R = TypeVar("R", bound=BaseModel)


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


class RecordReplaced(SutroError):
    """The file holds another attempt's record now (another staging of the run):
    start over from it."""


class RecordFile(Generic[R]):
    """Reads and conditionally writes one record of type ``model`` at ``path``.
    Records carry ``stage_id`` and ``updated_at`` (set on every write)."""

    what = "run record"

    def __init__(self, fs: Any, path: str, model: type[R], *, unconditional: bool = False) -> None:
        self.fs = fs
        self.path = path
        self.model = model
        self.store: LedgerStore = open_ledger_store(fs, path, unconditional=unconditional)
        self._exists = False
        self._tag: str | None = None

    def load(self) -> R | None:
        """The record, or ``None`` when there is none. Raises :class:`SutroStagingError`
        when the store cannot be read (endpoint down, access denied, a path through a file)."""
        with store_errors(f"cannot read the {self.what} {self.path}"):
            got = self.store.read()  # one GET (body and version together); None when absent
        if got is None:
            self._exists, self._tag = False, None
            return None
        self._exists, self._tag = True, got[1]
        return self.model.model_validate(json.loads(got[0]))

    def save(self, record: R) -> None:
        """Write ``record`` if nobody else wrote since this file read or wrote it
        (else :class:`~sutro_providers.submission.ledger_store.LedgerWriteConflict`);
        raises :class:`SutroStagingError` when the store refuses or cannot be reached."""
        record.updated_at = utc_now()  # type: ignore[attr-defined]
        data = record.model_dump_json(indent=1).encode()
        with store_errors(f"cannot write the {self.what} {self.path}"):
            self._tag = self.store.replace(data, self._tag) if self._exists else self.store.create(data)
        self._exists = True

    def update(self, record: R, change: Callable[[R], None]) -> None:
        """Apply ``change`` to ``record`` and write it; when another attempt wrote in
        between, read the file again into ``record`` and apply ``change`` anew (it
        sees the fresh state and may raise to refuse it). Raises
        :class:`RecordReplaced` when the file now holds another staging of the run."""
        for _ in range(CONFLICT_RETRIES):
            change(record)
            try:
                self.save(record)
                return
            except LedgerWriteConflict:
                self.refresh(record)
        raise SutroConcurrentAttemptError(f"gave up writing the {self.what} {self.path} after {CONFLICT_RETRIES} conflicts")

    def same_staging(self, fresh: R, record: R) -> bool:
        """Whether ``fresh`` (just read) is the staging of the run ``record`` describes."""
        return bool(getattr(fresh, "stage_id", None) == getattr(record, "stage_id", None))

    def refresh(self, record: R) -> None:
        """Read the file again into ``record`` (same staging of the run only)."""
        version = self._exists, self._tag
        fresh = self.load()
        if fresh is None or not self.same_staging(fresh, record):
            # ``record`` is not what the store holds: every further write of it must conflict too
            self._exists, self._tag = version
            raise RecordReplaced(f"the {self.what} {self.path} now holds another attempt's staging of the run")
        for name in type(record).model_fields:
            setattr(record, name, getattr(fresh, name))
