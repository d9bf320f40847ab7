"""The base models of every wire body, Sutro's and Opper's alike.

Responses are parsed tolerantly (unknown keys are kept, fields may be filled by
name or alias), because deployments add fields over time; requests are strict
(an unknown key is an error) and are validated client-side before anything is sent.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireResponse(BaseModel):
    """A reply body: unknown keys kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WireRequest(BaseModel):
    """A request body: unknown keys refused."""

    model_config = ConfigDict(extra="forbid")
