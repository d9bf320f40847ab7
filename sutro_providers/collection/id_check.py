"""The exactly-once check: every submitted row id comes back in the results once,
and nothing else does. Runs over all shards before anything is joined or written.

:func:`check_run_ids` streams both sides (the snapshot's submitted ids and each
shard's result ids, a batch at a time, in ledger order): memory stays at one
batch, and the snapshot is read once for the whole run. On the first difference
the shard's full id arrays go to :func:`check_ids`, which names the missing,
duplicated and unknown ids (up to :data:`MAX_NAMED` each), or accepts the same
ids in another order.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sutro_providers.columns import ROW_ID, SKIP_REASON
from sutro_providers.errors import SutroResultsError
from sutro_providers.identity import RunIdentity
from sutro_providers.parquet_io import row_group_batches
from sutro_providers.staging.area import StagingArea
from sutro_providers.submission.ledger import ShardRecord

MAX_NAMED = 5
"""How many ids an error names (of each kind)."""


def _named(values: pa.Array) -> str:
    shown = ", ".join(str(v) for v in values.slice(0, MAX_NAMED).to_pylist())
    return shown + (f" and {len(values) - MAX_NAMED} more" if len(values) > MAX_NAMED else "")


def check_ids(expected: pa.Array | pa.ChunkedArray, got: pa.Array | pa.ChunkedArray, *, job_id: str) -> None:
    """Raise :class:`SutroResultsError` unless ``got`` holds every id of ``expected``
    exactly once and nothing else (up to five missing, duplicated and unknown ids are named)."""
    expected = pa.chunked_array([expected]) if isinstance(expected, pa.Array) else expected
    got = pa.chunked_array([got]) if isinstance(got, pa.Array) else got
    if got.type != expected.type:
        got = got.cast(expected.type)
    if len(expected) == len(got) and not got.null_count and expected.equals(got):
        return  # the usual case: same ids, same order
    problems = []
    if got.null_count:
        problems.append(f"{got.null_count} result rows have a null id")
        got = got.drop_null()
    counts = pa.table({"id": got}).group_by("id", use_threads=False).aggregate([("id", "count")])
    dupes = counts.filter(pc.greater(counts["id_count"], 1))["id"].combine_chunks()
    missing = expected.filter(pc.invert(pc.is_in(expected, value_set=counts["id"].combine_chunks())))
    extra = counts["id"].filter(pc.invert(pc.is_in(counts["id"], value_set=expected.combine_chunks())))
    if len(missing):
        problems.append(f"{len(missing)} submitted rows have no result (ids {_named(missing)})")
    if len(dupes):
        problems.append(f"{len(dupes)} ids come back more than once (ids {_named(dupes)})")
    if len(extra):
        problems.append(f"{len(extra)} result ids were never submitted (ids {_named(extra)})")
    if problems:
        raise SutroResultsError(
            f"the results of job {job_id} do not account for every submitted row exactly once: "
            + "; ".join(problems) + ". Nothing was written.")


def submitted_id_batches(
    area: StagingArea, identity: RunIdentity, batch_size: int, stage_id: str | None = None,
) -> Generator[pa.Array, None, None]:
    """The submitted row ids (those without a skip reason) of the source snapshot,
    in order, one Parquet batch at a time."""
    with closing(area.read_source(identity, batch_size, [ROW_ID, SKIP_REASON], stage_id=stage_id)) as batches:
        for batch in batches:
            yield batch.column(ROW_ID).filter(pc.is_null(batch.column(SKIP_REASON)))


class IdStream:
    """Hands out the ids of a stream of arrays in pieces of any length."""

    def __init__(self, arrays: Iterator[pa.Array]) -> None:
        self._arrays = arrays
        self._head = pa.array([], pa.int64())
        self.position = 0  # ids handed out (or skipped) so far

    def take(self, limit: int) -> pa.Array:
        """The next ids, at most ``limit`` of them; empty only at the end."""
        while not len(self._head):
            head = next(self._arrays, None)
            if head is None:
                return self._head
            self._head = head
        piece = self._head.slice(0, limit)
        self._head = self._head.slice(len(piece))
        self.position += len(piece)
        return piece

    def skip_to(self, position: int) -> None:
        """Drop ids until ``position`` ids have gone (or the stream ends)."""
        while self.position < position and len(self.take(position - self.position)):
            pass


def _stream_matches(want: IdStream, end: int, got: Iterator[pa.Array]) -> pa.Array | None:
    """``None`` when ``got`` yields exactly ``want``'s ids up to position ``end``, in
    order and without nulls; otherwise the piece of ``want`` that differed (empty when
    ``got`` has nulls or more ids). Consumes ``want`` up to the first difference, so
    the ids of ``want`` that matched are the ``want.position - len(piece)`` ones
    taken since the call."""
    nothing = pa.array([], pa.int64())
    for batch in got:
        if batch.null_count:
            return nothing
        offset = 0
        while offset < len(batch):
            piece = want.take(min(end - want.position, len(batch) - offset))
            if not len(piece) or not piece.equals(batch.slice(offset, len(piece))):
                return piece  # more results than submitted ids, or a different id
            offset += len(piece)
    return None if want.position == end else nothing


def _ids_until(want: IdStream, end: int) -> list[pa.Array]:
    """The ids of ``want`` from its position up to position ``end``, in memory."""
    pieces = []
    while want.position < end:
        piece = want.take(end - want.position)
        if not len(piece):
            break
        pieces.append(piece)
    return pieces


def check_run_ids(
    area: StagingArea, identity: RunIdentity, results: Iterable[tuple[ShardRecord, str, Path]], batch_size: int,
    stage_id: str | None = None,
) -> None:
    """Check every shard's results file (``results``: (shard, job id, local path) in
    ledger order; may be a lazy iterable that downloads each) with
    :func:`check_shard_ids` against one stream of the run's submitted ids: the
    snapshot is read once, one batch at a time."""
    with closing(submitted_id_batches(area, identity, batch_size, stage_id)) as submitted:
        want = IdStream(submitted)
        for shard, job_id, path in results:
            check_shard_ids(want, shard, path, job_id=job_id, batch_size=batch_size)


def check_shard_ids(want: IdStream, shard: ShardRecord, results: Path, *, job_id: str, batch_size: int) -> None:
    """Check that ``results`` (one shard's results file) holds each id the shard
    submitted exactly once, streaming both sides: memory stays at one batch.
    ``want`` streams every submitted id of the run; shards are taken in ledger
    order. On the first difference the shard's full id arrays go to
    :func:`check_ids`, which names the missing, duplicated and unknown ids, or
    accepts the same ids in another order. The expected ids are then the results'
    ids that matched, the piece that differed and the rest of the shard from
    ``want``: the snapshot is still read once for the whole run."""
    want.skip_to(shard.first_submitted_row)
    end = shard.first_submitted_row + shard.rows
    with pa.OSFile(str(results)) as handle:
        got = (b.column(0).cast(pa.int64()) for b in row_group_batches(handle, batch_size, [ROW_ID]))
        differing = _stream_matches(want, end, got)
    if differing is None:
        return
    matched = want.position - len(differing) - shard.first_submitted_row
    result_ids = pq.read_table(results, columns=[ROW_ID])[ROW_ID]
    head = result_ids.slice(0, matched).cast(pa.int64()).chunks
    expected = pa.chunked_array([*head, differing, *_ids_until(want, end)], pa.int64())
    check_ids(expected, result_ids, job_id=job_id)


__all__ = ["MAX_NAMED", "IdStream", "check_ids", "check_run_ids", "check_shard_ids", "submitted_id_batches"]
