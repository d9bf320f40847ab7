"""Incremental enrichment: pay only for new and changed rows.

With ``EnrichmentOptions(incremental=True)`` a run looks every row's content key
(:mod:`~sutro_providers.incremental.keys`) up in a results cache on the staging store
(:mod:`~sutro_providers.incremental.store`), stages and submits only the rows it
did not find (:mod:`~sutro_providers.incremental.lookup`), and lands every row in
input order, the reused ones marked ``sutro_reused`` (:mod:`~sutro_providers.incremental.merge`).
New results enter the cache only after the run's output was verified whole, in one
atomic catalog commit. The steps the pipeline calls are in
:mod:`~sutro_providers.incremental.run`.
"""

from sutro_providers.incremental.run import incremental_collector, results_cache, stage_incremental

__all__ = ["incremental_collector", "results_cache", "stage_incremental"]
