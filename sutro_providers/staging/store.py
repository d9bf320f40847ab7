"""Store errors in our terms: whatever an fsspec store raises when it cannot be
reached or refuses (botocore's ``EndpointConnectionError`` when the S3 endpoint is
down, ``OSError`` for denied access or a path through a file) becomes a
:class:`~sutro_providers.errors.SutroStagingError` naming what was being done.
Used by every staging and ledger call that touches the store."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Generator

from sutro_providers.errors import SutroStagingError


@functools.cache
def store_error_types() -> tuple[type[Exception], ...]:
    """What an fsspec store raises when it cannot be reached or refuses: ``OSError``
    and botocore's errors (imported on the first error, not with this module)."""
    try:  # s3fs (aiobotocore) raises botocore's own errors, e.g. EndpointConnectionError
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - a store without botocore
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


@contextlib.contextmanager
def store_errors(what: str) -> Generator[None, None, None]:
    """Raise :class:`SutroStagingError` ("<what>: <error type>: <error>") for a store
    error inside the block (an endpoint that is down, access denied...).
    ``FileNotFoundError`` passes through: callers treat a missing object as an answer."""
    try:
        yield
    except FileNotFoundError:
        raise
    except Exception as exc:
        if not isinstance(exc, store_error_types()):
            raise
        raise SutroStagingError(f"{what}: {type(exc).__name__}: {exc}") from None
