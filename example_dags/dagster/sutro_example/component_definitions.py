"""The example with components: everything under ``defs/`` (see ``tickets_triaged/defs.yaml``
and, three Functions over two tables, ``enriched/defs.yaml``)."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    # The Sutro steps spend their time waiting on the API: one process is plenty (and starts
    # faster), as in definitions.py. Remove the executor to get Dagster's multiprocess default.
    return dg.Definitions.merge(dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
                                dg.Definitions(executor=dg.in_process_executor))
