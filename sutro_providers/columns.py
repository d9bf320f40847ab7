"""The column names the package adds to, or reads from, the tables it moves.

* :data:`ROW_ID`: the id staging numbers the input rows with (0, 1, 2, ... in input
  order); sent to Sutro with the submitted columns and read back from the results,
  it is what the exactly-once check and the join go by. Reserved: an input table may
  not have a column of this name.
* :data:`SKIP_REASON`: why a row was not submitted (``on_invalid_rows="skip"``);
  null for submitted rows. The last column of the enriched table.
* :data:`REUSED`: ``incremental=True`` only: whether the row's results came from the
  results cache (true) or from this run's jobs (false). Just before ``SKIP_REASON``.
* :data:`CONFIDENCE`: the enriched table's confidence column (after
  ``output_prefix``); an output field named ``confidence`` becomes
  ``output_confidence``.
* :data:`OUTPUTS`, :data:`CONFIDENCE_SCORE`: the columns of a Sutro results file
  that collection reads (one JSON object per row, the server's confidence score).
"""

from __future__ import annotations

ROW_ID = "__sutro_row_id"
SKIP_REASON = "sutro_skip_reason"
REUSED = "sutro_reused"
CONFIDENCE = "confidence"
OUTPUTS = "outputs"
CONFIDENCE_SCORE = "confidence_score"

__all__ = ["CONFIDENCE", "CONFIDENCE_SCORE", "OUTPUTS", "REUSED", "ROW_ID", "SKIP_REASON"]
