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


def _run_index(flagged: Indices) -> Indices:
    """Where each run starts, as positions among the (non-empty) flagged points."""
    first = np.empty(flagged.size, dtype=bool)
    first[0] = True
    np.not_equal(flagged[1:], flagged[:-1] + 1, out=first[1:])
    return np.flatnonzero(first)


def run_highest(
    is_anomaly: npt.NDArray[np.bool_], point_scores: npt.NDArray[np.float64]
) -> tuple[Indices, npt.NDArray[np.float64]]:
    """The hot path (no explanations): each run's first point and highest score (NaN ignored),
    without finding where the highest is."""
    flagged = np.flatnonzero(is_anomaly)
    if flagged.size == 0:
        return flagged, np.empty(0, dtype=np.float64)
    run_index = _run_index(flagged)
    scores = np.asarray(point_scores, dtype=np.float64)[flagged]
    return flagged[run_index], np.fmax.reduceat(scores, run_index)


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
    run_index = _run_index(flagged)
    scores = np.asarray(point_scores, dtype=np.float64)[flagged]
    # O(flagged), no sort: each run's highest score (NaN ignored), then its first point at it
    run_max = np.fmax.reduceat(scores, run_index)
    lengths = np.diff(np.append(run_index, flagged.size))
    positions = np.arange(flagged.size)
    candidates = np.where(scores == np.repeat(run_max, lengths), positions, flagged.size)
    leaders = np.minimum.reduceat(candidates, run_index)
    leaders = np.where(leaders == flagged.size, run_index, leaders)  # a run of NaN scores only
    last = np.append(run_index[1:] - 1, flagged.size - 1)
    return Runs(flagged[run_index], flagged[last], flagged[leaders])
