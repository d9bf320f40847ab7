"""Staging: input rows → Parquet on object storage → a pre-signed URL for Sutro.

Layout under the staging URL, deterministic from the run identity so a retry
overwrites instead of piling up::

    <staging>/runs/<run key>/ledger.json            the ledger (kept)
    <staging>/runs/<run key>/source.parquet         every input column + row id + skip reason
    <staging>/runs/<run key>/input-s0000.parquet    what shard 0 submits: the Function's
                                                    columns + row id (pre-signed for Sutro)

Only the ``input-*`` files are ever signed; columns the Function does not use stay
in ``source.parquet``, which is never shared. Logs name the bucket and key, never
the signed URL. Rows stream through in batches: memory is bounded by the batch
size, not the table.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sutro_providers.errors import SutroStagingError
from sutro_providers.identity import RunIdentity
from sutro_providers.inputs import SourceReader
from sutro_providers.options import ROW_ID, SKIP_REASON, StagingLocation
from sutro_providers.validation import InputValidator

log = logging.getLogger("sutro_providers.staging")
ROW_GROUP = 128 * 1024


@dataclass
class StagedRun:
    """What staging produced: counts, shard sizes and the input fingerprint."""

    rows_in: int
    rows_submitted: int
    rows_skipped: int
    shard_rows: list[int]
    fingerprint: str


class StagingArea:
    """One staging location (any fsspec URL that can be pre-signed, e.g. ``s3://``)."""

    def __init__(self, location: StagingLocation) -> None:
        self.location = location
        self.fs, root = fsspec.core.url_to_fs(location.url, **location.storage_options)
        self.root = root.rstrip("/")
        self.protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]

    def run_prefix(self, identity: RunIdentity) -> str:
        return f"{self.root}/runs/{identity.key[:32]}"

    def ledger_path(self, identity: RunIdentity) -> str:
        return f"{self.run_prefix(identity)}/ledger.json"

    def source_path(self, identity: RunIdentity) -> str:
        return f"{self.run_prefix(identity)}/source.parquet"

    def shard_path(self, identity: RunIdentity, shard: int) -> str:
        return f"{self.run_prefix(identity)}/input-s{shard:04d}.parquet"

    def display(self, path: str) -> str:
        """``s3://bucket/key``: safe to log and to put in manifests."""
        return f"{self.protocol}://{path}"

    def check_writable(self) -> None:
        """Fail early, before anything is staged or submitted, when the bucket is
        missing or not writable."""
        probe = f"{self.root}/.sutro-providers-write-check"
        try:
            self.fs.pipe_file(probe, b"ok")
        except Exception as exc:  # s3fs raises many kinds here
            raise SutroStagingError(
                f"cannot write to staging location {self.display(self.root)}: {type(exc).__name__}: {exc}"
            ) from None

    def sign(self, path: str) -> str:
        """A pre-signed GET URL for one staged file. A bearer credential: never log it."""
        try:
            return str(self.fs.sign(path, expiration=self.location.signed_url_expiry))
        except NotImplementedError:
            raise SutroStagingError(
                f"staging location {self.display(self.root)} cannot be pre-signed; use s3:// (or another "
                "store whose fsspec filesystem implements sign())"
            ) from None

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def remove(self, paths: list[str]) -> None:
        for path in paths:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass

    def shard_paths(self, identity: RunIdentity) -> list[str]:
        return sorted(self.fs.glob(f"{self.run_prefix(identity)}/input-s*.parquet"))

    def read_source(self, identity: RunIdentity, batch_size: int) -> Iterator[pa.RecordBatch]:
        with self.fs.open(self.source_path(identity), "rb") as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=batch_size)

    def stage(
        self,
        identity: RunIdentity,
        reader: SourceReader,
        validator: InputValidator,
        *,
        shard_size: int,
        write: bool = True,
    ) -> StagedRun:
        """Validate every row and (when ``write``) stage it. With ``write=False`` only
        validates and fingerprints (a retry checking that its input is unchanged).

        Raises :class:`~sutro_providers.errors.SutroInputError` on invalid input
        before any job exists; partial files of this run are then removed.
        """
        writer = _StageWriter(self, identity, validator, reader.schema, shard_size) if write else None
        fingerprint = hashlib.blake2b(digest_size=20)
        fingerprint.update(str(validator.submit_columns(reader.schema)).encode())
        rows_in = skipped = 0
        try:
            validator.check_schema(reader.schema)
            for batch in reader.batches():
                reasons = validator.check_batch(batch, rows_in)
                submit = validator.cast_for_submit(batch)
                ids = pa.array(np.arange(rows_in, rows_in + batch.num_rows, dtype=np.int64))
                if reasons is None:
                    reasons = pa.nulls(batch.num_rows, pa.string())
                keep = reasons.is_null()
                _hash_batch(fingerprint, submit.filter(keep))
                skipped += batch.num_rows - (pc.sum(keep.cast(pa.int64())).as_py() or 0)
                if writer is not None:
                    writer.write(batch, ids, reasons, submit, keep)
                rows_in += batch.num_rows
            validator.finish()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        shard_rows = writer.close() if writer is not None else []
        if writer is not None:
            log.info(
                "staged %d rows (%d to submit, %d skipped) in %d shard(s) under %s",
                rows_in, rows_in - skipped, skipped, len(shard_rows), self.display(self.run_prefix(identity)),
            )
        return StagedRun(rows_in, rows_in - skipped, skipped, shard_rows, fingerprint.hexdigest())


def _hash_batch(hasher: Any, batch: pa.RecordBatch) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as stream:
        stream.write_batch(batch)
    hasher.update(sink.getvalue())


@dataclass
class _StageWriter:
    """Streams the source snapshot and the shard files, rolling shards over at
    ``shard_size`` submitted rows."""

    area: StagingArea
    identity: RunIdentity
    validator: InputValidator
    source_schema: pa.Schema
    shard_size: int
    shard_rows: list[int] = field(default_factory=list)
    _source: Any = None
    _shard: Any = None
    _handles: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.area.remove(self.area.shard_paths(self.identity))  # an earlier attempt's leftovers
        schema = self.source_schema.append(pa.field(ROW_ID, pa.int64())).append(pa.field(SKIP_REASON, pa.string()))
        self._source = self._open(self.area.source_path(self.identity), schema)

    def _open(self, path: str, schema: pa.Schema) -> pq.ParquetWriter:
        try:
            handle = self.area.fs.open(path, "wb")
        except Exception as exc:
            raise SutroStagingError(f"cannot stage to {self.area.display(path)}: {type(exc).__name__}: {exc}") from None
        self._handles.append(handle)
        return pq.ParquetWriter(handle, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch, ids: pa.Array, reasons: pa.Array, submit: pa.RecordBatch, keep: pa.Array) -> None:
        columns = [*batch.columns, ids, reasons]
        self._source.write_batch(pa.RecordBatch.from_arrays(columns, schema=self._source.schema), row_group_size=ROW_GROUP)
        rows = submit.append_column(ROW_ID, ids).filter(keep)
        offset = 0
        while offset < rows.num_rows:
            if self._shard is None or self.shard_rows[-1] >= self.shard_size:
                self._roll(rows.schema)
            take = min(self.shard_size - self.shard_rows[-1], rows.num_rows - offset)
            self._shard.write_batch(rows.slice(offset, take), row_group_size=ROW_GROUP)
            self.shard_rows[-1] += take
            offset += take

    def _roll(self, schema: pa.Schema) -> None:
        if self._shard is not None:
            self._shard.close()
        self.shard_rows.append(0)
        self._shard = self._open(self.area.shard_path(self.identity, len(self.shard_rows) - 1), schema)

    def close(self) -> list[int]:
        for writer in (self._source, self._shard):
            if writer is not None:
                writer.close()
        for handle in self._handles:
            handle.close()
        return self.shard_rows

    def abort(self) -> None:
        for writer in (self._source, self._shard):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()  # before the handles, or its __del__ writes to a closed file
        for handle in self._handles:
            try:
                if hasattr(handle, "discard"):
                    handle.discard()  # abort an unfinished multipart upload instead of committing it
                    handle.closed = True
                else:
                    handle.close()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        self.area.remove([self.area.source_path(self.identity), *self.area.shard_paths(self.identity)])
