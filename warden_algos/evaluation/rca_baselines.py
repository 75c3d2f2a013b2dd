"""Trivial RCA baselines: what a ranking with no idea of dimensions or explanation scores.

An RCA algorithm's top-1 means little alone: on cases where the root cause is the slice that
moved most, "the slice that moved most" already scores high, and that is the bar an algorithm has
to clear. These are plain ranking functions (a case in, slice keys best first out), not
registered algorithms: nobody should deploy them, and they need no params or runner. They rank
the slices of any :class:`~warden_algos.evaluation.rca_synthetic.RcaCase` (generated or not), and
:func:`evaluate_baseline` scores them exactly as ``evaluate_rca`` scores an algorithm.

The forecast of a slice is Adtributor's default one (``measure_slices`` with default params): at
each anomaly time the median of the slice at the same time on the three previous days (the
median of the slice outside the anomaly times where none of those exists), averaged over the
anomaly times; the actual value is the slice's mean over the same times. So a baseline and
Adtributor see the same numbers, and differ only in what they make of them.

- :func:`largest_absolute_change`: by |A - F|, the slice whose level moved most (favours big
  slices: a 2 % wobble of the largest country beats a small one that vanished);
- :func:`largest_relative_change`: by |A - F| / |F|, the slice that moved most for its size
  (favours small noisy slices, and a slice of another dimension that the outage hit harder than
  the root cause as a whole);
- :func:`random_ranking`: a seeded shuffle, what a ranking that carries no information scores.

numpy only at import.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np

from warden_algos.algorithms.adtributor import AdtributorParams, Slice, measure_slices

from .rca_synthetic import RcaCase, RcaScore, score_rankings

#: A ranking function: one case in, its slice keys out, most likely root cause first.
Ranking = Callable[[RcaCase], list[str]]

_FORECAST = AdtributorParams()


def slice_changes(case: RcaCase) -> list[Slice]:
    """Forecast and actual of every usable slice of ``case`` (Adtributor's default forecast)."""
    return measure_slices(case.metric_of_interest, case.related_metrics, case.anomalies, _FORECAST)


def _by_score(slices: list[Slice], scores: list[float]) -> list[str]:
    """Keys by decreasing score, ties by key (so a ranking never depends on input order)."""
    order = sorted(range(len(slices)), key=lambda i: (-scores[i], slices[i].key))
    return [slices[i].key for i in order]


def largest_absolute_change(case: RcaCase) -> list[str]:
    """Slices by decreasing |A - F|."""
    slices = slice_changes(case)
    return _by_score(slices, [abs(s.actual - s.forecast) for s in slices])


def relative_change(forecast: float, actual: float) -> float:
    """|A - F| / |F|; a slice that appears from a forecast of 0 changed infinitely, one that stays
    at 0 not at all."""
    change = abs(actual - forecast)
    if forecast == 0:
        return float("inf") if change > 0 else 0.0
    return change / abs(forecast)


def largest_relative_change(case: RcaCase) -> list[str]:
    """Slices by decreasing |A - F| / |F|."""
    slices = slice_changes(case)
    return _by_score(slices, [relative_change(s.forecast, s.actual) for s in slices])


def random_ranking(case: RcaCase, seed: int = 0) -> list[str]:
    """Every slice of the case in a random order, seeded by ``seed`` and the case itself (its slice
    keys and anomaly times), so a case gets the same order whatever list it is in."""
    keys = sorted(series.key for series in case.related_metrics)
    salt = zlib.crc32(("\n".join(keys) + case.anomalies.tobytes().hex()).encode())
    rng = np.random.default_rng([seed, salt])
    return [keys[i] for i in rng.permutation(len(keys))]


#: The baselines the benchmark runs beside the algorithms: (label, ranking).
BASELINES: tuple[tuple[str, Ranking], ...] = (
    ("baseline: largest absolute change", largest_absolute_change),
    ("baseline: largest relative change", largest_relative_change),
    ("baseline: random", random_ranking),
)


def evaluate_baseline(name: str, ranking: Ranking, cases: Sequence[RcaCase]) -> RcaScore:
    """Rank every case with ``ranking`` and score it as ``evaluate_rca`` scores an algorithm
    (top-1, top-3, complete@3 on the first three; ``wall_s``: time spent ranking)."""
    rankings: list[list[str]] = []
    wall = 0.0
    for case in cases:
        started = time.perf_counter()
        rankings.append(ranking(case))
        wall += time.perf_counter() - started
    return score_rankings(name, {}, rankings, cases, wall)
