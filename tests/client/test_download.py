"""download.py branches a real server cannot easily produce (respx): a connection
dropped mid-body, Range resume with If-Range, a 200 or a changed ETag in reply to
a ranged request, truncation, and the pre-signed URL never leaking."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from sutro_providers import SutroConfig
from sutro_providers.client import download
from sutro_providers.client.download import download_artifact
from sutro_providers.client.models import ResultsUrlResponse
from sutro_providers.errors import SutroConnectionError, SutroError, SutroResultsError

URL = "https://bucket.s3.example.com/results/r.parquet?X-Amz-Signature=deadbeefsig"
BODY = bytes(range(256)) * 40  # 10 KiB
ETAG = '"v1"'
CONFIG = SutroConfig(api_url="http://127.0.0.1:1", api_key="sk_test_download_key")


def _artifact() -> ResultsUrlResponse:
    return ResultsUrlResponse.model_validate(
        {"artifact": {"filename": "r.parquet", "size_bytes": len(BODY)}, "urls": {"get": URL, "head": URL}}
    )


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 KiB chunks, so a drop after a few KiB leaves whole chunks on disk to resume from."""
    monkeypatch.setattr(download, "CHUNK", 1024)


class _Stream(httpx.SyncByteStream):
    """Yields ``data`` then ends, or fails like a reset connection when ``drop``."""

    def __init__(self, data: bytes, drop: bool = True) -> None:
        self.data, self.drop = data, drop

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        if self.drop:
            raise httpx.ReadError("connection reset by peer")


def _Dropping(data: bytes) -> _Stream:  # noqa: N802
    return _Stream(data)


def _head(etag: str | None = ETAG, length: int = len(BODY)) -> httpx.Response:
    headers = {"Content-Length": str(length)} | ({"ETag": etag} if etag else {})
    return httpx.Response(200, headers=headers)


def _ranged(request: httpx.Request, etag: str = ETAG, body: bytes = BODY) -> httpx.Response:
    """A server honouring ``Range`` (206 from the asked offset)."""
    start = int(request.headers["Range"].removeprefix("bytes=").rstrip("-"))
    headers = {"ETag": etag, "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
    return httpx.Response(206, headers=headers, content=body[start:])


@respx.mock
def test_drop_mid_body_resumes_with_range_and_if_range(tmp_path: Path) -> None:
    respx.head(URL).mock(return_value=_head())
    first = httpx.Response(200, headers={"ETag": ETAG}, stream=_Dropping(BODY[:3000]))
    get = respx.get(URL).mock(side_effect=lambda request: first if "Range" not in request.headers else _ranged(request))
    path = download_artifact(CONFIG, _artifact(), tmp_path / "r.parquet")
    assert path.read_bytes() == BODY
    assert get.call_count == 2
    resumed = get.calls[1].request.headers
    assert resumed["Range"] == "bytes=2048-" and resumed["If-Range"] == ETAG  # whole chunks written
    assert all("authorization" not in c.request.headers for c in respx.calls)


@respx.mock
def test_full_200_to_a_ranged_request_restarts_from_zero(tmp_path: Path) -> None:
    respx.head(URL).mock(return_value=_head())
    respx.get(URL).mock(side_effect=[
        httpx.Response(200, headers={"ETag": ETAG}, stream=_Dropping(BODY[:5000])),
        httpx.Response(200, headers={"ETag": '"v2"', "Content-Length": str(len(BODY))}, content=BODY),
    ])
    assert download_artifact(CONFIG, _artifact(), tmp_path / "r.parquet").read_bytes() == BODY


@respx.mock
def test_206_with_a_changed_etag_is_refetched_in_full(tmp_path: Path) -> None:
    new_body = BODY[::-1]
    respx.head(URL).mock(return_value=_head())
    get = respx.get(URL).mock(side_effect=[
        httpx.Response(200, headers={"ETag": ETAG}, stream=_Dropping(BODY[:4000])),
        httpx.Response(206, headers={"ETag": '"v2"'}, content=new_body[3072:]),  # ignored If-Range
        httpx.Response(200, headers={"ETag": '"v2"', "Content-Length": str(len(new_body))}, content=new_body),
    ])
    path = download_artifact(CONFIG, _artifact(), tmp_path / "r.parquet")
    assert path.read_bytes() == new_body  # never a splice of two versions
    assert "Range" not in get.calls[2].request.headers


@respx.mock
def test_drop_without_etag_cannot_resume(tmp_path: Path) -> None:
    respx.head(URL).mock(return_value=_head(etag=None))
    respx.get(URL).mock(return_value=httpx.Response(200, stream=_Dropping(BODY[:100])))
    with pytest.raises(SutroConnectionError) as info:
        download_artifact(CONFIG, _artifact(), tmp_path / "r.parquet")
    assert "r.parquet" in str(info.value) and "deadbeefsig" not in str(info.value)


@respx.mock
def test_repeated_drops_give_up_after_max_resumes(tmp_path: Path) -> None:
    respx.head(URL).mock(return_value=_head())
    get = respx.get(URL).mock(side_effect=lambda request: httpx.Response(206 if "Range" in request.headers else 200, headers={"ETag": ETAG}, stream=_Dropping(b"x")))
    with pytest.raises(SutroConnectionError, match="failed after 3 attempts"):
        download_artifact(CONFIG, _artifact(), tmp_path / "r.parquet", max_resumes=2)
    assert get.call_count == 3


@respx.mock
def test_truncated_download_is_a_results_error(tmp_path: Path) -> None:
    respx.head(URL).mock(return_value=_head(etag=None))
    announced = {"Content-Length": str(len(BODY))}
    respx.get(URL).mock(return_value=httpx.Response(200, headers=announced, stream=_Stream(BODY[:6000], drop=False)))
    with pytest.raises(SutroResultsError, match=f"truncated: got 6000 of {len(BODY)} bytes") as info:
        download_artifact(CONFIG, _artifact(), tmp_path / "r.parquet")
    assert "deadbeefsig" not in str(info.value)


@pytest.mark.parametrize(
    "head, get_status",
    [(httpx.Response(403, json={"Code": "SignatureDoesNotMatch"}), 200), (_head(), 403), (httpx.Response(200), 200)],
    ids=["head-403", "get-403", "head-without-length"],
)
def test_presigned_http_errors_name_the_file_not_the_url(tmp_path: Path, head: httpx.Response, get_status: int) -> None:
    with respx.mock:
        respx.head(URL).mock(return_value=head)
        respx.get(URL).mock(return_value=httpx.Response(get_status, content=b"<Error/>"))
        with pytest.raises(SutroError) as info:
            download_artifact(CONFIG, _artifact(), tmp_path / "r.parquet")
    text = str(info.value)
    assert "r.parquet" in text and "deadbeefsig" not in text and "X-Amz" not in text
