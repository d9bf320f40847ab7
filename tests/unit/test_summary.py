"""summarize and SummaryAccumulator: label counts and confidence statistics."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sutro_providers.collection.summary import SummaryAccumulator, summarize


def test_summarize_classification() -> None:
    table = pa.table({"s_label": ["bug", "bug", "billing", None],
                      "s_confidence": [0.9, 0.4, 0.6, None]})
    s = summarize(table, kind="classification", confidence_threshold=0.5, prefix="s_")
    assert s.label_counts == {"bug": 2, "billing": 1}
    assert s.mean_confidence == pytest.approx(0.6333333)
    assert (s.min_confidence, s.rows_below_confidence, s.confidence_threshold) == (0.4, 1, 0.5)


def test_summarize_streamed_extraction() -> None:
    acc = SummaryAccumulator(kind="extraction", confidence_threshold=0.8)
    for batch in pa.table({"confidence": [0.9, 0.7, 0.95, 0.5]}).to_batches(max_chunksize=2):
        acc.add(batch)
    s = acc.result()
    assert s.label_counts is None and s.rows_below_confidence == 2 and s.min_confidence == 0.5
    empty = summarize(iter([]), kind="classification", confidence_threshold=0.5)
    assert empty.label_counts == {} and empty.mean_confidence is None
