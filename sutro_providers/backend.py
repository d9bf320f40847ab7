"""The backend seam of the enrichment run: what an orchestrator adapter calls,
whichever service answers the rows.

* :class:`~sutro_providers.pipeline.EnrichmentPipeline`: Sutro batch jobs
  (submit, wait, collect; Airflow can also defer between submit and collect);
* :class:`~sutro_providers.opper_rows.OpperRowPipeline`: Opper, one call per row.

Both take the same source, :class:`~sutro_providers.identity.RunIdentity` and
options (:class:`~sutro_providers.opper_rows.OpperOptions` extends
:class:`~sutro_providers.options.EnrichmentOptions`), validate before any paid
call, write the same enriched table and return the same
:class:`~sutro_providers.manifest.Manifest` (``manifest.backend`` says which).
"""

from __future__ import annotations

from typing import Any, Protocol

from sutro_providers.identity import RunIdentity
from sutro_providers.inputs.sources import TableSource
from sutro_providers.pipeline import EnrichmentResult


class EnrichmentBackend(Protocol):
    def run(self, source: TableSource, identity: RunIdentity, options: Any, *, materialize: bool = True,
            source_storage_options: dict[str, Any] | None = None) -> EnrichmentResult: ...
