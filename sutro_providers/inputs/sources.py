"""Anything tabular -> a stream of Arrow record batches.

:func:`open_source` accepts a list of dicts, a pandas or polars DataFrame, an
Arrow ``Table``/``RecordBatch``/``RecordBatchReader``, an open :class:`SourceReader`
(a SQL query: :func:`sutro_providers.inputs.sql.open_sql`), or a local path / fsspec
URL of a ``.csv`` or ``.parquet`` file (also a directory or glob of Parquet
files). It returns a :class:`SourceReader` that knows the Arrow schema up front
and streams batches of at most ``batch_size`` rows, so a large table is never
copied whole (:func:`to_table` is the same conversion into one in-memory table,
for callers that need one, such as the Dagster IO managers):

* pandas frames are converted slice by slice (one batch-sized copy at a time);
* Parquet is read row group by row group (:mod:`sutro_providers.parquet_io`: memory
  stays at one row group however large the file), CSV block by block;
* Arrow and polars tables are sliced without copying.

pandas and polars are imported only if the caller already uses them. Bad input
(mixed types in a column, invalid UTF-8 in a CSV, an unknown file type) raises
:class:`~sutro_providers.errors.SutroInputError` naming the column and row.
"""

from __future__ import annotations

import datetime
import numbers
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from sutro_providers.errors import SutroInputError
from sutro_providers.parquet_io import download_file, open_parquet, parquet_batches

if TYPE_CHECKING:
    import pandas
    import polars

TableSource: TypeAlias = (
    "list[dict[str, Any]] | pandas.DataFrame | polars.DataFrame | polars.LazyFrame"
    " | pa.Table | pa.RecordBatch | pa.RecordBatchReader | SourceReader | str | os.PathLike[str]"
)
"""What :func:`open_source` accepts: in-memory tables, or a local path / fsspec URL."""

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")
_GLOB_CHARS = re.compile(r"[*?\[]")
_UTF8_INDEX = re.compile(r"string index (\d+)")


class SourceReader:
    """An opened source: ``schema`` and (when cheap to know) ``num_rows`` up front,
    then :meth:`batches` streams record batches of at most ``batch_size`` rows.

    Iterate :meth:`batches` once; a second pass is not guaranteed to work (a
    ``RecordBatchReader`` source is consumed by the first one): a caller that reads
    twice asks :meth:`replayable` first.
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Callable[[], Iterator[pa.RecordBatch]],
        *,
        num_rows: int | None,
        batch_size: int,
        description: str,
        close: Callable[[], None] | None = None,
        replay: Callable[[str], SourceReader] | None = None,
    ) -> None:
        self.schema = schema
        self.num_rows = num_rows
        self.batch_size = batch_size
        self.description = description
        self._batches = batches
        self._close = close
        self._replay = replay

    def close(self) -> None:
        """Release what an opened but unread source holds (a SQL query's open result
        and connection); reading after it starts over. Idempotent."""
        if self._close is not None:
            self._close()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Record batches of the source, in order, each at most ``batch_size`` rows."""
        for batch in self._batches():
            yield from _split(batch, self.batch_size)

    def replayable(self, directory: str) -> SourceReader | None:
        """A reader of the same rows that can be read any number of times, always with
        the same rows in the same order, or ``None`` when the source cannot promise that
        (a SQL query, a ``RecordBatchReader``, a pandas frame: the caller keeps its own
        copy). An in-memory Arrow or polars table is itself; a file source (Parquet or
        CSV, local or on a store) is copied into ``directory`` as it is (its own bytes,
        one streaming read per file: no decoding and no re-encoding) and read from
        there, so a file replaced at its source between two passes changes neither.

        Raises :class:`SutroInputError` for a file that went away before it was
        copied; a store that cannot be read raises what the store raises."""
        return None if self._replay is None else self._replay(directory)

    def __repr__(self) -> str:
        return f"SourceReader({self.description}, rows={self.num_rows}, columns={self.schema.names})"


def open_source(
    source: TableSource, *, storage_options: dict[str, Any] | None = None, batch_size: int = 65_536
) -> SourceReader:
    """Open any supported table source for streaming (see the module docstring).

    ``storage_options`` go to fsspec for path/URL sources (e.g. s3fs credentials).
    Nothing but the schema (and Parquet footers) is read until :meth:`SourceReader.batches`.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if isinstance(source, SourceReader):  # already open (e.g. a SQL query: sutro_providers.inputs.sql)
        return SourceReader(source.schema, source._batches, num_rows=source.num_rows, batch_size=batch_size,
                            description=source.description, close=source._close, replay=source._replay)
    if isinstance(source, pa.Table | pa.RecordBatch):
        table = source if isinstance(source, pa.Table) else pa.Table.from_batches([source])
        return _from_table(table, batch_size, "Arrow table")
    if isinstance(source, pa.RecordBatchReader):
        reader = source
        return SourceReader(reader.schema, lambda: iter(reader), num_rows=None, batch_size=batch_size,
                            description="Arrow RecordBatchReader")
    if isinstance(source, str | os.PathLike):
        return _open_path(os.fspath(source), storage_options or {}, batch_size)
    if isinstance(source, list):
        return _from_table(_from_pylist(source), batch_size, "list of dicts")
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(source, pandas.DataFrame):
        return _from_pandas(source, batch_size)
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(source, polars.LazyFrame):
        source = source.collect()
    if polars is not None and isinstance(source, polars.DataFrame):
        return _from_table(source.to_arrow(), batch_size, "polars DataFrame")
    raise SutroInputError(
        f"cannot read a table from {type(source).__name__}: pass a list of dicts, a pandas or polars "
        "DataFrame, an Arrow Table/RecordBatchReader, or a path/URL of a .csv or .parquet file"
    )


def to_table(source: TableSource, *, storage_options: dict[str, Any] | None = None) -> pa.Table:
    """``source`` as one Arrow table, through the same conversions and errors as
    :func:`open_source`. Arrow tables come back unchanged, readers are read whole;
    polars is converted without a copy; a pandas frame keeps its pandas metadata
    (so it loads back with the same dtypes)."""
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatchReader):
        return source.read_all()
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(source, pandas.DataFrame):
        reader = _from_pandas(source, TO_TABLE_BATCH_SIZE, keep_metadata=True)
    else:
        reader = open_source(source, storage_options=storage_options, batch_size=TO_TABLE_BATCH_SIZE)
    return pa.Table.from_batches(reader.batches(), schema=reader.schema)


TO_TABLE_BATCH_SIZE = 1 << 20


def _split(batch: pa.RecordBatch, batch_size: int) -> Iterator[pa.RecordBatch]:
    if batch.num_rows <= batch_size:
        if batch.num_rows:
            yield batch
        return
    for start in range(0, batch.num_rows, batch_size):
        yield batch.slice(start, batch_size)


def _from_table(table: pa.Table, batch_size: int, description: str) -> SourceReader:
    reader = SourceReader(
        table.schema,
        lambda: iter(table.to_batches(max_chunksize=batch_size)),
        num_rows=table.num_rows,
        batch_size=batch_size,
        description=description,
        replay=lambda directory: reader,  # immutable and in memory: every pass sees the same rows
    )
    return reader


# -- list of dicts ----------------------------------------------------------------------------


def _from_pylist(rows: list[Any]) -> pa.Table:
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise SutroInputError(f"row {i} of the list is a {type(row).__name__}, not a dict")
    names = list(dict.fromkeys(k for row in rows for k in row))
    columns: dict[str, pa.Array] = {}
    errors: list[tuple[int, SutroInputError]] = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            text = mixed_as_text(values)  # a column mixing text and numbers is text
            if text is None:
                errors.append(_mixed_error(name, values, exc))
            else:
                columns[name] = text
    if errors:  # the first value at fault, across columns
        raise min(errors, key=lambda e: e[0])[1]
    return pa.Table.from_pydict(columns)


def mixed_as_text(values: list[Any], *, nan_is_null: bool = False) -> pa.Array | None:
    """A column of mixed scalar kinds (text, numbers, booleans, dates) as a string
    column: every value that is not text is rendered the way a column of its type is
    sent to a string field (Arrow's cast: ``7`` -> ``"7"``, ``2.0`` -> ``"2"``,
    ``True`` -> ``"true"``, a date -> ``"2024-01-02"``), so the column reads as the same
    column read from a CSV file would. ``None`` when a value is of another kind (a
    list, bytes, a timestamp...): such a column is refused. Error path only (a column
    that did not convert as it is); values are rendered one Python type at a time."""
    out: list[Any] = list(values)
    groups: dict[type, list[int]] = {}
    for i, value in enumerate(values):
        if value is None or isinstance(value, str):
            continue
        if not _renders_as_text(value):
            return None
        groups.setdefault(type(value), []).append(i)
    try:
        for indices in groups.values():
            rendered = pa.array([values[i] for i in indices], from_pandas=nan_is_null).cast(pa.string())
            for i, text in zip(indices, rendered.to_pylist(), strict=True):
                out[i] = text
        return pa.array(out, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None


def _renders_as_text(value: Any) -> bool:
    """A number, boolean or date (not a timestamp: a string field refuses those)."""
    return not isinstance(value, datetime.datetime) and isinstance(value, numbers.Number | datetime.date)


def _mixed_error(name: str, values: list[Any], exc: Exception) -> tuple[int, SutroInputError]:
    """(row, error) for a column that converts neither as it is nor as text: the first
    value that is not a scalar a string field takes (after some that are), else the
    first that does not convert with the values before it."""
    odd = next((i for i, v in enumerate(values) if not (v is None or isinstance(v, str) or _renders_as_text(v))), None)
    # after text or numbers, that value is at fault; at the start, the column is of its kind
    if odd is not None and any(v is not None for v in values[:odd]):
        return odd, SutroInputError(
            f"column {name!r} mixes types: row {odd} holds {values[odd]!r:.80} ({type(values[odd]).__name__}), "
            "which is neither text nor a number, boolean or date like the values before it"
        )
    index = _first_bad_value(values)
    if index is None:
        return len(values), SutroInputError(f"column {name!r} cannot be converted to an Arrow column: {exc}")
    value = values[index]
    return index, SutroInputError(
        f"column {name!r} mixes types: row {index} holds {value!r:.80} ({type(value).__name__}), "
        f"which does not fit the values before it ({exc})"
    )


def _first_bad_value(values: list[Any]) -> int | None:
    """The first row whose value cannot be converted together with the values before
    it. Error path only: a binary search over prefixes of the column."""
    if _converts(values):
        return None
    lo, hi = 1, len(values)  # the prefix of length hi fails, find the shortest one
    while lo < hi:
        mid = (lo + hi) // 2
        if _converts(values[:mid]):
            lo = mid + 1
        else:
            hi = mid
    return hi - 1


def _converts(values: list[Any]) -> bool:
    try:
        pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    return True


# -- pandas ----------------------------------------------------------------------------------


def _from_pandas(df: Any, batch_size: int, *, keep_metadata: bool = False) -> SourceReader:
    """Convert slice by slice against one schema inferred from the whole frame
    (without pandas' schema metadata unless ``keep_metadata``). Object columns mixing
    text, numbers, booleans and dates become text (as for a list of dicts)."""
    if not df.columns.is_unique:
        dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise SutroInputError(f"the DataFrame has duplicate column names: {dupes}")
    text: list[Any] = []  # the mixed object columns, rendered as text slice by slice
    try:
        schema = rest = pa.Schema.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        text = _mixed_pandas_columns(df, exc)
        rest = pa.Schema.from_pandas(df.drop(columns=text), preserve_index=False)
        schema = pa.schema([pa.field(str(c), pa.string()) if c in text else rest.field(str(c)) for c in df.columns],
                           metadata=rest.metadata)
    if not keep_metadata:
        schema, rest = schema.remove_metadata(), rest.remove_metadata()

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(df), batch_size):
            part = df.iloc[start : start + batch_size]
            try:  # a Table: pyarrow-backed columns arrive as chunked arrays
                table = pa.Table.from_pandas(part.drop(columns=text) if text else part, schema=rest,
                                             preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise SutroInputError(f"cannot convert the pandas DataFrame to Arrow: {exc}") from exc
            if text:
                rendered = {str(c): mixed_as_text(part[c].tolist(), nan_is_null=True) for c in text}
                table = pa.Table.from_arrays(
                    [pa.chunked_array([rendered[f.name]], pa.string()) if f.name in rendered else table.column(f.name)
                     for f in schema], schema=schema)
            yield from table.to_batches()

    return SourceReader(schema, batches, num_rows=len(df), batch_size=batch_size,
                        description="pandas DataFrame")


def _mixed_pandas_columns(df: Any, exc: Exception) -> list[Any]:
    """The object columns that do not convert as they are but do as text; raises
    :class:`SutroInputError` naming the first value of a column that does neither."""
    mixed = []
    for c in df.columns:
        if df[c].dtype != object:
            continue
        values = df[c].tolist()
        try:
            pa.array(values, from_pandas=True)
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as column_exc:
            if mixed_as_text(values, nan_is_null=True) is None:
                raise _mixed_error(str(c), values, column_exc)[1] from exc
        mixed.append(c)
    if not mixed:
        raise SutroInputError(f"cannot convert the pandas DataFrame to Arrow: {exc}") from exc
    return mixed


# -- files and URLs --------------------------------------------------------------------------


def _open_path(uri: str, storage_options: dict[str, Any], batch_size: int) -> SourceReader:
    fs, path = url_to_fs(uri, **storage_options)
    if _GLOB_CHARS.search(path):
        files = sorted(p for p in fs.glob(path) if not fs.isdir(p))
        return _open_files(fs, files, uri, batch_size, csv=False)
    if fs.isdir(path):
        files = sorted(p for p in fs.find(path) if p.lower().endswith(PARQUET_SUFFIXES)
                       and not os.path.basename(p).startswith((".", "_")))
        return _open_files(fs, files, uri, batch_size, csv=False)
    if not fs.exists(path):
        raise SutroInputError(f"input file {uri!r} does not exist")
    if path.lower().endswith(PARQUET_SUFFIXES):
        return _open_files(fs, [path], uri, batch_size, csv=False)
    if path.lower().endswith(CSV_SUFFIXES):
        return _open_files(fs, [path], uri, batch_size, csv=True)
    raise SutroInputError(f"cannot tell the format of {uri!r}: name it .csv or .parquet")


def _open_files(fs: Any, files: list[str], uri: str, batch_size: int, *, csv: bool,
                copy: bool = False) -> SourceReader:
    """Parquet files, or one CSV file, opened; replayable from a local copy of them
    (``copy``: they are that copy, which replays itself)."""
    reader = _open_csv(fs, files[0], uri, batch_size) if csv else _open_parquet_files(fs, files, uri, batch_size)
    if copy:
        reader._replay = lambda directory: reader
    else:
        reader._replay = lambda directory: _open_files(
            _local_fs(), _copy_files(fs, files, uri, directory), f"{uri} (local copy)", batch_size, csv=csv,
            copy=True)
    return reader


def _local_fs() -> Any:
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem()


def _copy_files(fs: Any, files: list[str], uri: str, directory: str) -> list[str]:
    """``files`` copied into ``directory`` as they are, in order (the names keep their
    suffix: a CSV file's compression is read from it)."""
    copies = []
    for index, path in enumerate(files):
        local = os.path.join(directory, f"source-{index:06d}-{os.path.basename(path)}")
        try:
            download_file(fs, path, local)
        except FileNotFoundError:
            raise SutroInputError(f"input file {path!r} of {uri!r} went away before it was read") from None
        copies.append(local)
    return copies


def _open_parquet_files(fs: Any, files: list[str], uri: str, batch_size: int) -> SourceReader:
    if not files:
        raise SutroInputError(f"no Parquet files match {uri!r}")
    schema: pa.Schema | None = None
    num_rows = 0
    for path in files:
        with open_parquet(fs, path) as f:
            try:
                pf = pq.ParquetFile(f)
            except (pa.ArrowInvalid, OSError) as exc:
                raise SutroInputError(f"{path!r} is not a readable Parquet file: {exc}") from exc
            if schema is None:
                schema = pf.schema_arrow
            elif not pf.schema_arrow.equals(schema):
                raise SutroInputError(
                    f"Parquet file {path!r} has a different schema than {files[0]!r}: "
                    f"{pf.schema_arrow} vs {schema}"
                )
            num_rows += pf.metadata.num_rows
    assert schema is not None

    def batches() -> Iterator[pa.RecordBatch]:
        for path in files:
            yield from parquet_batches(fs, path, batch_size)

    return SourceReader(schema, batches, num_rows=num_rows, batch_size=batch_size,
                        description=f"Parquet {uri}")


def _open_csv(fs: Any, path: str, uri: str, batch_size: int) -> SourceReader:
    """CSV with inferred types. Bare empty cells are null; a quoted ``""`` is an empty
    string. UTF-8 is checked per batch so the error can name the exact row. The file
    opened here (for the schema) is read by the first :meth:`SourceReader.batches`;
    later passes open it again, with the types the first opening inferred."""
    convert = pcsv.ConvertOptions(check_utf8=False, strings_can_be_null=True, quoted_strings_can_be_null=False)

    def open_csv(options: pcsv.ConvertOptions) -> tuple[Any, pcsv.CSVStreamingReader]:
        f = fs.open(path, "rb", compression="infer")
        try:
            return f, pcsv.open_csv(f, convert_options=options)
        except pa.ArrowInvalid as exc:
            f.close()
            raise SutroInputError(f"cannot read CSV {uri!r}: {exc}") from exc

    pending = [open_csv(convert)]
    schema = pending[0][1].schema
    convert.column_types = {field.name: field.type for field in schema}

    def batches() -> Iterator[pa.RecordBatch]:
        f, reader = pending.pop() if pending else open_csv(convert)
        rows = 0
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except pa.ArrowInvalid as exc:
                    raise SutroInputError(f"cannot read CSV {uri!r} after row {rows}: {exc}") from exc
                _check_utf8(batch, rows, uri)
                rows += batch.num_rows
                yield batch
        finally:
            f.close()

    def close() -> None:  # the opening for the schema, never read
        while pending:
            pending.pop()[0].close()

    return SourceReader(schema, batches, num_rows=None, batch_size=batch_size, description=f"CSV {uri}",
                        close=close)


def _check_utf8(batch: pa.RecordBatch, first_row: int, uri: str) -> None:
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        try:
            column.validate(full=True)
        except pa.ArrowInvalid as exc:
            match = _UTF8_INDEX.search(str(exc))
            index = int(match.group(1)) if match else _first_invalid_utf8(column)
            raise SutroInputError(
                f"CSV {uri!r} is not valid UTF-8: column {name!r}, data row {first_row + index} "
                "(0-based, not counting the header); re-encode the file as UTF-8"
            ) from exc


def _first_invalid_utf8(column: pa.Array) -> int:
    for i, value in enumerate(column.cast(pa.binary()).to_pylist()):
        if value is not None:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return i
    return 0
