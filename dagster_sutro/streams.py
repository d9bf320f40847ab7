"""Tables that stay out of memory between an asset and its IO managers.

A streaming asset (``sutro_function_asset(..., stream=True)``) asks its upstream's IO
manager for a :class:`~sutro_providers.inputs.sources.SourceReader` (Parquet row
group by row group, or a DuckDB query as Arrow batches) and hands its own IO manager
a :class:`ParquetTable`: the enriched Parquet file the core wrote, which the IO
manager copies or inserts batch by batch. Memory stays at a few batches however
large the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from sutro_providers.inputs.sources import SourceReader, open_source
from sutro_providers.parquet_io import open_parquet, parquet_batches


@dataclass
class ParquetTable:
    """An enriched table in one Parquet file (``uri`` on any fsspec storage)."""

    uri: str
    schema: pa.Schema
    num_rows: int
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    batch_size: int = 65_536

    @classmethod
    def open(cls, uri: str, storage_options: dict[str, Any] | None = None, batch_size: int = 65_536) -> ParquetTable:
        """Read the footer of ``uri`` (nothing else)."""
        fs, path = url_to_fs(uri, **(storage_options or {}))
        with open_parquet(fs, path) as handle:
            footer = pq.ParquetFile(handle)
            return cls(uri, footer.schema_arrow, footer.metadata.num_rows, dict(storage_options or {}), batch_size)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows, one row group (or ``batch_size`` rows) at a time."""
        fs, path = url_to_fs(self.uri, **self.storage_options)
        yield from parquet_batches(fs, path, self.batch_size)

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())


def upath_source(path: Any, batch_size: int = 65_536) -> SourceReader:
    """A Parquet file on a :class:`upath.UPath` (or a local path) as a stream."""
    storage_options = dict(getattr(path, "storage_options", {}) or {})
    protocol = getattr(path, "protocol", "") or ""
    uri = str(path) if protocol in ("", "file", "local") or "://" in str(path) else f"{protocol}://{path.path}"
    return open_source(uri, storage_options=storage_options, batch_size=batch_size)


def chained(readers: list[SourceReader]) -> SourceReader:
    """Several sources with one schema (several partitions' files) as one stream."""
    if not readers:
        raise ValueError("no partition files to read")
    first = readers[0]
    for other in readers[1:]:
        if not other.schema.equals(first.schema):
            raise ValueError(f"partition files differ in schema: {other.schema} vs {first.schema}")
    return SourceReader(first.schema, lambda: chain.from_iterable(r.batches() for r in readers),
                        num_rows=sum(r.num_rows or 0 for r in readers) if all(r.num_rows is not None for r in readers)
                        else None, batch_size=first.batch_size, description=f"{len(readers)} Parquet partitions")


__all__ = ["ParquetTable", "chained", "upath_source"]
