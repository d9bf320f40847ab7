"""What a batch run leaves behind: the job ids and link in XCom, the destination
table, the asset events and the OpenLineage facets.

:class:`BatchOutputs` is the layer of
:class:`~airflow_provider.operators.batch.SutroBatchFunctionOperator` between the
core's results and Airflow: right after submit it pushes the XCom keys
``sutro_job_ids`` and ``sutro_job_url`` (the "Sutro job" link works while the task
is deferred); once the results are collected it loads the destination table (the
pre-flight check before submit included, :mod:`airflow_provider.sql`), logs the
run, adds the run-time asset events (:mod:`airflow_provider.assets`) and returns the
manifest, the task's ``return_value``. The lineage facets come from
:mod:`airflow_provider.lineage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider import assets
from airflow_provider.links import XCOM_JOB_IDS, XCOM_JOB_URL, SutroJobLink
from airflow_provider.operators.batch_arguments import BatchArguments
from airflow_provider.sql import destination_loader, land_partition, preflight
from sutro_providers.inputs.sources import open_source
from sutro_providers.landing import Loader, enriched_schema

if TYPE_CHECKING:
    from airflow.sdk import Context

    from sutro_providers.identity import RunIdentity
    from sutro_providers.manifest import Manifest
    from sutro_providers.options import EnrichmentOptions
    from sutro_providers.pipeline import EnrichmentResult


class BatchOutputs(BatchArguments):
    """XCom, destination table, asset events and lineage of the batch operator (see the module docstring)."""

    sutro_job_url: str | None = None
    """The first job's URL once this try has a job (what the "Sutro job" link shows)."""

    def _submitted(self, context: Context, identity: RunIdentity, manifest: Manifest) -> None:
        self._manifest = manifest
        if manifest.job_ids and self.do_xcom_push:
            self._push_job_xcoms(context, manifest.job_ids)
        self.log.info("Sutro run %s: %s, job(s) %s", identity.short, manifest.state, manifest.job_ids or "none")

    def _push_job_xcoms(self, context: Context, job_ids: list[str]) -> None:
        ti = context["ti"]
        url = self.hook.job_url(job_ids[0])
        ti.xcom_push(key=XCOM_JOB_IDS, value=list(job_ids))
        ti.xcom_push(key=XCOM_JOB_URL, value=url)
        ti.xcom_push(key=SutroJobLink().xcom_key, value=url)  # the link works while deferred
        self.sutro_job_url = url

    def _land(self, context: Context, identity: RunIdentity, result: EnrichmentResult) -> dict[str, Any]:
        """Load the destination table from the enriched Parquet (streamed there by the
        collect, never held whole) and return the manifest."""
        from sutro_providers.pipeline import is_empty  # loaded with the pipeline, not at DAG parse time

        manifest = self._manifest = result.manifest
        if self.destination_table:  # an empty interval still replaces the run's rows (with none)
            options = self.build_options()
            self._write_destination(context, None if is_empty(manifest) else manifest.output_uri or options.output_uri,
                                    options)
        if not is_empty(manifest):
            self._log_landed(identity, manifest)
        assets.emit_run_events(self, context, manifest)
        return manifest.to_json_dict()

    def _log_landed(self, identity: RunIdentity, manifest: Manifest) -> None:
        self.log.info("Sutro run %s: %s rows enriched, cost %s USD, output %s",
                      identity.short, manifest.rows_out, manifest.cost_usd, manifest.output_uri)

    # -- destination table
    def destination_loader(self) -> Loader:
        """The loader of ``destination_conn_id`` (override to use your own, e.g. a
        :class:`~sutro_providers.landing.SnowflakeCopyLoader`)."""
        return destination_loader(self.destination_conn_id or "")

    def _preflight(self, source: Any, options: EnrichmentOptions) -> None:
        """The destination can take the enriched rows, checked (or created) before submit."""
        if not self.destination_table:
            return
        spec = self.pipeline.function_spec(self.function_name)
        schema = enriched_schema(open_source(source, storage_options=self._source_storage()).schema, spec, options)
        preflight(self.destination_loader(), self.destination_table, schema, partition_column=self.partition_column,
                  columns=self.destination_columns, create=self.create_destination_table, complete=spec is not None)

    def _write_destination(self, context: Context, uri: str | None, options: EnrichmentOptions) -> None:
        land_partition(self.destination_loader(), self.destination_table or "", uri,
                       partition=str(self.partition_value or context["ti"].run_id),
                       partition_column=self.partition_column, columns=self.destination_columns,
                       storage_options=options.output_storage_options,
                       batch_size=self.insert_chunk_size or options.batch_size, log=self.log)

    # -- lineage
    def get_openlineage_facets_on_start(self) -> Any:
        """Input: the source URI or the SQL tables; output: ``output_uri`` and the destination
        table; schema and column lineage facets when known before the run (see :mod:`airflow_provider.lineage`)."""
        from airflow_provider.lineage import batch_enrichment_at_start, batch_lineage

        return batch_lineage(self, enrichment=batch_enrichment_at_start(self))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The datasets of the start event with the schema of the enriched table written,
        column lineage, and the job ids (``externalQuery``)."""
        from airflow_provider.lineage import batch_enrichment_at_end, batch_lineage

        job_ids = self._manifest.job_ids if self._manifest is not None else []
        return batch_lineage(self, job_ids, self.hook.get_config().origin if job_ids else None,
                             enrichment=batch_enrichment_at_end(self))

