"""Range-aware precision, recall and F1 (Tatbul et al., NeurIPS 2018) beside NAB, from aeon.

NAB rewards the earliest detection in a window and says nothing about how much of an anomaly a
detector covered or how fragmented its alarms are; range metrics do. The implementation is
aeon's (``aeon.benchmarking.metrics.anomaly_detection``, the ``ranges`` extra), maintained
upstream, not ours, at ``range_f_score``'s documented defaults, the ones
``benchmarks/multivariate_quality.py`` reports too: precision without existence reward
(alpha 0), recall with existence reward 0.5, reciprocal cardinality, flat positional bias.

What is compared, per file, on its scored rows only (after NAB's probationary period, as NAB
scores them); a group's files are joined end to end, each followed by one row that is neither
labelled nor detected, so that no range spans two files (the benchmark does the same):

- real ranges: the file's NAB windows, first to last row inclusive (the windows NAB scores);
- predicted ranges: the detected rows, consecutive detected rows forming one range. A detection
  is a point and stays one: widening it by a tolerance would add a parameter that moves every
  score, and snapping it to the window it falls in would build the prediction from the labels.
  So a detector that flags every point of an anomaly earns recall for covering it, and one that
  flags only its onset earns the existence reward (0.5) plus half the share of the window its
  points cover; a detection inside a window has precision 1, one outside it 0.

A group without detections has no range precision (None, as NAB's precision) and a group
without windows no range recall; F1 is then None or 0 exactly as :class:`GroupScore` says.

They are computed on request (``evaluate --range-metrics``) and aeon is imported only then: its
import alone (scikit-learn) costs about 2 s, more than a cached re-run of the whole NAB corpus;
its range metrics are plain Python and numpy (no numba JIT on this path).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import numpy.typing as npt

from .corpus import Corpus, LabelledSeries
from .runner import Evaluation

#: What the JSON says about the figures, so a reader needs no source to interpret them.
DEFINITION = {
    "paper": "Tatbul et al., Precision and Recall for Time Series, NeurIPS 2018",
    "implementation": "aeon.benchmarking.metrics.anomaly_detection",
    "range_precision": {"alpha": 0.0, "cardinality": "reciprocal", "bias": "flat"},
    "range_recall": {"alpha": 0.5, "cardinality": "reciprocal", "bias": "flat"},
    "range_f1": "range_f_score's defaults (beta 1, p_alpha 0, r_alpha 0.5, reciprocal, flat)",
    "real_ranges": "each file's NAB windows (first to last row, inclusive)",
    "predicted_ranges": "runs of consecutive detected rows: a detection is not widened",
    "rows": "scored rows only (after the probationary period); files joined with one empty row",
}


Labels = npt.NDArray[np.int8]


@dataclass(frozen=True)
class RangeScore:
    precision: float | None  # None: nothing detected
    recall: float | None  # None: no windows
    f1: float | None
    real_ranges: int
    predicted_ranges: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "real_ranges": self.real_ranges,
            "predicted_ranges": self.predicted_ranges,
        }


@dataclass(frozen=True)
class RangeScores:
    """One evaluation's range scores: over the whole corpus and per category."""

    overall: RangeScore
    categories: dict[str, RangeScore]


def installed() -> bool:
    return importlib.util.find_spec("aeon") is not None


def not_asked() -> str:
    """Why an evaluation's JSON has no range metrics, and how to get them."""
    if installed():
        return "not asked for: add --range-metrics"
    return "not asked for: add --range-metrics, after pip install 'warden-algos[ranges]' (aeon)"


def aeon_version() -> str:
    return version("aeon")


def file_arrays(
    series: LabelledSeries, detection_rows: Sequence[int] | np.ndarray
) -> tuple[Labels, Labels]:
    """``(y_true, y_pred)`` of one file's scored rows, plus the one empty row that ends it."""
    first = series.probation_rows
    length = max(len(series) - first, 0) + 1
    truth = np.zeros(length, dtype=np.int8)
    for start, end in series.windows:
        start, end = max(start, first), min(end, len(series) - 1)
        if start <= end:
            truth[start - first : end - first + 1] = 1
    predicted = np.zeros(length, dtype=np.int8)
    rows = np.asarray(detection_rows, dtype=np.int64)
    rows = rows[(rows >= first) & (rows < len(series))]
    predicted[rows - first] = 1
    return truth, predicted


def _runs(flags: Labels) -> int:
    """How many runs of 1 ``flags`` holds (it ends with a 0)."""
    return int(np.count_nonzero(np.diff(flags, prepend=0) == 1))


def range_score(y_true: Labels, y_pred: Labels) -> RangeScore:
    """aeon's range precision, recall and F1 of one group's joined arrays (see the module)."""
    from aeon.benchmarking.metrics.anomaly_detection import (  # pyright: ignore[reportMissingImports]
        range_f_score,
        range_precision,
        range_recall,
    )

    real, predicted = _runs(y_true), _runs(y_pred)
    # aeon answers 0.0 (with a warning) when nothing is flagged: that is "no precision" here
    precision = float(range_precision(y_true, y_pred, alpha=0.0)) if predicted else None
    recall = None
    if real:
        recall = float(range_recall(y_true, y_pred, alpha=0.5)) if predicted else 0.0
    if recall is None:
        f1 = None
    elif not precision or not recall:
        f1 = 0.0
    else:
        f1 = float(range_f_score(y_true, y_pred))
    return RangeScore(precision, recall, f1, real, predicted)


def range_scores(corpus: Corpus, evaluation: Evaluation) -> RangeScores:
    """The range scores of ``evaluation``'s detections on ``corpus``, overall and per category."""
    arrays = [
        file_arrays(series, run.rows)
        for series, run in zip(corpus.series, evaluation.runs, strict=True)
    ]

    def joined(indices: Sequence[int]) -> RangeScore:
        truth = np.concatenate([arrays[i][0] for i in indices])
        predicted = np.concatenate([arrays[i][1] for i in indices])
        return range_score(truth, predicted)

    categories = {
        category: joined([i for i, s in enumerate(corpus.series) if s.category == category])
        for category in corpus.categories()
    }
    return RangeScores(joined(range(len(arrays))), categories)


def attach(result: dict[str, Any], scores: RangeScores) -> None:
    """Put ``scores`` into an evaluation's JSON (``Evaluation.as_dict``): ``range`` beside
    ``nab`` in ``overall`` and in each category."""
    result["overall"]["range"] = scores.overall.as_dict()
    for name, score in scores.categories.items():
        result["categories"][name]["range"] = score.as_dict()
