"""Matching one key bucket against one segment: which of the wanted keys it holds, and where.

The wanted keys (one bucket of the run's keys, :class:`Wanted`) are sorted by
``k_hi`` once, in numpy (an Arrow ``sort_indices`` + ``take`` of the bucket cost 8x
more). Then, for each segment, newest first, the row groups whose ``k_hi`` range
holds one of them (footer statistics) are read in batches of consecutive
candidates (at most :data:`BATCH_GROUPS` row groups, ~12 MiB of keys), and each
batch is matched in one vectorised pass (:func:`match_keys`): a segment is sorted
by ``(k_hi, k_lo)``, so the keys of a batch of its row groups are sorted too. A
found row goes to the run's map of reused rows in segment row order (the order the
collect reads the results in); the keys not found are looked for in the next
(older) segment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sutro_providers.columns import ROW_ID
from sutro_providers.incremental.keys import HI, LO
from sutro_providers.incremental.reuse import MapWriter
from sutro_providers.incremental.segments import ROW_COST, SegmentReader

POSITION = ROW_ID
BATCH_GROUPS = 32
"""Candidate row groups of a segment's keys matched at once (32 x 16,384 rows: ~12 MiB)."""


def match_keys(entry_hi: np.ndarray, entry_lo: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """For each key ``(hi[i], lo[i])`` its row in the entries (sorted by ``(hi, lo)``), or -1."""
    left = np.searchsorted(entry_hi, hi, side="left")
    right = np.searchsorted(entry_hi, hi, side="right")
    out = np.full(len(hi), -1, dtype=np.int64)
    single = np.flatnonzero(right - left == 1)
    rows = left[single]
    same = entry_lo[rows] == lo[single]
    out[single[same]] = rows[same]
    for i in np.flatnonzero(right - left > 1):  # two entries share k_hi (about 1 in 2^64 / entries): by k_lo
        run = entry_lo[left[i]:right[i]]
        match = np.flatnonzero(run == lo[i])
        if len(match):
            out[i] = left[i] + match[0]
    return out


@dataclass
class Wanted:
    """Keys still looked for, sorted by ``hi``, with their input positions."""

    hi: np.ndarray
    lo: np.ndarray
    positions: np.ndarray

    @classmethod
    def of(cls, bucket: pa.Table) -> Wanted:
        """A bucket of the run's keys (columns row id, ``k_hi``, ``k_lo``; any order)."""
        hi = bucket[HI].to_numpy()
        order = np.argsort(hi)
        return cls(hi[order], bucket[LO].to_numpy()[order], bucket[POSITION].to_numpy()[order])

    def __len__(self) -> int:
        return len(self.hi)

    def without(self, found: np.ndarray) -> Wanted:
        keep = ~found
        return Wanted(self.hi[keep], self.lo[keep], self.positions[keep])


@dataclass
class Tally:
    """What the matches of a lookup add up to: the reused rows' recorded cost."""

    cost: float = 0.0
    rows_with_cost: int = 0


def _batches(groups: list[int]) -> list[list[int]]:
    return [groups[i:i + BATCH_GROUPS] for i in range(0, len(groups), BATCH_GROUPS)]


@dataclass
class KeyBatch:
    """The keys of a batch of consecutive candidate row groups of one segment."""

    groups: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    starts: np.ndarray  # where each group begins in hi/lo
    costs: np.ndarray | None  # the rows' recorded cost (NaN: unknown); None: no cost column

    @classmethod
    def read(cls, reader: SegmentReader, groups: list[int]) -> KeyBatch:
        tables = [reader.keys(group) for group in groups]
        costs = (np.concatenate([t[ROW_COST].to_numpy(zero_copy_only=False) for t in tables])
                 if ROW_COST in tables[0].column_names else None)
        return cls(np.asarray(groups, dtype=np.int64), np.concatenate([t[HI].to_numpy() for t in tables]),
                   np.concatenate([t[LO].to_numpy() for t in tables]),
                   np.cumsum([0] + [t.num_rows for t in tables[:-1]], dtype=np.int64), costs)


def key_batches(reader: SegmentReader, want: Wanted) -> Iterator[KeyBatch]:
    """The candidate row groups of ``reader`` for ``want``, batch by batch, in key order."""
    for groups in _batches(reader.candidates(want.hi)):
        yield KeyBatch.read(reader, groups)


class SegmentMatch:
    """``want``'s keys looked for in segment ``index`` (``reader``), one :class:`KeyBatch`
    at a time: found rows are marked in ``hits`` (by input position) and added to
    ``out``; :meth:`remaining` is what is left to look for in older segments."""

    def __init__(self, reader: SegmentReader, index: int, want: Wanted, hits: np.ndarray, out: MapWriter,
                 tally: Tally) -> None:
        self.reader, self.index, self.want, self.hits, self.out, self.tally = reader, index, want, hits, out, tally
        self.found = np.zeros(len(want), dtype=bool)
        self._offsets = reader.offsets

    def match(self, batch: KeyBatch) -> None:
        want, reader = self.want, self.reader
        low = int(np.searchsorted(want.hi, reader.min_hi[batch.groups[0]], side="left"))
        high = int(np.searchsorted(want.hi, reader.max_hi[batch.groups[-1]], side="right"))
        rows = match_keys(batch.hi, batch.lo, want.hi[low:high], want.lo[low:high])
        hit = rows >= 0
        if not hit.any():
            return
        where = np.flatnonzero(hit) + low
        rows = rows[hit]
        fresh = ~self.found[where]  # a key on a row-group boundary can be seen by two batches
        where, rows = where[fresh], rows[fresh]
        self.found[where] = True
        of_group = np.searchsorted(batch.starts, rows, side="right") - 1
        segment_rows = rows - batch.starts[of_group] + self._offsets[batch.groups[of_group]]
        if len(segment_rows) > 1 and not np.all(segment_rows[1:] >= segment_rows[:-1]):
            order = np.argsort(segment_rows, kind="stable")  # segment row order, as the collect reads the results
            where, rows, segment_rows = where[order], rows[order], segment_rows[order]
        positions = want.positions[where]
        self.hits[positions] = True
        self.out.add(positions, self.index, segment_rows)
        if batch.costs is not None:
            costs = batch.costs[rows]
            known = ~np.isnan(costs)
            if known.any():
                self.tally.cost += float(costs[known].sum())
                self.tally.rows_with_cost += int(known.sum())

    def remaining(self) -> Wanted:
        return self.want.without(self.found) if self.found.any() else self.want


def match_segment(reader: SegmentReader, index: int, want: Wanted, hits: np.ndarray, out: MapWriter,
                  tally: Tally) -> Wanted:
    """Find ``want``'s keys in segment ``index`` (see :class:`SegmentMatch`); return
    the keys not found."""
    match = SegmentMatch(reader, index, want, hits, out, tally)
    for batch in key_batches(reader, want):
        match.match(batch)
    return match.remaining()


__all__ = ["BATCH_GROUPS", "KeyBatch", "SegmentMatch", "Tally", "Wanted", "key_batches", "match_keys",
           "match_segment"]
