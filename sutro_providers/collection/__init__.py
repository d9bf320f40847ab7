"""Step 5 of the run: results back into a table, one question per module.

* :mod:`~sutro_providers.collection.fetch`: the shards' job records and results files (HTTP).
* :mod:`~sutro_providers.collection.id_check`: every submitted row id came back exactly once.
* :mod:`~sutro_providers.collection.unpack`: the outputs' JSON -> typed columns.
* :mod:`~sutro_providers.collection.join`: the results joined to the input rows by row id.
* :mod:`~sutro_providers.collection.summary`: label counts and confidence statistics.
* :mod:`~sutro_providers.collection.collector`: the collect step, in that order, written
  out with :func:`sutro_providers.parquet_io.write_parquet`.
"""
