"""A run SIGKILLed after its job succeeded and its new cache segment was uploaded,
but before the catalog commit, leaves no visible cache entry; its retry reattaches
to the paid job (no second job), reads its reused rows again from the segment its
lookup matched (held by the run's pin meanwhile), completes the commit, releases
the pin, and a later run reuses every row."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sutro_providers.identity import RunIdentity
from sutro_providers.incremental import results_cache
from sutro_providers.manifest import Manifest
from sutro_providers.pipeline import EnrichmentPipeline
from tests.chaos.data import tickets
from tests.pipeline.conftest import options

CHILD = Path(__file__).resolve().parent / "kill_child.py"
REPO = Path(__file__).resolve().parents[2]


def child(sutro: Any, staging: Any, tag: str, mode: str) -> list[str]:
    return [sys.executable, str(CHILD), sutro.url, sutro.api_key, staging.url, json.dumps(staging.storage_options),
            tag, mode]


@pytest.mark.slow
def test_killed_between_job_success_and_cache_commit(pipeline: EnrichmentPipeline, staging: Any,
                                                     sutro_clean: Any) -> None:
    validator, spec = pipeline._validator(options())
    cache = results_cache(pipeline.area, options(incremental=True), spec, validator)
    known = pipeline.run(tickets(200)[:80], RunIdentity.of("test", known=1), options(incremental=True))
    assert known.manifest.rows_submitted == 80 and sutro_clean.admin.job_count() == 1
    (first,) = cache.load().segments

    args = child(sutro_clean, staging, "k1", "hang")
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    line = ""
    while not line.startswith("SEGMENT_UPLOADED"):
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the child never reached the cache write"
    proc.kill()  # SIGKILL between the segment upload and the catalog commit
    proc.wait(timeout=10)
    segment = line.split()[1]
    assert sutro_clean.admin.job_count() == 2  # the child paid for the 120 rows it did not find

    assert cache.fs.exists(cache.path(segment))  # the upload happened ...
    assert [s.name for s in cache.load().segments] == [first.name]  # ... but no entry is visible
    assert cache.pins.held() == {first.name}  # the killed run's lookup still holds what it matched
    probe = pipeline.run(tickets(200)[150:160], RunIdentity.of("test", probe=1), options(incremental=True))
    assert probe.manifest.rows_reused == 0  # (this probe pays 10 rows and commits them)
    assert sutro_clean.admin.job_count() == 3

    done = subprocess.run(child(sutro_clean, staging, "k1", "run"), cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    retry = Manifest.model_validate_json(done.stdout.split("MANIFEST ", 1)[1])
    assert retry.state == "succeeded" and retry.rows_out == 200
    assert (retry.rows_reused, retry.rows_submitted) == (80, 120)
    assert sutro_clean.admin.job_count() == 3  # the retry reattached to the paid job
    catalog = cache.load()
    assert len(catalog.segments) == 3 and catalog.rows == 80 + 10 + 120
    assert cache.pins.held() == set()  # completed with an output_uri: the pin is released

    again = pipeline.run(tickets(200), RunIdentity.of("test", after=1), options(incremental=True))
    assert again.manifest.rows_reused == 200 and again.manifest.job_ids == []
    assert sutro_clean.admin.job_count() == 3
