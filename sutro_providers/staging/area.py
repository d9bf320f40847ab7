"""Staging: input rows → Parquet on object storage → a pre-signed URL for Sutro.

Layout under the staging URL, deterministic from the run identity so a retry
overwrites instead of piling up::

    <staging>/runs/<run key>/ledger.json            the ledger (kept)
    <staging>/runs/<run key>/source.parquet         every input column + row id + skip reason
    <staging>/runs/<run key>/input-s0000.parquet    what shard 0 submits: the Function's
                                                    columns + row id (pre-signed for Sutro)
    <staging>/runs/<run key>/reused-map.parquet     incremental runs: where the cached results of
                                                    rows not submitted are (sutro_providers.incremental)

Only the ``input-*`` files are ever signed; columns the Function does not use stay
in ``source.parquet``, which is never shared. Logs name the bucket and key, never
the signed URL. Rows stream through in batches: memory is bounded by the batch
size, not the table.

Besides the caller's thread (reading, validating, casting), staging uses three
worker threads: one encodes ``source.parquet``, one the shard files, one hashes the
input fingerprint (Parquet encoding, compression and hashlib release the GIL, so they
overlap). At most ``QUEUE_DEPTH`` batches wait per thread, so memory stays bounded by
the batch size. An error on any thread stops staging; its partial files are removed
just as when the input is invalid.

Both files are written by :class:`~sutro_providers.parquet_io.ParquetSink` in the
:data:`~sutro_providers.parquet_io.STAGED` format (zstd, no dictionary encoding except
columns that already are Arrow dictionaries, statistics only for the row id, 128Ki-row
row groups) and uploaded in parts of ``parquet_io.UPLOAD_BLOCK`` (16 MiB: an object
store's file buffers a whole block and copies it to upload it; zstd makes a 10M-row
snapshot ~30 MiB). Any Parquet reader reads them.

The fingerprint (sha256 of the submitted columns, batch by batch, as Arrow IPC
messages) is versioned: :data:`FINGERPRINT_VERSION` is stored in the ledger, and a
retry checks its input with the version the earlier attempt recorded (ledgers
written before versioning are version 1: blake2b over IPC streams), so an upgrade
between two attempts of a run is not mistaken for an input change.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sutro_providers.columns import ROW_ID, SKIP_REASON
from sutro_providers.errors import SutroLedgerConflictError, SutroStagingError
from sutro_providers.identity import RunIdentity
from sutro_providers.inputs.sources import SourceReader
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.options import StagingLocation
from sutro_providers.parquet_io import STAGED, ParquetSink, open_parquet, open_upload, parquet_batches
from sutro_providers.prefetch import Lane
from sutro_providers.staging.store import store_errors

log = logging.getLogger("sutro_providers.staging.area")
QUEUE_DEPTH = 2  # the depth of each Lane
REUSED_MARK = "sutro:reused"
"""The skip reason staging gives, in ``source.parquet``, to a row whose result comes
from the results cache (``stage(reused=...)``): not submitted, and never a skip reason
of the output (the incremental collector puts the cached result there)."""
FINGERPRINT_VERSION = 2
"""1: blake2b-160 over one Arrow IPC stream per batch; 2: sha256 over each batch's
IPC message (``RecordBatch.serialize``), about 4x cheaper."""


def _wrapped_batches(batches: Generator[pa.RecordBatch, None, None], what: str) -> Generator[pa.RecordBatch, None, None]:
    with contextlib.closing(batches), store_errors(what):
        yield from batches


@dataclass
class StagedRun:
    """What staging produced: counts, shard sizes and the input fingerprint."""

    rows_in: int
    rows_submitted: int
    rows_skipped: int
    shard_rows: list[int]
    fingerprint: str
    fingerprint_version: int = FINGERPRINT_VERSION
    stage_id: str | None = None
    rows_reused: int = 0
    cost_avoided_usd: float | None = None


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

    def files_prefix(self, identity: RunIdentity, stage_id: str | None = None) -> str:
        """Where one staging of the run keeps its files: each attempt that stages
        writes a folder of its own (``stage_id``, recorded in the ledger), so two
        overlapping attempts never overwrite files a job may be reading."""
        prefix = self.run_prefix(identity)
        return f"{prefix}/{stage_id}" if stage_id else prefix

    def source_path(self, identity: RunIdentity, stage_id: str | None = None) -> str:
        return f"{self.files_prefix(identity, stage_id)}/source.parquet"

    def output_path(self, identity: RunIdentity) -> str:
        """Where the enriched table is written when only a destination table asks for
        it (the loaders read it batch by batch; a retry after the load loads it again)."""
        return f"{self.run_prefix(identity)}/enriched.parquet"

    def shard_path(self, identity: RunIdentity, shard: int, stage_id: str | None = None) -> str:
        return f"{self.files_prefix(identity, stage_id)}/input-s{shard:04d}.parquet"

    def reused_path(self, identity: RunIdentity, stage_id: str | None = None) -> str:
        """An incremental run's map of reused rows (where their cached results are)."""
        return f"{self.files_prefix(identity, stage_id)}/reused-map.parquet"

    def reused_paths(self, identity: RunIdentity, stage_id: str | None = None) -> list[str]:
        prefix = self.files_prefix(identity, stage_id)
        with store_errors(f"cannot list the reused results under {self.display(prefix)}"):
            return sorted(self.fs.glob(f"{prefix}/reused-*.parquet"))

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
        with store_errors(f"cannot read staging location {self.display(path)}"):
            return bool(self.fs.exists(path))

    def remove(self, paths: list[str]) -> None:
        for path in paths:
            with store_errors(f"cannot remove {self.display(path)}"):
                try:
                    self.fs.rm_file(path)
                except FileNotFoundError:
                    pass

    def shard_paths(self, identity: RunIdentity, stage_id: str | None = None) -> list[str]:
        prefix = self.files_prefix(identity, stage_id)
        with store_errors(f"cannot list the staged shards under {self.display(prefix)}"):
            return sorted(self.fs.glob(f"{prefix}/input-s*.parquet"))

    def read_source(self, identity: RunIdentity, batch_size: int, columns: list[str] | None = None, *,
                    stage_id: str | None = None) -> Generator[pa.RecordBatch, None, None]:
        """The source snapshot's batches (only ``columns`` when given), row group by row
        group (memory bounded by one row group; batches do not span row groups). Close
        the generator (or exhaust it) to close the file."""
        path = self.source_path(identity, stage_id)
        return _wrapped_batches(parquet_batches(self.fs, path, batch_size, columns),
                                f"cannot read the staged snapshot {self.display(path)}")

    def source_schema(self, identity: RunIdentity, stage_id: str | None = None) -> pa.Schema:
        """The Arrow schema of the source snapshot (its footer only)."""
        path = self.source_path(identity, stage_id)
        with store_errors(f"cannot read the staged snapshot {self.display(path)}"), open_parquet(self.fs, path) as f:
            return pq.ParquetFile(f).schema_arrow

    def stage(
        self,
        identity: RunIdentity,
        reader: SourceReader,
        validator: InputValidator,
        *,
        shard_size: int,
        write: bool = True,
        fingerprint_version: int = FINGERPRINT_VERSION,
        stage_id: str | None = None,
        reused: Callable[[int, int], np.ndarray | None] | None = None,
    ) -> StagedRun:
        """Validate every row and (when ``write``) stage it. With ``write=False`` only
        validates and fingerprints (a retry checking that its input is unchanged; pass
        the ``fingerprint_version`` the earlier attempt recorded).

        ``reused(first_row, rows)``: which valid rows of a batch have a cached result
        (an incremental run): they go to ``source.parquet`` marked :data:`REUSED_MARK`
        and to no shard. The fingerprint covers every valid row either way.

        Raises :class:`~sutro_providers.errors.SutroInputError` on invalid input
        before any job exists; partial files of this run are then removed.
        """
        fingerprint = _Fingerprint(fingerprint_version, validator.submit_columns(reader.schema))
        writer: _StageWriter | None = None
        rows_in = skipped = reused_rows = 0
        try:
            if write:
                writer = _StageWriter(self, identity, reader.schema, shard_size, stage_id)
            validator.check_schema(reader.schema)
            for batch in reader.batches():
                reasons = validator.check_batch(batch, rows_in)
                submit = validator.cast_for_submit(batch)
                ids = pa.array(np.arange(rows_in, rows_in + batch.num_rows, dtype=np.int64))
                if reasons is None:
                    reasons = pa.nulls(batch.num_rows, pa.string())
                    keep = None
                else:
                    keep = reasons.is_null()
                    skipped += batch.num_rows - (pc.sum(keep.cast(pa.int64())).as_py() or 0)
                fingerprint.add(submit, keep)
                hits = reused(rows_in, batch.num_rows) if reused is not None else None
                if hits is not None:
                    hit = pa.array(hits) if keep is None else pc.and_(pa.array(hits), keep)
                    reused_rows += pc.sum(hit.cast(pa.int64())).as_py() or 0
                    reasons = pc.if_else(hit, pa.scalar(REUSED_MARK), reasons)
                    keep = reasons.is_null()
                if writer is not None:
                    writer.write(batch, ids, reasons, submit, keep)
                rows_in += batch.num_rows
            validator.finish()
            digest = fingerprint.digest()
            shard_rows = writer.close() if writer is not None else []
        except BaseException:
            fingerprint.stop()
            if writer is not None:
                writer.abort()
            raise
        submitted = rows_in - skipped - reused_rows
        if writer is not None:
            log.info(
                "staged %d rows (%d to submit, %d skipped, %d reused) in %d shard(s) under %s",
                rows_in, submitted, skipped, reused_rows, len(shard_rows), self.display(self.files_prefix(identity, stage_id)),
            )
        return StagedRun(rows_in, submitted, skipped, shard_rows, digest, fingerprint_version, stage_id, reused_rows)


class _Fingerprint:
    """The input fingerprint, hashed on its own thread (see :data:`FINGERPRINT_VERSION`)."""

    def __init__(self, version: int, columns: list[str]) -> None:
        if version == 1:
            self._hasher: Any = hashlib.blake2b(digest_size=20)
        elif version == 2:
            self._hasher = hashlib.sha256()
        else:
            raise SutroLedgerConflictError(
                f"the run ledger records input fingerprint version {version}, which this version of "
                f"sutro-providers does not know (it writes version {FINGERPRINT_VERSION}); upgrade "
                "sutro-providers to continue this run"
            )
        self.version = version
        self._hasher.update(str(columns).encode())
        self._lane = Lane("staging-fingerprint", QUEUE_DEPTH)

    def add(self, submit: pa.RecordBatch, keep: pa.Array | None) -> None:
        self._lane.submit(self._update, submit, keep)

    def _update(self, submit: pa.RecordBatch, keep: pa.Array | None) -> None:
        rows = submit if keep is None else submit.filter(keep)
        if self.version == 1:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, rows.schema) as stream:
                stream.write_batch(rows)
            self._hasher.update(sink.getvalue())
        else:
            self._hasher.update(rows.serialize())

    def digest(self) -> str:
        self._lane.drain()
        return str(self._hasher.hexdigest())

    def stop(self) -> None:
        self._lane.stop()


class _StageWriter:
    """Streams the source snapshot and the shard files, each on its own thread,
    rolling shards over at ``shard_size`` submitted rows."""

    def __init__(self, area: StagingArea, identity: RunIdentity, source_schema: pa.Schema, shard_size: int,
                 stage_id: str | None = None) -> None:
        self.area = area
        self.identity = identity
        self.stage_id = stage_id
        self.shard_size = shard_size
        self.shard_rows: list[int] = []
        self._source: ParquetSink | None = None
        self._shard: ParquetSink | None = None
        self._sinks: list[ParquetSink] = []
        self._source_lane = Lane("staging-source", QUEUE_DEPTH)
        self._shard_lane = Lane("staging-shards", QUEUE_DEPTH)
        schema = source_schema.append(pa.field(ROW_ID, pa.int64())).append(pa.field(SKIP_REASON, pa.string()))
        self._source_lane.submit(self._open_source, schema)
        self._shard_lane.submit(self._clear_shards)

    def _open_source(self, schema: pa.Schema) -> None:
        self._source = self._open(self.area.source_path(self.identity, self.stage_id), schema)

    def _clear_shards(self) -> None:
        self.area.remove(self.area.shard_paths(self.identity, self.stage_id))  # an earlier attempt's leftovers

    def _open(self, path: str, schema: pa.Schema) -> ParquetSink:
        try:
            handle = open_upload(self.area.fs, path)
        except Exception as exc:
            raise SutroStagingError(f"cannot stage to {self.area.display(path)}: {type(exc).__name__}: {exc}") from None
        sink = ParquetSink(handle, schema, STAGED)
        self._sinks.append(sink)
        return sink

    def write(self, batch: pa.RecordBatch, ids: pa.Array, reasons: pa.Array, submit: pa.RecordBatch,
              keep: pa.Array | None) -> None:
        """Queue one batch for both files (``keep``: the rows to submit, ``None`` for all)."""
        self._source_lane.submit(self._write_source, [*batch.columns, ids, reasons])
        self._shard_lane.submit(self._write_shard, submit.append_column(ROW_ID, ids), keep)

    def _uploading(self) -> contextlib.AbstractContextManager[None]:
        return store_errors(f"cannot stage to {self.area.display(self.area.run_prefix(self.identity))}")

    def _write_source(self, columns: list[pa.Array]) -> None:
        assert self._source is not None
        with self._uploading():  # a full upload block is sent while writing
            self._source.write(pa.RecordBatch.from_arrays(columns, schema=self._source.schema))

    def _write_shard(self, rows: pa.RecordBatch, keep: pa.Array | None) -> None:
        if keep is not None:
            rows = rows.filter(keep)
        offset = 0
        while offset < rows.num_rows:
            if self._shard is None or self.shard_rows[-1] >= self.shard_size:
                self._close_shard()
                self.shard_rows.append(0)
                self._shard = self._open(self.area.shard_path(self.identity, len(self.shard_rows) - 1, self.stage_id), rows.schema)
            take = min(self.shard_size - self.shard_rows[-1], rows.num_rows - offset)
            with self._uploading():
                self._shard.write(rows.slice(offset, take))
            self.shard_rows[-1] += take
            offset += take

    def _close_source(self) -> None:
        if self._source is not None:
            with self._uploading():
                self._source.close()  # uploads what is still buffered

    def _close_shard(self) -> None:
        if self._shard is not None:
            with self._uploading():
                self._shard.close()

    def close(self) -> list[int]:
        """Finish both files (their last uploads run at the same time); the shard sizes."""
        self._source_lane.submit(self._close_source)
        self._shard_lane.submit(self._close_shard)
        self._source_lane.drain()
        self._shard_lane.drain()
        return self.shard_rows

    def abort(self) -> None:
        """Stop both threads and remove whatever this attempt staged (unfinished
        multipart uploads are aborted, not committed)."""
        self._source_lane.stop()
        self._shard_lane.stop()
        for sink in self._sinks:
            sink.abort()
        try:  # best effort: the error that stopped staging is the one to raise
            self.area.remove([self.area.source_path(self.identity, self.stage_id), *self.area.shard_paths(self.identity, self.stage_id)])
        except SutroStagingError as exc:
            log.warning("could not remove the partly staged files: %s", exc)
