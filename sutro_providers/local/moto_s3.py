"""A moto S3 server on 127.0.0.1 with s3fs helpers (tests and benches).

Used by the ``sutro_s3_server`` pytest fixture and ``bench/b7_local_server_1m.py``.
Needs ``moto[server]`` (the ``local`` extra) and ``s3fs``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from s3fs import S3FileSystem


class MotoS3:
    """A moto S3 server on 127.0.0.1 plus helpers for s3fs (``start()``/``stop()``)."""

    CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> MotoS3:
        # werkzeug logs every request line, pre-signed query strings included
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` / fsspec ``storage_options``."""
        return {
            "key": self.CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "secret": self.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
        }

    def filesystem(self) -> S3FileSystem:
        """A fresh s3fs filesystem on this server (no listing cache)."""
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **self.storage_options)

    def create_bucket(self, name: str) -> str:
        self.filesystem().call_s3("create_bucket", Bucket=name)
        return name

    def put(self, path: str, data: bytes) -> None:
        """Write ``bucket/key`` with ``data``."""
        with self.filesystem().open(path, "wb") as fh:
            fh.write(data)

    def presigned_url(self, path: str, expires: int = 3600) -> str:
        """A pre-signed GET URL for ``bucket/key`` (a bearer credential: don't log it)."""
        return str(self.filesystem().url(path, expires=expires))
