"""S3-style pre-signed URLs that point back at the local server.

``/_presigned/<token>/<filename>?X-Amz-Expires=<seconds>&X-Amz-Signature=<hmac>``.
The token names the job and the artifact and carries the absolute expiry;
the signature is an HMAC-SHA256 over token, filename and expiry, keyed by a
secret kept in ``<data-dir>/presign.key`` (so URLs survive a restart). No
``Authorization`` header is needed or looked at. Like real pre-signed URLs
these are bearer credentials: the server never logs their query string.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sutro_providers.local.errors import ApiError


@dataclass(frozen=True)
class PresignedTarget:
    """What a valid pre-signed URL grants access to."""

    job_id: str
    filename: str


class Presigner:
    """Signs and verifies artifact URLs."""

    def __init__(self, data_dir: Path) -> None:
        key_file = Path(data_dir) / "presign.key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        self._key = bytes.fromhex(key_file.read_text().strip())

    def _sign(self, token: str, filename: str, expires: int) -> str:
        msg = f"{token}\n{filename}\n{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def path(self, job_id: str, filename: str, expires_in: int) -> str:
        """The path + query of a URL valid for at least ``expires_in`` seconds.

        The absolute expiry is whole seconds rounded up, so a URL lives between
        ``expires_in`` and ``expires_in + 1`` seconds (never less: rounding down
        would leave a 1-second URL as little as a few milliseconds).
        """
        payload = {"j": job_id, "f": filename, "e": math.ceil(time.time()) + expires_in}
        token = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        sig = self._sign(token, filename, expires_in)
        return f"/_presigned/{token}/{quote(filename)}?X-Amz-Expires={expires_in}&X-Amz-Signature={sig}"

    def verify(self, token: str, filename: str, expires: str | None, signature: str | None) -> PresignedTarget:
        """Check signature and expiry; 403 JSON on failure."""
        try:
            expires_in = int(expires or "")
            padded = token + "=" * (-len(token) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (ValueError, TypeError):
            raise ApiError(403, "signature_mismatch", "The request signature is invalid") from None
        good = self._sign(token, filename, expires_in)
        if not signature or not hmac.compare_digest(good, signature) or payload.get("f") != filename:
            raise ApiError(403, "signature_mismatch", "The request signature is invalid")
        if time.time() > float(payload.get("e", 0)):
            raise ApiError(403, "request_expired", "Request has expired")
        return PresignedTarget(job_id=str(payload["j"]), filename=filename)
