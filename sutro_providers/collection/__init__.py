"""Step 5 of the run: results back into a table. Fetch the results, check every
row id came back once, unpack the outputs, join them to the input by row id."""
