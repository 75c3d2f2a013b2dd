"""Runs of consecutive flagged points: how a detector's per-point flags become detections.

Shared by ``DetectResult.from_flags`` and ``MultivariateResult.from_flags`` so that one series and
a matrix group flagged points the same way: a detection is reported at the first point of its run,
and its peak (the run's highest score, the first of ties; NaN scores never win over a number) is
the point whose score, shares and explanation stand for it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

Indices = npt.NDArray[np.intp]


class Runs(NamedTuple):
    """Per detection, the positions (into the input) of its first, last and peak point."""

    starts: Indices
    ends: Indices
    peaks: Indices


def flag_runs(
    is_anomaly: npt.NDArray[np.bool_],
    point_scores: npt.NDArray[np.float64],
    *,
    every_point: bool = False,
) -> Runs:
    """The runs of ``is_anomaly`` (each flagged point alone with ``every_point``)."""
    flagged = np.flatnonzero(is_anomaly)
    if every_point or flagged.size == 0:
        return Runs(flagged, flagged, flagged)
    first = np.empty(flagged.size, dtype=bool)
    first[0] = True
    np.not_equal(flagged[1:], flagged[:-1] + 1, out=first[1:])
    last = np.empty(flagged.size, dtype=bool)
    last[-1] = True
    last[:-1] = first[1:]
    run_of = np.cumsum(first) - 1
    scores = np.asarray(point_scores, dtype=np.float64)[flagged]
    # the highest point of each run: sort by (run, -score), stable, take each run's first
    order = np.lexsort((-scores, run_of))
    leaders = order[np.r_[True, run_of[order][1:] != run_of[order][:-1]]]
    return Runs(flagged[first], flagged[last], flagged[leaders])
