"""Fixtures of the reliability tests: the pipeline fixtures of ``tests/pipeline``
(a fast-retrying client on the local server, staging on moto S3), an output
location, and a guard that checks a bad input changed nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.pipeline.conftest import client, pipeline, staging  # noqa: F401  (fixtures)


class Output:
    """Where a test's run writes, and whether anything landed there."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.uri = f"s3://{bucket}/out/enriched.parquet"
        self.storage_options = s3.storage_options
        self._fs = s3.filesystem()

    def exists(self) -> bool:
        return bool(self._fs.exists(self.uri.removeprefix("s3://")))

    def options(self) -> dict[str, Any]:
        return {"output_uri": self.uri, "output_storage_options": self.storage_options}


@pytest.fixture
def out(sutro_s3_server: Any, sutro_s3_bucket: str) -> Output:
    return Output(sutro_s3_server, sutro_s3_bucket)


@pytest.fixture
def no_new_job(sutro_clean: Any, out: Output) -> Callable[..., Any]:
    """``with no_new_job(): ...``: the block creates no job and writes no output."""

    @contextmanager
    def guard(paid_only: bool = False) -> Iterator[None]:
        before = sutro_clean.admin.job_count()
        yield
        after = sutro_clean.admin.job_count()
        assert after == before, f"{after - before} job(s) were created for a bad input"
        assert not out.exists(), "a partial output was written"

    return guard
