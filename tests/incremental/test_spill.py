"""BucketSpill (sutro_providers.incremental.spill): every row comes back from its own
bucket, in the order appended, whether appends are spread at once or gathered first."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from sutro_providers.incremental.spill import BucketSpill

SCHEMA = pa.schema([("i", pa.int64()), ("s", pa.string())])


@pytest.mark.parametrize("gather_rows", [0, 1, 500, 10**9])
def test_every_row_comes_back_from_its_bucket_in_append_order(tmp_path: Any, gather_rows: int) -> None:
    spill = BucketSpill(str(tmp_path), "t", SCHEMA, 16, gather_rows=gather_rows)
    rng = np.random.default_rng(gather_rows)
    expected: dict[int, list[int]] = {b: [] for b in range(16)}
    start = 0
    for _ in range(60):
        n = int(rng.integers(0, 90))
        ids = np.arange(start, start + n, dtype=np.int64)
        buckets = rng.integers(0, 16, n)
        table = pa.table({"i": ids, "s": [f"row {i}" for i in ids]}, schema=SCHEMA)
        spill.append(table if n % 2 else table.to_batches()[0] if n else table, buckets)
        for i, b in zip(ids.tolist(), buckets.tolist(), strict=True):
            expected[b].append(i)
        start += n
    spill.finish()
    assert int(spill.rows.sum()) == start
    for bucket in range(16):
        got = spill.read(bucket)
        assert got["i"].to_pylist() == expected[bucket]
        assert got["s"].to_pylist() == [f"row {i}" for i in expected[bucket]]
    assert list(spill.buckets()) == [b for b in range(16) if expected[b]]
