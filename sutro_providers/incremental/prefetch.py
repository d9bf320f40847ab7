"""Copying the cache segments' keys files to local scratch while the source is read.

A lookup of N keys in a segment of G row groups reads min(N, G) row groups or so of
its keys file. When N >= G (the lookup will read most of the file anyway: a daily
run over a whole table), :class:`KeysPrefetch` copies the keys file to the lookup's
scratch folder on a thread of its own, started before the pass over the source, so
the store's round trips (the catalog, the pin, the GETs of the keys) overlap with
reading the source instead of following it; the lookup then reads the keys
locally. With N < G (a few keys in a large cache) nothing is copied and the lookup
reads only the row groups that hold its keys, O(N) bytes as before. Segments of
layout 1 (keys and results in one file) are never copied: that would read the
results too.

Memory: none beyond the copy's stream buffers; disk: ~16 bytes per cached row.
"""

from __future__ import annotations

import logging
import os
import threading

from sutro_providers.incremental.segments import SegmentReader
from sutro_providers.incremental.store import Catalog, ResultsCache
from sutro_providers.parquet_io import download_file

log = logging.getLogger("sutro_providers.incremental.prefetch")


class KeysPrefetch:
    """The pinned catalog, its segments open, and their keys files being copied to
    ``directory`` (see the module docstring). :meth:`result` waits for it."""

    def __init__(self, cache: ResultsCache, pin: str, rows: int | None, directory: str) -> None:
        self.cache, self.pin, self.rows, self.directory = cache, pin, rows, directory
        self._catalog: Catalog | None = None
        self._readers: list[SegmentReader] = []
        self._error: BaseException | None = None
        self.copied = 0
        self._thread = threading.Thread(target=self._run, name="sutro-cache-keys", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._catalog = self.cache.pinned(self.pin)
            self._readers = self.cache.open_segments(self._catalog)
            if self.rows is None:  # a stream of unknown length: read row groups as needed
                return
            for index, reader in enumerate(self._readers):
                if reader.segment.layout < 2 or self.rows < reader.num_row_groups:
                    continue
                local = os.path.join(self.directory, f"segment-keys-{index:03d}.parquet")
                download_file(self.cache.fs, reader.keys_path, local)
                reader.use_local_keys(local)
                self.copied += os.path.getsize(local)
        except BaseException as exc:  # noqa: BLE001 - raised in result()
            self._error = exc

    def result(self) -> tuple[Catalog, list[SegmentReader]]:
        """The catalog the lookup reads and its segments (newest first); raises what
        went wrong (``FileNotFoundError``: a segment went away: look up without it)."""
        self._thread.join()
        if self._error is not None:
            self.close()
            raise self._error
        assert self._catalog is not None
        return self._catalog, self._readers

    def close(self) -> None:
        self._thread.join()
        for reader in self._readers:
            reader.close()


__all__ = ["KeysPrefetch"]
