"""ResultJoiner: unpacked results joined to the source rows by row id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sutro_providers.collection.join import ResultJoiner
from sutro_providers.collection.unpack import result_schema, unpack_outputs
from sutro_providers.columns import ROW_ID, SKIP_REASON
from sutro_providers.errors import SutroResultsError
from sutro_providers.function_spec import load_function_spec

TRIAGE = load_function_spec(Path(__file__).resolve().parents[2] / "example_dags/functions/ticket_triage.yaml")
LABELS = ["billing", "bug", "feature_request", "account", "other"]


def _source(n: int, skipped: set[int] = frozenset()) -> pa.Table:  # type: ignore[assignment]
    return pa.table({
        "ticket": [f"t{i}" for i in range(n)],
        ROW_ID: pa.array(range(n), pa.int64()),
        SKIP_REASON: pa.array(["body: null in a required field" if i in skipped else None
                               for i in range(n)], pa.string()),
    })


def _unpacked(ids: list[int]) -> pa.Table:
    outputs = [json.dumps({"label": LABELS[i % 5], "rationale": f"r{i}"}) for i in ids]
    raw = pa.table({"outputs": outputs, "confidence_score": [i / 100 for i in ids],
                    ROW_ID: pa.array(ids, pa.int64())})
    return unpack_outputs(raw, TRIAGE)


def _join(source: pa.Table, shards: list[pa.Table], batch_size: int = 4, **kw: bool) -> pa.Table:
    joiner = ResultJoiner(source.schema, result_schema(TRIAGE), **kw)
    batches = list(joiner.join(source.to_batches(max_chunksize=batch_size), iter(shards)))
    assert all(b.schema.equals(joiner.schema) for b in batches)
    return pa.Table.from_batches(batches, schema=joiner.schema)


def _expected_row(i: int) -> dict[str, object]:
    return {"ticket": f"t{i}", "label": LABELS[i % 5], "confidence": i / 100, "rationale": f"r{i}",
            SKIP_REASON: None}


def test_join_in_order_across_shards() -> None:
    out = _join(_source(11), [_unpacked(list(range(0, 5))), _unpacked(list(range(5, 11)))], batch_size=3)
    assert out.column_names == ["ticket", "label", "confidence", "rationale", SKIP_REASON]
    assert out.to_pylist() == [_expected_row(i) for i in range(11)]


def test_join_shuffled_shards() -> None:
    rng = np.random.default_rng(1)
    first, second = rng.permutation(6).tolist(), (6 + rng.permutation(7)).tolist()
    out = _join(_source(13), [_unpacked(first), _unpacked(second)], batch_size=4, keep_row_id=True)
    assert out[ROW_ID].to_pylist() == list(range(13))
    assert out.drop_columns([ROW_ID]).to_pylist() == [_expected_row(i) for i in range(13)]


def test_join_shuffled_results_in_small_pieces() -> None:
    """Results read back batch by batch: a shard shuffled across several pieces."""
    rng = np.random.default_rng(7)
    order = list(range(10)) + (10 + rng.permutation(15)).tolist() + list(range(25, 30))
    pieces = [_unpacked(order[i:i + 4]) for i in range(0, 30, 4)]
    out = _join(_source(30), pieces, batch_size=6)
    assert out.to_pylist() == [_expected_row(i) for i in range(30)]
    skipped = {3, 11, 12, 28}
    submitted = [i for i in order if i not in skipped]
    pieces = [_unpacked(submitted[i:i + 5]) for i in range(0, len(submitted), 5)]
    rows = _join(_source(30, skipped), pieces, batch_size=7).to_pylist()
    assert [r["label"] is None for r in rows] == [i in skipped for i in range(30)]
    assert [r for i, r in enumerate(rows) if i not in skipped] == [
        _expected_row(i) for i in range(30) if i not in skipped]


def test_join_with_skipped_rows() -> None:
    skipped = {0, 2, 3, 9}
    submitted = [i for i in range(10) if i not in skipped]
    out = _join(_source(10, skipped), [_unpacked(submitted[:3]), _unpacked(submitted[3:])], batch_size=4)
    rows = out.to_pylist()
    for i, row in enumerate(rows):
        if i in skipped:
            assert row == {"ticket": f"t{i}", "label": None, "confidence": None, "rationale": None,
                           SKIP_REASON: "body: null in a required field"}
        else:
            assert row == _expected_row(i)


def test_join_all_skipped_batch_and_no_skip_column() -> None:
    out = _join(_source(8, {0, 1, 2, 3}), [_unpacked([4, 5, 6, 7])], batch_size=4)
    assert out["label"].to_pylist()[:4] == [None] * 4
    plain = _source(3).drop_columns([SKIP_REASON])
    assert _join(plain, [_unpacked([0, 1, 2])])[SKIP_REASON].to_pylist() == [None] * 3


def test_join_result_count_mismatch() -> None:
    with pytest.raises(SutroResultsError, match="the results end before row id 4"):
        _join(_source(6), [_unpacked([0, 1, 2, 3])])
    with pytest.raises(SutroResultsError, match="the results have 2 more rows than were submitted"):
        _join(_source(4), [_unpacked([0, 1, 2, 3]), _unpacked([4, 5])])
    with pytest.raises(SutroResultsError, match=r"row ids \[3\] have no result \(1 rows\)"):
        _join(_source(4), [_unpacked([0, 1, 2, 7])])


def test_join_conforms_spec_less_shards() -> None:
    schema = pa.schema([(ROW_ID, pa.int64()), ("a", pa.string()), ("b", pa.float64())])
    src = _source(4)
    shards = [pa.table({ROW_ID: [0, 1], "a": ["x", "y"]}),
              pa.table({ROW_ID: [2, 3], "a": pa.nulls(2), "b": pa.array([1, 2], pa.int64())})]
    joiner = ResultJoiner(src.schema, schema)
    out = pa.Table.from_batches(list(joiner.join(src.to_batches(), shards)))
    assert out["a"].to_pylist() == ["x", "y", None, None]
    assert out["b"].to_pylist() == [None, None, 1.0, 2.0]
    with pytest.raises(SutroResultsError, match=r"columns \['c'\] that the result schema lacks"):
        list(ResultJoiner(src.schema, schema).join(src.to_batches(), [pa.table({ROW_ID: [0], "c": [1]})]))


def test_join_counts_rows() -> None:
    src = _source(10, {1, 2})
    joiner = ResultJoiner(src.schema, result_schema(TRIAGE))
    list(joiner.join(src.to_batches(max_chunksize=3), [_unpacked([0, *range(3, 10)])]))
    assert (joiner.rows_out, joiner.rows_skipped) == (10, 2)
