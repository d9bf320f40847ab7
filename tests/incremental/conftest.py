"""The incremental tests' fixtures: a client on the local server, staging on moto S3."""

from tests.pipeline.conftest import client, pipeline, staging

__all__ = ["client", "pipeline", "staging"]
