"""Child process of the kill test: one Opper run (argv: base URL, key, staging dir, rows)."""

from __future__ import annotations

import sys

import pyarrow as pa

from sutro_providers.identity import RunIdentity
from sutro_providers.opper import OpperConfig
from sutro_providers.opper_rows import OpperOptions, OpperRowPipeline
from sutro_providers.options import StagingLocation

url, key, staging, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
table = pa.table({"subject": [f"s{i}" for i in range(rows)], "body": [f"b{i}" for i in range(rows)]})
options = OpperOptions(function="kill-test", input_fields=[{"name": "subject"}, {"name": "body"}],
                       concurrency=8, journal_chunk_rows=5, journal_flush_seconds=0.2)
result = OpperRowPipeline(OpperConfig(base_url=url, api_key=key), StagingLocation(url=staging)).run(  # type: ignore[arg-type]
    table, RunIdentity.of("kill-test", run="r1"), options)
print("ROWS_OUT", result.manifest.rows_out, flush=True)
