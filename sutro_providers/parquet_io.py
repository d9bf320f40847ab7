"""Reading Parquet files in memory bounded by one row group, whatever the file size.

Used for every Parquet file the package reads in batches: Parquet input sources
(:mod:`sutro_providers.inputs.sources`), the staged source snapshot
(:mod:`sutro_providers.staging.area`) and the results and snapshot at collect
(:mod:`sutro_providers.collection.collector`). Two things made memory follow the file size
(measured with pyarrow 26 and s3fs 2026.9, see docs/benchmarks.md, B4):

* one ``ParquetFile.iter_batches`` over a whole file keeps memory of every row
  group it has read until the reader is dropped (~30 MiB per 1Mi-row group);
  :func:`row_group_batches` uses a reader per row group instead;
* fsspec's default read cache for object stores (s3fs: "readahead", 50 MiB blocks)
  fetches 50 MiB beyond every column chunk Arrow asks for and holds it; Arrow
  already asks for whole column chunks, so :func:`open_parquet` opens files
  without a cache (one ranged GET per column chunk).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq


def open_parquet(fs: Any, path: str) -> Any:
    """``path`` on the fsspec filesystem ``fs``, opened for reading as Parquet: no
    read-ahead cache (see the module docstring). Use it as a context manager."""
    return fs.open(path, "rb", cache_type="none")


def row_group_batches(
    source: pa.NativeFile | BinaryIO, batch_size: int, columns: list[str] | None = None,
    metadata: pq.FileMetaData | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """The batches (at most ``batch_size`` rows, only ``columns`` when given) of a
    Parquet file (an open file), read one row group at a time, each through its own
    reader (the footer is parsed once, not at all when the caller passes its
    ``metadata``). Batches do not span row groups.

    One ``ParquetFile.iter_batches`` over a whole file keeps Arrow memory of every
    row group it has read (~30 MiB per 1Mi-row group of a Sutro results file with
    pyarrow 26) until the reader is dropped; a reader per row group keeps memory at
    one row group however many the file has."""
    if metadata is None:
        metadata = pq.ParquetFile(source).metadata
    for group in range(metadata.num_row_groups):
        reader = pq.ParquetFile(source, metadata=metadata)
        try:
            yield from reader.iter_batches(batch_size=batch_size, columns=columns, row_groups=[group])
        finally:
            reader.close(force=False)


def parquet_batches(
    fs: Any, path: str, batch_size: int, columns: list[str] | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """:func:`row_group_batches` of the file ``path`` on the fsspec filesystem ``fs``
    (opened with :func:`open_parquet`, closed when the generator ends or is closed)."""
    with open_parquet(fs, path) as handle:
        yield from row_group_batches(handle, batch_size, columns)


__all__ = ["open_parquet", "parquet_batches", "row_group_batches"]
