"""The result summary of a run (in the manifest): label counts (classification),
mean and minimum confidence and the rows below the confidence threshold, gathered
batch by batch as the enriched rows stream out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from sutro_providers.columns import CONFIDENCE
from sutro_providers.manifest import ResultSummary


class SummaryAccumulator:
    """Accumulates a :class:`ResultSummary` batch by batch (tee it into the output stream).

    ``kind`` is the Function kind (label counts only for classification); ``prefix``
    the ``output_prefix`` the result columns carry."""

    def __init__(self, *, kind: Literal["classification", "extraction"] | None,
                 confidence_threshold: float, prefix: str = "") -> None:
        self.kind = kind
        self.threshold = confidence_threshold
        self.label = prefix + "label"
        self.confidence = prefix + CONFIDENCE
        self._labels: dict[str, int] = {}
        self._sum = 0.0
        self._count = 0
        self._min: float | None = None
        self._below = 0

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        names = batch.schema.names
        if self.kind == "classification" and self.label in names:
            for item in pc.value_counts(batch[self.label].drop_null()).to_pylist():
                self._labels[item["values"]] = self._labels.get(item["values"], 0) + item["counts"]
        if self.confidence in names:
            conf = pc.drop_null(batch[self.confidence]).cast(pa.float64())
            conf = conf.filter(pc.invert(pc.is_nan(conf)))
            if len(conf):
                self._sum += pc.sum(conf).as_py()
                self._count += len(conf)
                low = pc.min(conf).as_py()
                self._min = low if self._min is None else min(self._min, low)
                self._below += pc.sum(pc.less(conf, self.threshold).cast(pa.int64())).as_py()

    def result(self) -> ResultSummary:
        labels = dict(sorted(self._labels.items(), key=lambda kv: (-kv[1], kv[0])))
        return ResultSummary(
            label_counts=labels if self.kind == "classification" else None,
            mean_confidence=self._sum / self._count if self._count else None,
            min_confidence=self._min,
            rows_below_confidence=self._below if self._count else None,
            confidence_threshold=self.threshold,
        )


def summarize(table_or_batches: pa.Table | Iterable[pa.RecordBatch], *,
              kind: Literal["classification", "extraction"] | None,
              confidence_threshold: float, prefix: str = "") -> ResultSummary:
    """Label counts (classification), mean/min confidence and rows below the threshold."""
    acc = SummaryAccumulator(kind=kind, confidence_threshold=confidence_threshold, prefix=prefix)
    for batch in [table_or_batches] if isinstance(table_or_batches, pa.Table) else table_or_batches:
        acc.add(batch)
    return acc.result()


__all__ = ["SummaryAccumulator", "summarize"]
