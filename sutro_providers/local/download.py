"""Fetch CSV/Parquet inputs from an http(s) URL (e.g. an S3 pre-signed URL).

A pre-signed URL is a bearer credential: only ``scheme://host/path`` of it is
ever logged or put in an error message (:func:`redact_url`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sutro_providers.local.errors import ApiError

log = logging.getLogger("sutro_providers.local")
_CHUNK = 1 << 20


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path`` without query string, fragment or userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def download(url: str, target: Path, timeout: float = 120.0) -> Path:
    """Stream ``url`` to ``target``; 400 ``input_download_failed`` on any failure."""
    safe = redact_url(url)
    log.info("downloading job inputs from %s", safe)
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise ApiError(
                    400,
                    "input_download_failed",
                    f"could not download inputs from {safe}: HTTP {resp.status_code}",
                )
            with target.open("wb") as fh:
                for chunk in resp.iter_bytes(_CHUNK):
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        raise ApiError(
            400,
            "input_download_failed",
            f"could not download inputs from {safe}: {type(exc).__name__}",
        ) from None
    return target


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PAR1"


def column_names(path: Path) -> list[str]:
    """Column names of a downloaded CSV or Parquet file."""
    try:
        if _is_parquet(path):
            return list(pq.read_schema(path).names)
        with pacsv.open_csv(path) as reader:
            return list(reader.schema.names)
    except (pa.ArrowException, OSError) as exc:
        raise ApiError(400, "invalid_input_file", f"inputs are not a readable CSV or Parquet file: {exc}") from None


def read_columns(path: Path, columns: Sequence[str], as_text: Sequence[str]) -> pa.Table:
    """Read ``columns``; CSV columns named in ``as_text`` are kept as raw text."""
    try:
        if _is_parquet(path):
            return pq.read_table(path, columns=list(columns))
        convert = pacsv.ConvertOptions(
            include_columns=list(columns),
            column_types={c: pa.string() for c in as_text},
            strings_can_be_null=False,
        )
        return pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowException, OSError) as exc:
        raise ApiError(400, "invalid_input_file", f"could not read the inputs file: {exc}") from None
