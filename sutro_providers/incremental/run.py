"""What :class:`~sutro_providers.pipeline.EnrichmentPipeline` calls for an
``incremental=True`` run: the staging step (lookup, then staging only the missed
rows; the map of reused rows and the pin on their segments stay for the collect)
and the collector (merge, then the cache write; the pin is released once the run
is completed and its snapshot removed)."""

from __future__ import annotations

import pyarrow as pa

from sutro_providers.client.sutro import SutroClient
from sutro_providers.function_spec import FunctionSpec
from sutro_providers.identity import RunIdentity
from sutro_providers.incremental.keys import cache_namespace, function_revision
from sutro_providers.incremental.lookup import Planner
from sutro_providers.incremental.merge import IncrementalCollector
from sutro_providers.incremental.store import ResultsCache
from sutro_providers.inputs.sources import SourceReader
from sutro_providers.inputs.validation import InputValidator
from sutro_providers.options import EnrichmentOptions
from sutro_providers.staging.area import StagedRun, StagingArea
from sutro_providers.submission.ledger import LedgerRecord


def results_cache(area: StagingArea, options: EnrichmentOptions, spec: FunctionSpec | None,
                  validator: InputValidator) -> ResultsCache:
    """The cache of this Function revision and sampling: ``<staging>/cache/<namespace>/``."""
    revision = function_revision(spec, options.cache_version)
    namespace = cache_namespace(options.function, revision, options.sampling_params,
                                [f.name for f in validator.fields])
    retention = options.cache_retention_days * 86400 if options.cache_retention_days else None
    return ResultsCache(area.fs, f"{area.root}/cache/{namespace[:32]}", display=area.display,
                        unconditional=area.location.unconditional_ledger_writes, retention_seconds=retention)


def stage_incremental(area: StagingArea, identity: RunIdentity, reader: SourceReader, validator: InputValidator,
                      spec: FunctionSpec | None, options: EnrichmentOptions, *, shard_size: int,
                      stage_id: str | None) -> StagedRun:
    """Read the source once (keys; a local copy for the second pass), look the keys up (nothing with
    ``refresh``), stage every row with the found ones left out of the shards."""
    cache = results_cache(area, options, spec, validator)
    planner = Planner(None if options.refresh else cache, validator)
    lookup = None
    pin = pin_id(identity, stage_id)
    try:
        planner.prepare(pin, reader.num_rows)  # the cache's keys are fetched while the source is read
        keys = planner.read(reader)
        lookup = planner.lookup(keys, area.reused_path(identity, stage_id), pin)
        assert planner.replay is not None
        staged = area.stage(identity, planner.replay, validator,
                            shard_size=shard_size, stage_id=stage_id, reused=lookup.mask)
    except BaseException:
        planner.close()  # first: a prefetch still running may write the pin
        if lookup is not None and lookup.map_file is not None:
            area.remove([lookup.map_file])
        if not options.refresh:
            cache.pins.release(pin)
        raise
    finally:
        planner.close()
        pa.default_memory_pool().release_unused()  # the read pass's batches: not kept for the collect
    staged.cost_avoided_usd = lookup.cost_avoided_usd
    return staged


def pin_id(identity: RunIdentity, stage_id: str | None) -> str:
    """The pin of one staging of a run (overlapping attempts stage apart)."""
    return f"{identity.key[:32]}-{stage_id or 'stage'}"


def incremental_collector(client: SutroClient, area: StagingArea, identity: RunIdentity, record: LedgerRecord,
                          options: EnrichmentOptions, spec: FunctionSpec | None,
                          validator: InputValidator) -> IncrementalCollector:
    return IncrementalCollector(client, area, identity, record, options, spec, validator=validator,
                                cache=results_cache(area, options, spec, validator))


__all__ = ["incremental_collector", "pin_id", "results_cache", "stage_incremental"]
