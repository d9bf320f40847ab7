"""The HTTP clients of the Sutro wire API, apart from the pipeline.

``config`` (URL, key, timeouts, retry policy), ``models`` and ``endpoints``
(sans-IO: pydantic bodies and one ``Call`` per endpoint), ``transport`` (one
request model for sync and async: headers, error mapping, retries), ``sutro``
(:class:`~sutro_providers.client.sutro.SutroClient` and its async twin) and
``download`` (pre-signed artifact downloads).
"""
