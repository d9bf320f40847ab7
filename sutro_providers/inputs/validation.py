"""Validate an Arrow table, batch by batch, against a Function's typed input fields.

Use one :class:`InputValidator` per run: :meth:`~InputValidator.check_schema`
once, :meth:`~InputValidator.check_batch` for every batch in order,
:meth:`~InputValidator.finish` after the last one. Checks are vectorised with
``pyarrow.compute``; only the few offending rows named in an error are looked at
in Python. Row numbers in messages are 0-based and count across batches.

Which Arrow column types a field accepts (and what :meth:`cast_for_submit` sends):

=========  ===================================================  =========
field      accepted column types                                 sent as
=========  ===================================================  =========
string     string, large_string, string_view, dictionary of     string
           strings; integer, float, decimal, boolean, date
           (rendered as text by Arrow's cast: 7 -> "7")
integer    any integer; float holding whole numbers (pandas      int64
           turns an integer column with gaps into float)
number     integer, float, decimal                              float64
boolean    boolean                                              bool
=========  ===================================================  =========

The one rule for wrong types, on every input type: numbers, booleans and dates are
rendered as text into string fields; text is never converted into a number or a
boolean (a string column for an integer field is refused, even if it holds "40").
A column that mixes text with numbers (a list of dicts, a pandas object column) is a
text column, as the same column read from a CSV file or built by polars is (see
:func:`~sutro_providers.inputs.sources.mixed_as_text`). An all-null column (Arrow
type ``null``) fits every field type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.columns import ROW_ID
from sutro_providers.errors import SutroInputError
from sutro_providers.function_spec import FieldType, InputField

MAX_NAMED = 5
_INT64_MAX = 2**63 - 1
_ACCEPTED = {
    FieldType.STRING: "string, integer, float, decimal, boolean or date",
    FieldType.INTEGER: "integer (or float holding whole numbers)",
    FieldType.NUMBER: "integer, float or decimal",
    FieldType.BOOLEAN: "boolean",
}
_TARGET = {
    FieldType.STRING: pa.string(),
    FieldType.INTEGER: pa.int64(),
    FieldType.NUMBER: pa.float64(),
    FieldType.BOOLEAN: pa.bool_(),
}


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def accepts(field_type: FieldType, arrow_type: pa.DataType) -> bool:
    """Whether a column of ``arrow_type`` can feed a field of ``field_type``."""
    t = arrow_type
    if pa.types.is_null(t):
        return True
    if pa.types.is_dictionary(t):
        return field_type == FieldType.STRING and _is_text(t.value_type)
    if field_type == FieldType.STRING:
        return (_is_text(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
                or pa.types.is_boolean(t) or pa.types.is_date(t))
    if field_type == FieldType.INTEGER:
        return pa.types.is_integer(t) or pa.types.is_floating(t)
    if field_type == FieldType.NUMBER:
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    return pa.types.is_boolean(t)


def _plain(column: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string_view(column.type):
        column = column.cast(pa.large_string())
    return column


def _repeated_values(ids: pa.ChunkedArray) -> pa.Array:
    """The distinct values that occur more than once in ``ids`` (no nulls), sorted."""
    if pa.types.is_integer(ids.type):
        values = np.concatenate([c.to_numpy() for c in ids.chunks])
        values.sort()
        repeated = values[1:][values[1:] == values[:-1]]
        return pa.array(np.unique(repeated), type=ids.type)
    ordered = ids.take(pc.sort_indices(ids)).combine_chunks()
    after = ordered.slice(1)
    return pc.unique(after.filter(pc.equal(after, ordered.slice(0, len(ordered) - 1))))


Problem = tuple[str | None, str, pa.BooleanArray]  # (column, what is wrong, rows at fault)


class InputValidator:
    """Checks an input table against a Function's declared inputs.

    :param function: the Function name, for messages.
    :param fields: the declared inputs, in prompt order.
    :param on_invalid_rows: ``fail`` raises on the first batch with a bad row;
        ``skip`` makes :meth:`check_batch` return per-row reasons instead.
    :param id_column: a column that must be non-null and unique (strings, integers,
        UUIDs: an extension type is compared by its storage). Null ids always
        fail (in either mode): a row that cannot be identified cannot be joined back.
    :param max_row_chars: the most characters a rendered prompt (``name: value``
        lines of the declared inputs) may have.
    :param reserved: column names the table must not have (the pipeline's own).
    :param output_columns: result column names; an input column of the same name
        would clash in the output, so it is refused with a hint to set ``output_prefix``.

    Memory: with ``id_column``, the id values are kept until :meth:`finish` (their
    Arrow size: 8 bytes per integer id, 16 per UUID, length + 4 bytes per string id; about 250 MB
    for 10M 20-character ids) plus a hash table of distinct ids while finishing.
    """

    def __init__(
        self,
        function: str,
        fields: list[InputField],
        *,
        on_invalid_rows: Literal["fail", "skip"] = "fail",
        id_column: str | None = None,
        max_row_chars: int = 200_000,
        reserved: Iterable[str] = (ROW_ID,),
        output_columns: Iterable[str] = (),
    ) -> None:
        if on_invalid_rows not in ("fail", "skip"):
            raise ValueError("on_invalid_rows must be 'fail' or 'skip'")
        self.function = function
        self.fields = list(fields)
        self.on_invalid_rows = on_invalid_rows
        self.id_column = id_column
        self.max_row_chars = max_row_chars
        self.reserved = tuple(reserved)
        self.output_columns = tuple(output_columns)
        # the fixed part of a rendered prompt: "name: " per field and the newlines between
        self._prompt_overhead = sum(len(f.name) + 2 for f in self.fields) + max(len(self.fields) - 1, 0)
        self._schema: pa.Schema | None = None
        self._ids: list[tuple[int, pa.Array]] = []
        self._id_type: pa.ExtensionType | None = None  # ids of an extension type are kept as their storage
        self._too_long: tuple[pa.Array, pa.Array] | None = None  # (row lengths, too-long mask)
        self._lengths: list[tuple[str, pa.Array]] = []
        self.rows_checked = 0
        self.rows_invalid = 0

    # -- schema -----------------------------------------------------------------------------

    def check_schema(self, schema: pa.Schema) -> None:
        """Raise :class:`SutroInputError` if the table cannot feed the Function at all."""
        names = schema.names
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SutroInputError(f"the table has duplicate column names: {dupes}")
        have = ", ".join(repr(n) for n in names) or "no columns"
        for f in self.fields:
            if f.required and f.name not in names:
                raise SutroInputError(
                    f"Function {self.function!r} needs input column {f.name!r}, which the table "
                    f"does not have (it has: {have})"
                )
            if f.name in names and not accepts(f.type, schema.field(f.name).type):
                column_type = schema.field(f.name).type
                text = _is_text(column_type) or (pa.types.is_dictionary(column_type)
                                                 and _is_text(column_type.value_type))
                never = "; text is never converted into a number or boolean: convert the column first" if text else ""
                raise SutroInputError(
                    f"column {f.name!r} has type {column_type}, but Function "
                    f"{self.function!r} declares {f.name!r} as {f.type.value} "
                    f"(accepted column types: {_ACCEPTED[f.type]}){never}"
                )
        if self.id_column is not None:
            if self.id_column not in names:
                raise SutroInputError(
                    f"id_column {self.id_column!r} is not a column of the table (it has: {have})"
                )
            id_type = schema.field(self.id_column).type
            storage = id_type.storage_type if isinstance(id_type, pa.ExtensionType) else id_type
            if pa.types.is_nested(storage) or pa.types.is_null(storage):
                raise SutroInputError(
                    f"id_column {self.id_column!r} has type {id_type}; ids must be scalars "
                    "(strings, integers or UUIDs)"
                )
        for name in self.reserved:
            if name in names:
                raise SutroInputError(
                    f"column {name!r} is reserved for sutro-providers' own use; rename or drop it"
                )
        clashes = [n for n in self.output_columns if n in names]
        if clashes:
            raise SutroInputError(
                f"input column(s) {clashes} have the same name as result column(s) of Function "
                f"{self.function!r}; set output_prefix (for example output_prefix='sutro_') so the "
                "results get distinct names"
            )
        self._schema = schema

    def declared_schema(self) -> pa.Schema:
        """The declared inputs as Arrow columns of the types :meth:`cast_for_submit` sends:
        the columns of an input that has none of its own (an empty list of dicts)."""
        return pa.schema([pa.field(f.name, _TARGET[f.type]) for f in self.fields])

    def submit_columns(self, schema: pa.Schema) -> list[str]:
        """The Function's input columns present in ``schema``, in declared order."""
        return [f.name for f in self.fields if f.name in schema.names]

    # -- rows -------------------------------------------------------------------------------

    def check_batch(self, batch: pa.RecordBatch, first_row: int) -> pa.Array | None:
        """Check one batch; ``first_row`` is the global index of its first row.

        Returns ``None`` when every row is valid. Otherwise, with ``skip``, a string
        array with one reason per row (null for valid rows); with ``fail``, raises
        :class:`SutroInputError` naming the column, the problem and up to five rows.
        """
        if self._schema is None:
            self.check_schema(batch.schema)
        n = batch.num_rows
        self.rows_checked += n
        if self.id_column is not None:
            self._check_ids(batch.column(self.id_column), first_row)
        problems = self._problems(batch)
        if not problems:
            return None
        if self.on_invalid_rows == "fail":
            raise SutroInputError(self._describe(problems, batch, first_row))
        pieces = [pc.if_else(mask, pa.scalar(f"{col}: {what}; "), "")
                  for col, what, mask in problems if col is not None]
        if self._too_long is not None:
            total, mask = self._too_long
            detail = pc.binary_join_element_wise(
                "rendered row has ", total.cast(pa.string()),
                f" characters, over max_row_chars={self.max_row_chars}; ", "")
            pieces.append(pc.if_else(mask, detail, ""))
        joined = pc.utf8_rtrim(pc.binary_join_element_wise(*pieces, ""), characters="; ")
        bad = problems[0][2]
        for _, _, mask in problems[1:]:
            bad = pc.or_(bad, mask)
        self.rows_invalid += pc.sum(bad).as_py() or 0
        return pc.if_else(bad, joined, pa.scalar(None, pa.string()))

    def _problems(self, batch: pa.RecordBatch) -> list[Problem]:
        problems: list[Problem] = []
        texts: list[tuple[str, pa.Array]] = []
        for f in self.fields:
            if f.name not in batch.schema.names:
                continue
            col = _plain(batch.column(f.name))
            t = col.type
            if f.required and col.null_count:
                problems.append((f.name, "null in a required field", col.is_null()))
            if pa.types.is_floating(t) and f.type in (FieldType.INTEGER, FieldType.NUMBER):
                nan = pc.fill_null(pc.is_nan(col), False)
                if f.required and pc.any(nan).as_py():
                    problems.append((f.name, "NaN in a required field", nan))
                bad = _not_whole(col) if f.type == FieldType.INTEGER else pc.is_inf(col)
                what = "not a whole number" if f.type == FieldType.INTEGER else "not a finite number"
                self._add(problems, f.name, what, pc.and_not(pc.fill_null(bad, False), nan))
            elif pa.types.is_uint64(t) and f.type == FieldType.INTEGER:
                self._add(problems, f.name, "too large for a 64-bit integer", pc.fill_null(_too_big(col), False))
            if not pa.types.is_null(t):
                texts.append((f.name, col if _is_text(t) else pc.cast(col, pa.string())))
        self._too_long = None
        # Bytes first (read from the offsets alone): a row is at most as many characters
        # as bytes, so characters are counted only when some row's bytes exceed the limit.
        if texts and pc.any(pc.greater(
            self._total(pc.fill_null(pc.binary_length(text), 0) for _, text in texts), self.max_row_chars,
        )).as_py():
            lengths = [(name, pc.fill_null(pc.utf8_length(text), 0)) for name, text in texts]
            total = self._total(length for _, length in lengths)
            mask = pc.greater(total, self.max_row_chars)
            if pc.any(mask).as_py():
                self._too_long = (total, mask)
                self._lengths = lengths
                problems.append((None, f"rendered row longer than max_row_chars={self.max_row_chars}",
                                 mask))
        return problems

    def _total(self, lengths: Iterable[pa.Array]) -> pa.Array:
        """Each row's rendered prompt size: the column sizes plus the fixed part."""
        total: pa.Array | None = None
        for length in lengths:
            total = length if total is None else pc.add(total, length)
        return pc.add(total, self._prompt_overhead)

    @staticmethod
    def _add(problems: list[Problem], column: str, what: str, mask: pa.BooleanArray) -> None:
        if pc.any(mask).as_py():
            problems.append((column, what, mask))

    def _describe(self, problems: list[Problem], batch: pa.RecordBatch, first_row: int) -> str:
        lines = []
        ordered = []
        for col, what, mask in problems:
            idx = pc.indices_nonzero(mask)
            ordered.append((idx[0].as_py(), col, what, idx))
        ordered.sort(key=lambda p: p[0])
        for _, col, what, idx in ordered:
            shown = [i.as_py() for i in idx[:MAX_NAMED]]
            if col is None:  # a too-long row: give its length and its longest column
                rows = ", ".join(f"{first_row + i} ({self._row_size(i)})" for i in shown)
                head = what
            else:
                rows = ", ".join(str(first_row + i) for i in shown)
                head = f"column {col!r}: {what}"
            more = f" and {len(idx) - len(shown)} more in this batch" if len(idx) > len(shown) else ""
            lines.append(f"  - {head} at row{'s' if len(idx) > 1 else ''} {rows}{more}")
        return (
            f"Function {self.function!r} cannot run on this table; invalid rows (0-based):\n"
            + "\n".join(lines)
            + "\nNothing was submitted. Fix the rows, or set on_invalid_rows='skip' to keep them "
            "in the output with null results and a reason."
        )

    def _row_size(self, i: int) -> str:
        assert self._too_long is not None
        total = self._too_long[0][i].as_py()
        name, longest = max(((n, ln[i].as_py()) for n, ln in self._lengths), key=lambda p: p[1])
        return f"{total} characters, {longest} in column {name!r}"

    def _check_ids(self, column: pa.Array, first_row: int) -> None:
        column = _plain(column)
        if column.null_count:
            rows = [first_row + i.as_py() for i in pc.indices_nonzero(column.is_null())[:MAX_NAMED]]
            raise SutroInputError(
                f"id_column {self.id_column!r} is null at rows {', '.join(map(str, rows))}; "
                "every row needs an id"
            )
        if isinstance(column, pa.ExtensionArray):  # e.g. arrow.uuid: compared by its storage bytes
            self._id_type = column.type
            column = column.storage
        self._ids.append((first_row, column))

    def finish(self) -> None:
        """Whole-table checks after the last batch: ids in ``id_column`` must be unique.

        Sort-based, in bounded extra memory: integer ids are sorted in place as one
        NumPy array (+8 bytes a row; a hash group-by took +57 bytes a row at 10M ids),
        other ids through Arrow's ``sort_indices``."""
        if self.id_column is None or not self._ids:
            return
        try:
            repeated = _repeated_values(pa.chunked_array([c for _, c in self._ids]))
            if len(repeated):
                self._raise_duplicates(repeated)
        finally:
            self._ids = []

    def _raise_duplicates(self, repeated: pa.Array) -> None:
        named = repeated.slice(0, MAX_NAMED)
        shown = named if self._id_type is None else pa.ExtensionArray.from_storage(self._id_type, named)
        found = []
        for value, as_shown in zip(named, shown, strict=True):
            rows = [first + i.as_py() for first, chunk in self._ids
                    for i in pc.indices_nonzero(pc.equal(chunk, value))]
            found.append((rows[0], f"{as_shown.as_py()!r} (rows {', '.join(map(str, rows[:MAX_NAMED]))})"))
        details = [text for _, text in sorted(found)]
        more = f" and {len(repeated) - len(named)} more" if len(repeated) > len(named) else ""
        raise SutroInputError(f"id_column {self.id_column!r} has duplicate values: {'; '.join(details)}{more}")

    # -- submit -----------------------------------------------------------------------------

    def cast_for_submit(self, batch: pa.RecordBatch, keep: Iterable[str] = ()) -> pa.RecordBatch:
        """The Function's input columns (declared order) cast to the field types, plus
        the ``keep`` columns unchanged (e.g. ``ROW_ID``). Safe on a whole batch in skip
        mode: a value that cannot be sent (e.g. 2.5 for an integer field) becomes null;
        drop the rows :meth:`check_batch` gave a reason for. NaN in a number field is
        sent as null."""
        by_name = {f.name: f for f in self.fields}
        names = self.submit_columns(batch.schema)
        arrays = []
        for name in names:
            f = by_name[name]
            col = _plain(batch.column(name))
            if f.type in (FieldType.INTEGER, FieldType.NUMBER) and pa.types.is_floating(col.type):
                col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
            if f.type == FieldType.INTEGER and pa.types.is_floating(col.type):  # invalid rows -> null
                col = pc.if_else(_not_whole(col), pa.scalar(None, col.type), col)
            elif f.type == FieldType.INTEGER and pa.types.is_uint64(col.type):
                col = pc.if_else(_too_big(col), pa.scalar(None, col.type), col)
            arrays.append(_cast(col, _TARGET[f.type], name))
        for name in keep:
            names.append(name)
            arrays.append(batch.column(name))
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _not_whole(col: pa.Array) -> pa.Array:
    """Float values that do not fit an int64 exactly (fractions, inf, out of range; NaN too)."""
    out_of_range = pc.or_(pc.greater_equal(col, 2.0**63), pc.less(col, -(2.0**63)))
    return pc.or_(pc.or_(pc.is_inf(col), pc.not_equal(col, pc.floor(col))), out_of_range)


def _too_big(col: pa.Array) -> pa.Array:
    return pc.greater(col, pa.scalar(_INT64_MAX, pa.uint64()))


def _cast(col: pa.Array, target: pa.DataType, name: str) -> pa.Array:
    if col.type == target:
        return col
    try:
        return pc.cast(col, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SutroInputError(f"column {name!r} cannot be sent as {target}: {exc}") from exc
