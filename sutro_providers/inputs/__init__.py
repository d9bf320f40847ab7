"""Step 1 of the run: any tabular source as Arrow record batches (``sources``),
checked against the Function's input fields (``validation``)."""
