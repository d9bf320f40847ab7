"""check_ids: the in-memory exactly-once check that names the ids (the streaming
check of whole runs: tests/pipeline/test_streaming_id_check.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sutro_providers.collection.id_check import check_ids
from sutro_providers.errors import SutroResultsError


def test_check_ids_accepts_any_order() -> None:
    check_ids(pa.array([0, 1, 2, 3]), pa.array([0, 1, 2, 3]), job_id="job-1")
    check_ids(pa.array([0, 1, 2, 3]), pa.chunked_array([[3, 1], [0, 2]]), job_id="job-1")
    check_ids(pa.array([0, 1], pa.int64()), pa.array([1, 0], pa.int32()), job_id="job-1")


def test_check_ids_missing_duplicated_extra() -> None:
    expected = pa.array(range(20))
    got = pa.array([i for i in range(20) if i not in (3, 5, 7, 9, 11, 13, 15)] + [0, 0, 2, 99, None])
    with pytest.raises(SutroResultsError) as err:
        check_ids(expected, got, job_id="job-7")
    msg = str(err.value)
    assert msg.startswith("the results of job job-7 do not account for every submitted row exactly once")
    assert "1 result rows have a null id" in msg
    assert "7 submitted rows have no result (ids 3, 5, 7, 9, 11 and 2 more)" in msg
    assert "2 ids come back more than once (ids 0, 2)" in msg
    assert "1 result ids were never submitted (ids 99)" in msg
