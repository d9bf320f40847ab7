"""Conditional writes of the run ledger: the one place that makes two attempts of
a run that overlap (a "dead" worker that is not, a re-execution started twice)
unable to overwrite each other's decisions.

Every write names the version it read: a write is *created only if absent* or
*replaced only if unchanged since read*; a lost race raises
:class:`LedgerWriteConflict` and the caller reads again and decides anew.

What each store offers (``StagingLocation.url``):

=================  ==========================================  ==========================
store              create if absent / replace if unchanged     guarantee
=================  ==========================================  ==========================
``s3://``          ``If-None-Match: *`` / ``If-Match: <ETag>``  across hosts (AWS S3,
                   (S3 conditional writes; MinIO, moto, R2)     and stores that honour them)
``file://``, path  exclusive create / ``flock`` on a lock file  across processes of one
                   + compare, then atomic rename               host (or a shared POSIX fs
                                                                with working ``flock``)
anything else      refused (:class:`~sutro_providers.errors.     none: opt in with
                   SutroStagingError`), unless                  ``unconditional_ledger_writes``
                   ``StagingLocation(unconditional_ledger_      (overlapping attempts may
                   writes=True)``                                both pay)
=================  ==========================================  ==========================

A write whose reply was lost and that the storage client retried meets its own
earlier write as a "conflict"; that is recognised (the stored bytes are the bytes
being written) and counts as success.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from fsspec.asyn import sync

from sutro_providers.errors import SutroError, SutroStagingError

CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})


class LedgerWriteConflict(SutroError):
    """The ledger changed since it was read (or exists though it was about to be
    created): another attempt of the same run wrote it. Read it again and decide anew."""


class LedgerStore(Protocol):
    """Reads and conditionally writes one small object. ``tag`` is the version read."""

    def read(self) -> tuple[bytes, str | None] | None: ...

    def create(self, data: bytes) -> str | None: ...

    def replace(self, data: bytes, tag: str | None) -> str | None: ...


def _fs_protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def open_ledger_store(fs: Any, path: str, *, unconditional: bool = False) -> LedgerStore:
    """The conditional store for ``fs`` (see the module table)."""
    protocols = _fs_protocols(fs)
    if protocols & {"s3", "s3a"}:
        return S3LedgerStore(fs, path)
    if protocols & {"file", "local"}:
        return LocalLedgerStore(Path(fs._strip_protocol(path)))
    if unconditional:
        return UnconditionalLedgerStore(fs, path)
    raise SutroStagingError(
        f"the staging store {sorted(protocols)} offers no conditional writes that sutro-providers knows, so two "
        "overlapping attempts of a run could both submit (and pay); use s3:// or a local path, or accept the risk "
        "with StagingLocation(unconditional_ledger_writes=True)"
    )


def _is_conflict(exc: BaseException) -> bool:
    for err in (exc, exc.__cause__):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            error = response.get("Error") or {}
            status = str((response.get("ResponseMetadata") or {}).get("HTTPStatusCode", ""))
            if error.get("Code") in CONFLICT_CODES or status == "412":
                return True
    return isinstance(exc, FileExistsError)


class S3LedgerStore:
    """S3 conditional writes through s3fs (its session, retries and credentials)."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.path = path
        self.bucket, self.key, _ = fs.split_path(path)

    def read(self) -> tuple[bytes, str | None] | None:
        async def get() -> tuple[bytes, str]:
            reply = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self.key)
            async with reply["Body"] as body:
                return await body.read(), reply["ETag"]

        try:
            return sync(self.fs.loop, get)
        except FileNotFoundError:
            return None

    def _put(self, data: bytes, **condition: str) -> str | None:
        try:
            reply = self.fs.pipe_file(self.path, data, **condition)
        except OSError as exc:
            if not _is_conflict(exc):
                raise
            current = self.read()
            if current is not None and current[0] == data:  # our own write, retried after a lost reply
                return current[1]
            raise LedgerWriteConflict(f"the run ledger {self.path} was written by another attempt") from None
        return reply.get("ETag") if isinstance(reply, dict) else None

    def create(self, data: bytes) -> str | None:
        return self._put(data, IfNoneMatch="*")

    def replace(self, data: bytes, tag: str | None) -> str | None:
        if tag is None:
            return self.create(data)
        return self._put(data, IfMatch=tag)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalLedgerStore:
    """Local files: the compare and the rename happen under an exclusive ``flock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def read(self) -> tuple[bytes, str | None] | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return data, _digest(data)

    def _write(self, data: bytes, expected: str | None) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = self.read()
                current_tag = current[1] if current is not None else None
                if current_tag != expected:
                    if current is not None and current[0] == data:
                        return current_tag or _digest(data)
                    raise LedgerWriteConflict(f"the run ledger {self.path} was written by another attempt")
                handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".ledger-")
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return _digest(data)

    def create(self, data: bytes) -> str:
        return self._write(data, None)

    def replace(self, data: bytes, tag: str | None) -> str:
        return self._write(data, tag)


class UnconditionalLedgerStore:
    """Plain overwrites (explicit opt-in only): the last writer wins."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.path = path

    def read(self) -> tuple[bytes, str | None] | None:
        try:
            return self.fs.cat_file(self.path), None
        except FileNotFoundError:
            return None

    def create(self, data: bytes) -> None:
        self.fs.pipe_file(self.path, data)

    def replace(self, data: bytes, tag: str | None) -> None:
        self.fs.pipe_file(self.path, data)
