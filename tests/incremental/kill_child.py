"""Child process of the kill test: one incremental run (argv: Sutro URL, key, staging
URL, storage options as JSON, run tag, mode). ``hang`` stops it after the new cache
segment is uploaded and before its catalog commit (prints ``SEGMENT_UPLOADED``) so
the parent can SIGKILL it exactly there; ``run`` runs to the end."""

from __future__ import annotations

import json
import sys
import time

from sutro_providers import SutroClient
from sutro_providers.identity import RunIdentity
from sutro_providers.incremental import store
from sutro_providers.incremental.store import ResultsCache, Segment
from sutro_providers.options import EnrichmentOptions, StagingLocation
from sutro_providers.pipeline import EnrichmentPipeline
from tests.chaos.data import tickets

url, key, staging_url, storage, tag, mode = sys.argv[1:7]
if mode == "hang":
    def hang(self: ResultsCache, segment: Segment, run_key: str | None = None) -> None:
        print("SEGMENT_UPLOADED", segment.name, flush=True)
        time.sleep(600)

    store.ResultsCache.commit = hang  # type: ignore[method-assign]

staging = StagingLocation(url=staging_url, storage_options=json.loads(storage))
with SutroClient(url, key) as client:
    result = EnrichmentPipeline(client, staging).run(
        tickets(200), RunIdentity.of("kill-test", run=tag),
        EnrichmentOptions(function="ticket-triage", incremental=True, poll_interval=0.1, max_poll_interval=0.3,
                          output_uri=f"{staging_url}/out/{tag}.parquet", output_storage_options=json.loads(storage)),
        materialize=False)
print("MANIFEST", result.manifest.model_dump_json(), flush=True)
