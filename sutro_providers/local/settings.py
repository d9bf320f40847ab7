"""Configuration of one local server process (built by the CLI or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Quota:
    """Per-priority limits reported by ``GET /v1/get-quotas``."""

    row_quota: int
    token_quota: int


@dataclass
class ServerSettings:
    """Everything :func:`sutro_providers.local.app.create_app` needs.

    ``startup_seconds`` is how long a job stays STARTING; ``min_run_seconds``
    is the least time a job stays RUNNING, so tests can observe both states.
    ``fault_rules`` are the rules active at start (same format as
    ``POST /_admin/faults``). ``engine`` is a registered engine name or a
    ``module:attr`` / ``module.attr`` dotted path to an engine factory.
    ``context_tokens`` is the models' context window (tokens: ``ceil(chars / 4)``):
    a longer rendered row fails its job, or is cut to fit when the job asked
    ``truncate_rows``.
    """

    api_key: str
    data_dir: Path
    functions_dir: Path | None = None
    workers: int = 2
    startup_seconds: float = 0.2
    min_run_seconds: float = 0.3
    quotas: tuple[Quota, Quota] = (Quota(1_000, 1_000_000), Quota(10_000_000, 10_000_000_000))
    enforce_quotas: bool = False
    context_tokens: int = 131_072
    fault_rules: list[dict[str, Any]] = field(default_factory=list)
    engine: str = "deterministic"
    chunk_rows: int = 100_000

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.functions_dir is not None:
            self.functions_dir = Path(self.functions_dir)
        if not self.api_key:
            raise ValueError("an API key is required")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")

    def __repr__(self) -> str:  # never print the key
        return f"ServerSettings(data_dir={str(self.data_dir)!r}, functions_dir={self.functions_dir!r}, workers={self.workers})"
