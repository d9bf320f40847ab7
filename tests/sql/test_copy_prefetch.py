"""The PostgreSQL load reads and encodes its batches on a worker thread while ``COPY``
sends (:mod:`sutro_providers.landing.postgres`); a failure on that thread ends the
``COPY``, rolls the transaction back and is raised as our error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sutro_providers.landing.postgres as postgres
from sutro_providers.database import Database
from sutro_providers.errors import SutroDestinationError
from sutro_providers.landing import LoadRequest, PostgresCopyLoader

pytestmark = pytest.mark.timeout(120)
ROWS, GROUP = 10_000, 1000


def _enriched(path: Path) -> str:
    pq.write_table(pa.table({"id": pa.array(range(ROWS), pa.int64()), "label": pa.array(["new"] * ROWS)}), path,
                   row_group_size=GROUP)
    return str(path)


def _table(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS dst_prefetch")
        db.execute("CREATE TABLE dst_prefetch (id BIGINT, label TEXT, part TEXT)")
        db.execute("INSERT INTO dst_prefetch SELECT g, 'old', 'p1' FROM generate_series(1, 50) g")
        db.execute("INSERT INTO dst_prefetch VALUES (0, 'other', 'p2')")


def _contents(dsn: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn) as db:
        return db.execute("SELECT label, part, count(*), min(id), max(id) FROM dst_prefetch GROUP BY 1, 2 "
                          "ORDER BY 2").fetchall()


class FailingRead(LoadRequest):
    """The fourth batch cannot be read (as when the store drops the connection)."""

    threads: list[str]

    def batches(self) -> Iterator[pa.RecordBatch]:
        for i, batch in enumerate(super().batches()):
            self.threads.append(threading.current_thread().name)
            if i == 3:
                raise OSError("connection reset while reading row group 3")
            yield batch


@pytest.mark.parametrize("where", ["read", "encode"])
def test_an_error_on_the_worker_ends_the_copy_and_rolls_back(pg_server: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    _table(pg_server.dsn)
    path = _enriched(tmp_path / "e.parquet")
    threads: list[str] = []
    sent: list[int] = []  # bytes of each COPY write before the worker's failure arrived
    if where == "read":
        request: LoadRequest = FailingRead("dst_prefetch", ["id", "label"], "part", "p1", path, batch_size=GROUP)
        request.threads = threads  # type: ignore[attr-defined]
    else:
        request = LoadRequest("dst_prefetch", ["id", "label"], "part", "p1", path, batch_size=GROUP)
        encode = postgres.csv_bytes
        calls = iter(range(ROWS))

        def failing_encode(batch: pa.RecordBatch) -> pa.Buffer:
            threads.append(threading.current_thread().name)
            if next(calls) == 5:
                raise pa.ArrowInvalid("cannot encode column 'label' of batch 5")
            return encode(batch)

        monkeypatch.setattr(postgres, "csv_bytes", failing_encode)

    import psycopg

    write = psycopg.Copy.write

    def counted(self: Any, buffer: Any) -> None:
        write(self, buffer)
        sent.append(len(buffer))

    monkeypatch.setattr(psycopg.Copy, "write", counted)
    loader = PostgresCopyLoader(Database("postgresql", uri=pg_server.uri))
    with pytest.raises(SutroDestinationError, match="dst_prefetch") as caught:
        loader.replace(request)
    message = "connection reset while reading row group 3" if where == "read" else "cannot encode column 'label'"
    assert message in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError if where == "read" else pa.ArrowInvalid)
    # the failure came from the worker thread, after the COPY had been sent the batches before it
    assert threads and set(threads) == {"sutro-copy-encode"}
    assert len(sent) == (3 if where == "read" else 5) and all(sent)
    # ... and nothing of the load stayed: the old partition and the other one as they were
    assert _contents(pg_server.dsn) == [("old", "p1", 50, 1, 50), ("other", "p2", 1, 0, 0)]
    assert "sutro-copy-encode" not in {t.name for t in threading.enumerate()}  # the worker was stopped


def test_the_csv_is_encoded_on_the_worker_and_loaded_in_order(pg_server: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _table(pg_server.dsn)
    path = _enriched(tmp_path / "e.parquet")
    threads: list[str] = []
    encode = postgres.csv_bytes

    def recording(batch: pa.RecordBatch) -> pa.Buffer:
        threads.append(threading.current_thread().name)
        return encode(batch)

    monkeypatch.setattr(postgres, "csv_bytes", recording)
    loader = PostgresCopyLoader(Database("postgresql", uri=pg_server.uri))
    assert loader.replace(LoadRequest("dst_prefetch", ["id", "label"], "part", "p1", path, batch_size=GROUP)) == ROWS
    assert threads == ["sutro-copy-encode"] * (ROWS // GROUP)
    assert _contents(pg_server.dsn) == [("new", "p1", ROWS, 0, ROWS - 1), ("other", "p2", 1, 0, 0)]
    import psycopg

    with psycopg.connect(pg_server.dsn) as db:  # COPY kept the file's order
        ids = [r[0] for r in db.execute("SELECT id FROM dst_prefetch WHERE part = 'p1'").fetchall()]
    assert ids == list(range(ROWS))
