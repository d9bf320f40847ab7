"""Opper as a second backend of the enrichment run: the same input, validation,
identity, output table, manifest and idempotency as the Sutro batch path, with one
Opper function call per row instead of batch jobs.

* :mod:`~sutro_providers.opper_rows.options`: :class:`OpperOptions` (the batch
  options plus the Opper function, examples, concurrency, ``on_row_error``);
* :mod:`~sutro_providers.opper_rows.calls`: the bounded async row caller (429 and
  ``Retry-After`` honoured, tags and the run's parent span on each call);
* :mod:`~sutro_providers.opper_rows.journal`: the results journal on the staging
  store (what makes a retry skip rows already answered);
* :mod:`~sutro_providers.opper_rows.runner`: :class:`OpperRowPipeline`, the run.
"""

from sutro_providers.opper_rows.options import OpperOptions
from sutro_providers.opper_rows.runner import OpperRowPipeline

__all__ = ["OpperOptions", "OpperRowPipeline"]
