"""Step 2 of the run: the validated batches as Parquet on object storage, sharded,
fingerprinted and pre-signed (``area``)."""
