"""Secrets end to end: a run (and failing runs) with every logger at DEBUG, then
the logs, exceptions, manifests, ledger, staged and written files and the local
server's log are scanned for the API key and for signed-URL material. And the
key never reaches another host: pre-signed downloads, and the redirects they
follow, carry no Authorization header; an API redirect is not followed."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from sutro_providers import SutroClient
from sutro_providers.client.config import RetryPolicy
from sutro_providers.errors import SutroError
from sutro_providers.identity import RunIdentity
from sutro_providers.pipeline import EnrichmentPipeline
from tests.pipeline.conftest import options, tickets
from tests.reliability.loopback import ArtifactHost, Loopback, ResultsProxy

ROWS = tickets(30)
SIGNATURES = ("X-Amz-Signature=", "X-Amz-Credential=", "Signature=")
# moto's own request log (werkzeug) is the fake S3 server's, not ours: it stays at WARNING
LOGGERS = ("", "sutro_providers", "httpx", "httpcore", "botocore", "s3fs", "fsspec", "urllib3", "aiobotocore")


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def hits(text: str, secrets: list[str]) -> list[str]:
    return [s for s in (*secrets, *SIGNATURES) if s and s in text]


def exception_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), repr(getattr(exc, "detail", None)), repr(pickle.loads(pickle.dumps(exc)).__dict__)]
    return "\n".join(parts)


def test_no_secret_in_logs_errors_manifests_or_files(pipeline: Any, sutro_clean: Any, sutro_s3_server: Any, sutro_s3_bucket: str,
                                                      debug_logs: pytest.LogCaptureFixture) -> None:
    key = sutro_clean.api_key
    out = f"s3://{sutro_s3_bucket}/out/enriched.parquet"
    opts = options(output_uri=out, output_storage_options=sutro_s3_server.storage_options, keep_staged=True)
    texts: list[str] = []
    result = pipeline.run(ROWS, RunIdentity.of("secrets", case="ok"), opts)
    texts.append(result.manifest.model_dump_json())
    job = result.manifest.job_ids[0]
    artifact = pipeline.client.results_url(job)  # the bearer parts of a results URL
    segments = urlsplit(artifact.urls.get).path.split("/")
    bearer = [segments[segments.index("_presigned") + 1]] if "_presigned" in segments else []
    ok = RunIdentity.of("secrets", case="ok")
    signed_input = pipeline.area.sign(pipeline.area.shard_path(ok, 0, pipeline._ledger(ok).load().stage_id))
    bearer.append(urlsplit(signed_input).query)

    failures: list[BaseException] = []
    for rules in ([{"kind": "status", "endpoint": "batch-inference", "status": 524, "count": 1, "phase": "after"}],
                  [{"kind": "status", "endpoint": "reads", "status": 503}],
                  [{"kind": "fail_job", "count": 1, "message": "GPU node lost"}]):
        sutro_clean.admin.set_faults(rules)
        try:
            pipeline.run(ROWS, RunIdentity.of("secrets", case=str(rules)), opts.model_copy(update={"output_uri": None}))
        except SutroError as exc:
            failures.append(exc)
        sutro_clean.admin.clear_faults()
    wrong = EnrichmentPipeline(SutroClient(sutro_clean.url, key + "x", retry=RetryPolicy(max_attempts=1)), pipeline.area.location)
    with pytest.raises(SutroError) as info:
        wrong.run(ROWS, RunIdentity.of("secrets", case="bad-key"), opts)
    failures.append(info.value)
    assert len(failures) >= 3
    texts += [exception_text(e) for e in failures]
    # botocore's own DEBUG line "Sending http request: <AWSPreparedRequest ... headers={'Authorization':
    # 'AWS4-HMAC-SHA256 Credential=..., Signature=...'}>" is the S3 request signing of the staging
    # writes, logged by the AWS SDK itself: kept out of this scan and reported (docs/reliability.md).
    aws_own = [r for r in debug_logs.records if r.name == "botocore.endpoint" and "AWSPreparedRequest" in r.getMessage()]
    texts += [debug_logs.handler.format(r) for r in debug_logs.records if r not in aws_own]
    fs = sutro_s3_server.filesystem()
    files = [p for p in fs.find(sutro_s3_bucket)]
    assert any(p.endswith("ledger.json") for p in files) and any(p.endswith("source.parquet") for p in files)
    texts += [fs.cat_file(p).decode("latin-1") for p in files]
    texts.append(sutro_clean.log_path.read_text(errors="replace"))
    assert any("DEBUG" == r.levelname for r in debug_logs.records)  # the scan saw debug output
    found = {i: hits(t, [key, *bearer]) for i, t in enumerate(texts) if hits(t, [key, *bearer])}
    assert found == {}, f"secrets found in scanned texts: {found}"


def test_presigned_downloads_and_their_redirects_carry_no_key(pipeline: Any, sutro_clean: Any) -> None:
    with ArtifactHost("serve") as final, ArtifactHost("redirect", redirect_base=final.url) as first, \
            ResultsProxy(sutro_clean.url, first.url) as api:
        via = EnrichmentPipeline(SutroClient(api.url, sutro_clean.api_key), pipeline.area.location)
        result = via.run(ROWS, RunIdentity.of("secrets", case="redirect"), options())
        assert result.manifest.rows_out == len(ROWS)
        assert api.loopback.authorized()  # the configured API host does get the key
        assert first.seen and final.seen  # the download went through the redirect
        assert first.loopback.authorized() == [] and final.loopback.authorized() == []


def test_api_redirect_is_not_followed(pipeline: Any) -> None:
    with Loopback(lambda lb, m, p, h, b: (200, {"Content-Type": "application/json"}, b"{}")) as elsewhere, \
            Loopback(lambda lb, m, p, h, b: (307, {"Location": elsewhere.url + p}, b"")) as api:
        client = SutroClient(api.url, "sk_secret_key_123", retry=RetryPolicy(max_attempts=1))
        with pytest.raises(SutroError, match="HTTP 307"):
            EnrichmentPipeline(client, pipeline.area.location).run(ROWS, RunIdentity.of("secrets", case="307"), options())
        assert api.authorized() and elsewhere.seen == []
