"""Pre-signed artifact URLs: HEAD, Range, If-Range, expiry and signature checks."""

from __future__ import annotations

import io
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pyarrow.parquet as pq
import pytest

from sutro_providers.local import presign
from sutro_providers.local.errors import ApiError
from sutro_providers.local.presign import Presigner
from tests.local.conftest import TICKETS, assert_error, results, submit, wait_for


@pytest.fixture
def done_job(api: httpx.Client) -> str:
    job_id = submit(api, model="ticket-triage", inputs=TICKETS * 20)
    assert wait_for(api, job_id)[0] == "SUCCEEDED"
    return job_id


def test_results_url_shape_and_artifact_content(api: httpx.Client, done_job: str) -> None:
    resp = api.get(f"/v1/jobs/{done_job}/results-url", params={"format": "parquet", "include_inputs": "True", "include_cumulative_logprobs": "false", "expires_in_seconds": 600})
    body = resp.json()
    assert body["include_inputs"] is True and body["include_cumulative_logprobs"] is False
    assert body["expires_in_seconds"] == 600 and body["job_id"] == done_job
    art = body["artifact"]
    assert set(art) == {"bucket", "key", "filename", "size_bytes"}
    assert art["filename"] == f"sutro-results~{done_job}~inputs=1~logprobs=0.parquet"
    get_url = body["urls"]["get"]
    assert get_url.startswith(str(api.base_url).rstrip("/") + "/_presigned/") and "X-Amz-Signature=" in get_url
    plain = httpx.get(get_url)  # no Authorization header
    assert plain.status_code == 200 and len(plain.content) == art["size_bytes"]
    table = pq.read_table(io.BytesIO(plain.content))
    assert table.to_pydict() == results(api, done_job, include_inputs=True)
    # one artifact per flag combination, reused
    again = api.get(f"/v1/jobs/{done_job}/results-url", params={"include_inputs": "1"}).json()
    assert again["artifact"] == art
    other = api.get(f"/v1/jobs/{done_job}/results-url", params={"include_cumulative_logprobs": "TRUE"}).json()
    assert other["artifact"]["filename"].endswith("inputs=0~logprobs=1.parquet")
    cols = pq.read_table(io.BytesIO(httpx.get(other["urls"]["get"]).content)).column_names
    assert cols == ["outputs", "cumulative_logprobs", "confidence_score"]


def test_head_range_and_if_range(api: httpx.Client, done_job: str) -> None:
    urls = api.get(f"/v1/jobs/{done_job}/results-url").json()["urls"]
    head = httpx.head(urls["head"])
    assert head.status_code == 200 and head.content == b""
    size, etag = int(head.headers["Content-Length"]), head.headers["ETag"]
    full = httpx.get(urls["get"]).content
    assert len(full) == size
    part = httpx.get(urls["get"], headers={"Range": "bytes=100-", "If-Range": etag})
    assert part.status_code == 206 and part.content == full[100:]
    assert part.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    stale = httpx.get(urls["get"], headers={"Range": "bytes=100-", "If-Range": '"other-etag"'})
    assert stale.status_code == 200 and stale.content == full
    assert_error(httpx.get(urls["get"], headers={"Range": f"bytes={size}-"}), 416)
    assert_error(httpx.get(urls["get"], headers={"Range": "lines=1-2"}), 400, "invalid_range")


def test_signature_and_expiry(api: httpx.Client, done_job: str) -> None:
    # Lives between 2 and 3 s (expiry rounded up to a whole second): the first
    # GET has 2 s to land even on a loaded CI machine, and 3.1 s is past it.
    url = api.get(f"/v1/jobs/{done_job}/results-url", params={"expires_in_seconds": 2}).json()["urls"]["get"]
    assert httpx.get(url).status_code == 200
    assert_error(httpx.get(url.replace("X-Amz-Expires=2", "X-Amz-Expires=9999")), 403, "signature_mismatch")
    assert_error(httpx.get(url[:-4] + "0000"), 403, "signature_mismatch")
    assert_error(httpx.get(url.split("?")[0]), 403)
    time.sleep(3.1)
    assert_error(httpx.get(url), 403, "request_expired")


def test_presigned_url_lives_at_least_its_expiry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed at x.999 s, a 1-second URL is still good 1 s later and gone after 2 s."""
    presigner = Presigner(tmp_path)
    clock = [1_000.999]
    monkeypatch.setattr(presign, "time", SimpleNamespace(time=lambda: clock[0]))
    path, query = presigner.path("job-1", "results.parquet", 1).split("?")
    token, filename = path.split("/")[2:4]
    params = dict(item.split("=") for item in query.split("&"))
    for now in (1_000.999, 1_001.999, 1_002.0):
        clock[0] = now
        assert presigner.verify(token, filename, params["X-Amz-Expires"], params["X-Amz-Signature"]).job_id == "job-1"
    clock[0] = 1_002.001
    with pytest.raises(ApiError) as expired:
        presigner.verify(token, filename, params["X-Amz-Expires"], params["X-Amz-Signature"])
    assert expired.value.status == 403 and expired.value.code == "request_expired"


def test_results_url_validation(api: httpx.Client, done_job: str) -> None:
    assert_error(api.get(f"/v1/jobs/{done_job}/results-url", params={"format": "csv"}), 400, "unsupported_format")
    assert_error(api.get(f"/v1/jobs/{done_job}/results-url", params={"expires_in_seconds": 0}), 400)
    assert_error(api.get(f"/v1/jobs/{done_job}/results-url", params={"include_inputs": "maybe"}), 400)
    assert_error(api.get("/v1/jobs/job-missing/results-url"), 404, "job_not_found")
