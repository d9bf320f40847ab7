"""Code versions of enriched assets, from what the deployment publishes for a Function.

A Sutro deployment runs "the current published revision" of a Function (resolved
server-side through the Function's ``latest.json`` pointer) and publishes no
revision id. What can be read is the published spec (``GET functions/{name}``: the
local server and deployments that publish specs answer it; others answer 404). So
an enriched asset's code version is:

* ``<sha256 of the published spec, 16 hex>`` (name, inputs, labels or output
  schema, system prompt, default model, prices): republishing the Function with
  any change makes a new version, and Dagster marks the asset's materializations
  as stale;
* without a published spec: ``declared-<hash of function name + input_fields>``
  when input fields are declared, else nothing;
* followed by ``-<cache_version>`` when one is given (bump it to mark every
  materialization stale by hand, e.g. after changing the prompt outside the spec).

The spec is read once per process and Function (at code location load), with one
attempt and short timeouts; a deployment that cannot be reached gives the
fallback version and a warning, never a failed load.

Example::

    from dagster_sutro.code_version import function_code_version
    from sutro_providers.function_spec import InputField

    version = function_code_version("ticket-triage", None, input_fields=[InputField(name="subject")],
                                    cache_version="2")
    assert version.startswith("declared-") and version.endswith("-2")
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sutro_providers.client.config import RetryPolicy, SutroConfig, Timeouts
from sutro_providers.client.sutro import SutroClient
from sutro_providers.errors import SutroError
from sutro_providers.function_spec import FunctionSpec, InputField

_log = logging.getLogger(__name__)
_published: dict[tuple[str, str, str], FunctionSpec | None] = {}


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def function_code_version(function: str, spec: FunctionSpec | None, *,
                          input_fields: Sequence[InputField | Mapping[str, Any]] | None = None,
                          cache_version: str | None = None) -> str | None:
    """The code version of an asset enriched by ``function`` (see the module docstring)."""
    base: str | None = None
    if spec is not None:
        base = _digest(spec.model_dump(mode="json"))
    elif input_fields:
        fields = [InputField.model_validate(f).model_dump(mode="json") if isinstance(f, Mapping)
                  else f.model_dump(mode="json") for f in input_fields]
        base = "declared-" + _digest({"function": function, "inputs": fields})
    parts = [p for p in (base, cache_version) if p]
    return "-".join(parts) or None


def published_spec(api_url: str, api_key: str, function: str, *, timeout: float = 5.0) -> FunctionSpec | None:
    """The spec the deployment publishes for ``function``, or ``None`` (404, unreachable,
    refused: logged as a warning). Read once per process, origin, key and Function."""
    config = SutroConfig.resolve(api_url, api_key, timeouts=Timeouts(connect=timeout, read=timeout),
                                 retry=RetryPolicy(max_attempts=1), user_agent="sutro-providers-dagster")
    cache_key = (config.origin, hashlib.sha256(api_key.encode()).hexdigest()[:12], function)
    if cache_key in _published:
        return _published[cache_key]
    spec: FunctionSpec | None = None
    try:
        with SutroClient(config=config) as client:
            spec = client.get_function(function)
    except SutroError as exc:
        _log.warning(f"could not read the published spec of the Sutro Function {function!r} "
                     f"({type(exc).__name__}: {exc}); its code version falls back to the declared inputs")
    _published[cache_key] = spec
    return spec
