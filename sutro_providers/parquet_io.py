"""Every Parquet file the package reads in batches or writes goes through here.

Reading, in memory bounded by one row group whatever the file size: Parquet input
sources (:mod:`sutro_providers.inputs.sources`), the staged source snapshot
(:mod:`sutro_providers.staging.area`) and the results and snapshot at collect
(:mod:`sutro_providers.collection`). Two things made memory follow the file size
(measured with pyarrow 26 and s3fs 2026.9, see docs/benchmarks.md, B4):

* one ``ParquetFile.iter_batches`` over a whole file keeps memory of every row
  group it has read until the reader is dropped (~30 MiB per 1Mi-row group);
  :func:`row_group_batches` uses a reader per row group instead;
* fsspec's default read cache for object stores (s3fs: "readahead", 50 MiB blocks)
  fetches 50 MiB beyond every column chunk Arrow asks for and holds it; Arrow
  already asks for whole column chunks, so :func:`open_parquet` opens files
  without a cache, and :func:`row_group_batches` pre-buffers each row group
  (one ranged GET per row group).

Writing: one writer, :class:`ParquetSink`, streams batches into a file opened by
:func:`open_upload` (parts of :data:`UPLOAD_BLOCK`) in one :class:`ParquetFormat`:
:data:`STAGED` for the staged snapshot and shards, :data:`OUTPUT` for the enriched
table (:func:`write_parquet`, all or nothing, used by batch collect, the real-time
runner and the job-results fallback of the download). The choices were measured
(docs/benchmarks.md, B1 and B2):

* staged files: zstd (snappy's 5x larger uploads cost more than it saves), no
  dictionary encoding except columns that are Arrow dictionaries already (on
  wide-cardinality text the writer's dictionary attempt and fall-back cost more
  than they save), statistics only for the row id, row groups of 128Ki rows;
* the output: pyarrow's default codec (snappy), dictionary encoding only for the
  columns whose values repeat (:func:`dictionary_columns`), statistics for every
  column (downstream readers prune by min/max), one row group per batch.
"""

from __future__ import annotations

import contextlib
import itertools
import posixpath
import uuid
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from sutro_providers.columns import ROW_ID

# -- reading --------------------------------------------------------------------------------------


def open_parquet(fs: Any, path: str, read_ahead: int = 0) -> Any:
    """``path`` on the fsspec filesystem ``fs``, opened for reading as Parquet: no
    read-ahead cache (see the module docstring). Use it as a context manager.

    ``read_ahead`` (bytes): for a reader that scans the whole file front to back, one
    ranged GET fetches that much beyond each read and serves the next row groups from
    it (fsspec's "readahead" cache: memory of one such block). An object store then
    sees a GET per ``read_ahead`` bytes, not one per row group."""
    if read_ahead:
        return fs.open(path, "rb", cache_type="readahead", block_size=read_ahead)
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
    one row group however many the file has.

    ``pre_buffer``: Arrow coalesces the row group's column chunks into one read (up to
    32 MiB a read), so a file on an object store costs one ranged GET per row group,
    not one per column chunk (a 10M-row output of 153 row groups x 9 columns: ~150
    GETs instead of ~1,400, each a round trip; moto's server even copies the whole
    object for every ranged GET, which made B8's load 3x its floor at 10M rows)."""
    if metadata is None:
        metadata = pq.ParquetFile(source).metadata
    for group in range(metadata.num_row_groups):
        reader = pq.ParquetFile(source, metadata=metadata, pre_buffer=True)
        try:
            yield from reader.iter_batches(batch_size=batch_size, columns=columns, row_groups=[group])
        finally:
            reader.close(force=False)


def download_file(fs: Any, path: str, local: str) -> None:
    """``path`` on the fsspec filesystem ``fs`` copied to the local file ``local`` as
    it is, in one streaming read: memory of one 64 KiB chunk, and on an object store
    one GET, so the copy is of one version of an object replaced meanwhile. (s3fs'
    own ``get_file`` fetches a file over 50 MiB as up to 10 concurrent 50 MiB ranged
    GETs, each held in memory whole until written, and each free to see another
    version.) Used for the incremental run's local copy of a file source and its
    copy of the cache's keys files."""
    if getattr(fs, "max_concurrency", None):  # s3fs: its sequential download
        fs.get_file(path, local, max_concurrency=1)
    else:
        fs.get_file(path, local)


def parquet_batches(
    fs: Any, path: str, batch_size: int, columns: list[str] | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """:func:`row_group_batches` of the file ``path`` on the fsspec filesystem ``fs``
    (opened with :func:`open_parquet`, closed when the generator ends or is closed)."""
    with open_parquet(fs, path) as handle:
        yield from row_group_batches(handle, batch_size, columns)


# -- writing --------------------------------------------------------------------------------------

UPLOAD_BLOCK = 16 * 2**20
"""Block size every written file is opened with (:func:`open_upload`): an object
store's file (s3fs: 50 MiB by default) buffers one block and copies it when
uploading it as a multipart part, so this bounds a write's memory (16 MiB x S3's
10,000 parts allows 160 GiB files), and a file smaller than the block stays in
memory whole until it is closed."""

SAMPLE_ROWS = 8192


def dictionary_columns(batch: pa.RecordBatch) -> list[str]:
    """The columns worth dictionary encoding in Parquet, judged on the first
    ``SAMPLE_ROWS`` rows of one batch: those whose values repeat (at most half of
    them distinct), such as labels. Trying a dictionary on unique text (a body, a
    rationale) costs time and saves nothing."""
    names = []
    batch = batch.slice(0, SAMPLE_ROWS)
    for field, column in zip(batch.schema, batch.columns, strict=True):
        try:
            distinct = pc.count_distinct(column, mode="all").as_py()
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            distinct = 0  # a type Arrow cannot count: keep the writer's default
        if 2 * distinct <= max(len(column), 1):
            names.append(field.name)
    return names


@dataclass(frozen=True)
class ParquetFormat:
    """How one kind of file is encoded (see the module docstring for the measured choices).

    :param compression: the Parquet codec.
    :param dictionary: ``"arrow"``: dictionary-encode only the columns that are Arrow
        dictionaries already; ``"repeating"``: those whose values repeat in the first
        batch (:func:`dictionary_columns`); a tuple: these columns.
    :param statistics: write min/max statistics for every column (``True``) or these.
    :param row_group_size: rows per row group; ``None``: each batch is one row group.
    :param encodings: ``(column, encoding)`` pairs, e.g. ``DELTA_BINARY_PACKED`` for
        ascending integers (columns not named: the writer's default).
    """

    compression: str
    dictionary: Literal["arrow", "repeating"] | tuple[str, ...]
    statistics: bool | tuple[str, ...] = True
    row_group_size: int | None = None
    encodings: tuple[tuple[str, str], ...] = ()

    def use_dictionary(self, schema: pa.Schema, sample: pa.RecordBatch | None) -> bool | list[str]:
        """The writer's ``use_dictionary`` for ``schema`` (``sample``: the first batch, if any)."""
        if isinstance(self.dictionary, tuple):
            return list(self.dictionary)
        if self.dictionary == "arrow":
            return [f.name for f in schema if pa.types.is_dictionary(f.type)] or False
        return dictionary_columns(sample) if sample is not None else True


STAGED = ParquetFormat("zstd", "arrow", statistics=(ROW_ID,), row_group_size=128 * 1024)
"""The staged ``source.parquet`` and ``input-sNNNN.parquet`` files."""
OUTPUT = ParquetFormat("snappy", "repeating")
"""The enriched output table (snappy is pyarrow's default codec)."""


def open_upload(fs: Any, path: str) -> Any:
    """``path`` on the fsspec filesystem ``fs``, opened for writing in parts of
    :data:`UPLOAD_BLOCK`. Errors are the filesystem's own (callers wrap them)."""
    return fs.open(path, "wb", block_size=UPLOAD_BLOCK)


def discard_upload(handle: Any) -> None:
    """Throw away a file opened by :func:`open_upload` without committing it (an
    unfinished multipart upload is aborted; a file without ``discard`` is closed and
    left for the caller to remove). Best effort: never raises."""
    if handle.closed:
        return
    try:
        if hasattr(handle, "discard"):
            handle.discard()
            handle.closed = True
        else:
            handle.close()
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass


class ParquetSink:
    """One Parquet file being written: a ``ParquetWriter`` on a file opened by
    :func:`open_upload`, encoding as ``fmt`` says (``sample``: the first batch, for
    ``fmt.dictionary == "repeating"``). :meth:`close` finishes the file (uploads what
    is still buffered); :meth:`abort` discards it. If the writer cannot be created,
    ``handle`` is discarded and the error raised."""

    def __init__(self, handle: Any, schema: pa.Schema, fmt: ParquetFormat,
                 sample: pa.RecordBatch | None = None) -> None:
        self.handle = handle
        self.fmt = fmt
        statistics = fmt.statistics if isinstance(fmt.statistics, bool) else list(fmt.statistics)
        try:
            self.writer = pq.ParquetWriter(handle, schema, compression=fmt.compression,
                                           use_dictionary=fmt.use_dictionary(schema, sample),
                                           write_statistics=statistics,
                                           column_encoding=dict(fmt.encodings) or None)
        except BaseException:
            discard_upload(handle)
            raise

    @property
    def schema(self) -> pa.Schema:
        return self.writer.schema

    def write(self, batch: pa.RecordBatch) -> None:
        """Write one batch (its schema must be :attr:`schema`)."""
        self.writer.write_batch(batch, row_group_size=self.fmt.row_group_size)

    def close(self) -> None:
        self.writer.close()
        self.handle.close()

    def abort(self) -> None:
        """Discard the file (never raises; a no-op once closed)."""
        with contextlib.suppress(Exception):
            self.writer.close()  # before the handle, or its __del__ writes to a closed file
        discard_upload(self.handle)


def write_parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema, uri: str,
                  storage_options: dict[str, Any] | None = None, fmt: ParquetFormat = OUTPUT) -> int:
    """Stream ``batches`` into one Parquet file at ``uri`` (local path or fsspec URL)
    and return the number of rows written.

    All or nothing: the data goes to a hidden temporary name next to ``uri``
    (``.<name>.sutro-tmp-<uuid>``) and is moved into place only after the last batch;
    if anything fails (including the batch iterator itself), the temporary file is
    removed and nothing exists at ``uri``. On object stores the move is a copy+delete.
    Encoded as ``fmt`` (:data:`OUTPUT`: each batch is one row group; columns whose
    first batch repeats values are dictionary-encoded, the others plain).
    """
    fs, path = url_to_fs(uri, **(storage_options or {}))
    parent, name = posixpath.split(path.rstrip("/"))
    tmp = posixpath.join(parent, f".{name}.sutro-tmp-{uuid.uuid4().hex[:12]}")
    if parent:
        with contextlib.suppress(Exception):
            fs.makedirs(parent, exist_ok=True)
    rows = 0
    handle = open_upload(fs, tmp)
    sink: ParquetSink | None = None
    try:
        batches = iter(batches)
        first = next(batches, None)
        sink = ParquetSink(handle, schema, fmt, sample=first)
        for batch in itertools.chain([] if first is None else [first], batches):
            if not batch.schema.equals(schema):
                batch = batch.cast(schema)
            sink.write(batch)
            rows += batch.num_rows
        sink.close()
        fs.mv(tmp, path)
    except BaseException:
        if sink is not None:
            sink.abort()
        else:
            discard_upload(handle)
        with contextlib.suppress(Exception):
            if fs.exists(tmp):
                fs.rm(tmp)
        raise
    return rows


__all__ = [
    "OUTPUT", "STAGED", "UPLOAD_BLOCK", "ParquetFormat", "ParquetSink", "dictionary_columns", "discard_upload",
    "open_parquet", "open_upload", "parquet_batches", "row_group_batches", "write_parquet",
]
