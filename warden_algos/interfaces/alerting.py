"""The alerting stage: per-point scores to calibrated, grouped, re-baselined alerts.

Any detector gets it by declaring nothing: a request sets ``params.alerting``
(``alerting_params.AlertingParams``) and the runner applies this stage to the per-point scores the
detector computed (``point_capture``), or, for a detector that builds its result another way, to
its distance from its own band. What it does, point by point, in time order (so that a stream
would reach the same alerts):

1. **Calibrate.** A score's tail probability under the trailing history of the series' points:
   the share of the history scoring at least as high (plus one, over the history plus one, so it
   is never 0); beyond the history's top 2 % (at least 20 points) an exponential tail fitted to
   those points' excesses extrapolates, since a few thousand points cannot tell 1 in 10,000 from
   1 in a million. An incident's points join the history only once it is over, so it never makes
   itself look normal while it lasts; they do join it then, since a history that kept out every
   high score would keep lowering its own threshold until every point alerted.
2. **Threshold.** A point is a candidate when its tail probability is at most
   ``tail_probability(sensitivity)`` (and, with ``only_flagged``, the detector flags it).
3. **Group.** Candidates less than ``quiet`` points apart are one incident (a flapping change
   is one incident, not one per crossing); it alerts once, at the first point where
   ``min_duration`` consecutive candidates have been seen and the ``cooldown`` since the
   previous alert is over.
4. **Re-baseline.** An incident that has spanned ``rebaseline`` points, at least half of them
   candidates, is a level shift: the history restarts from its points, so the new level is the
   norm and alerts resume when it has enough history of its own.

The alert's score is the calibrated one, 1 - tail probability (0.999: one point in a thousand of
the recent history scores as high). Cost: about 6 µs a point (``estimate``).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .alerting_params import AlertingParams, tail_probability
from .budget import WorkEstimate
from .errors import InvalidParams
from .point_capture import PointScores
from .types import DetectResult, Explanation, F64Array, I64Array

#: The share of the history whose excesses fit the extrapolated tail, and its least size.
TAIL_SHARE = 0.02
TAIL_MIN_POINTS = 20
#: The smallest tail probability reported (its calibrated score stays below 1).
SMALLEST_TAIL = 1e-12


class Alerts(NamedTuple):
    """Per alert, positions into the input: where it was raised, its incident's first point, its
    lowest tail probability (the peak) and last point; and its calibrated score."""

    at: npt.NDArray[np.intp]
    starts: npt.NDArray[np.intp]
    peaks: npt.NDArray[np.intp]
    ends: npt.NDArray[np.intp]
    calibrated: F64Array


def estimate(points: int, params: AlertingParams) -> WorkEstimate:
    """About 6 µs a point in the loop (measured: ``benchmarks/alerting.py``), plus the sorted
    history's insertions (a memmove of up to ``window`` pointers), and five arrays of the input's
    length."""
    return WorkEstimate(
        peak_bytes=points * 40 + params.window * 64,
        operations=points * (7_000 + params.window // 4),
    )


class _History:
    """The trailing history of non-candidate scores, kept sorted for ranks."""

    def __init__(self, size: int) -> None:
        self.order: deque[float] = deque()
        self.sorted: list[float] = []
        self.size = size

    def add(self, score: float) -> None:
        self.order.append(score)
        bisect.insort(self.sorted, score)
        if len(self.order) > self.size:
            old = self.order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def restart(self, scores: list[float]) -> None:
        self.order.clear()
        self.sorted.clear()
        for score in scores[-self.size :]:
            self.add(score)

    def tail(self, score: float) -> float:
        """The estimated probability that a history point scores at least ``score``."""
        ranked = self.sorted
        m = len(ranked)
        k = min(m, max(TAIL_MIN_POINTS, math.ceil(TAIL_SHARE * m)))
        threshold = ranked[m - k]
        if score > threshold:
            mean_excess = math.fsum(ranked[m - k :]) / k - threshold
            if mean_excess > 0:
                probability = k / (m + 1) * math.exp(-(score - threshold) / mean_excess)
                return max(probability, SMALLEST_TAIL)
        at_least = m - bisect.bisect_left(ranked, score)
        return (at_least + 1) / (m + 1)


def find_alerts(
    scores: F64Array, flags: npt.NDArray[np.bool_] | None, params: AlertingParams
) -> Alerts:
    """The stage on one series' per-point scores (NaN: no opinion, never a candidate)."""
    alpha = tail_probability(params.sensitivity)
    history = _History(params.window)
    values = scores.tolist()
    flagged = flags.tolist() if params.only_flagged and flags is not None else None
    at: list[int] = []
    starts: list[int] = []
    peaks: list[int] = []
    ends: list[int] = []
    calibrated: list[float] = []
    open_ = False  # an incident is going on
    start = peak = last = 0  # its first, lowest-probability and latest candidate
    run = candidates = 0  # its consecutive candidates so far; all its candidates
    lowest = 1.0
    alerted = False
    last_alert = -(10**18)
    held: list[float] = []  # its points' scores: they join the history when it is over

    def close(restart: bool) -> None:
        nonlocal open_, alerted
        if alerted:
            ends[-1] = last
        if restart:  # a confirmed level shift: its points are the new norm
            history.restart(held)
        else:
            for one in held:
                history.add(one)
        held.clear()
        open_ = alerted = False

    for t, score in enumerate(values):
        finite = score == score and not math.isinf(score)
        probability = 1.0
        if score == score and len(history.order) >= params.min_history:  # not NaN
            probability = history.tail(score)
        candidate = probability <= alpha and (flagged is None or flagged[t])
        if not candidate:
            run = 0
            if not open_:
                if finite:
                    history.add(score)
                continue
            if finite:
                held.append(score)
            if t - last >= params.quiet:
                close(restart=False)
            continue
        if not open_:
            open_, start, peak, lowest, candidates, run = True, t, t, probability, 0, 0
        elif probability < lowest:
            peak, lowest = t, probability
        last = t
        run += 1
        candidates += 1
        if finite:
            held.append(score)
        if alerted:
            peaks[-1] = peak
            calibrated[-1] = 1.0 - lowest
        elif run >= params.min_duration and t - last_alert > params.cooldown:
            at.append(t)
            starts.append(start)
            peaks.append(peak)
            ends.append(t)
            calibrated.append(1.0 - lowest)
            alerted, last_alert = True, t
        span = t - start + 1
        if params.rebaseline and span >= params.rebaseline and 2 * candidates >= span:
            close(restart=True)
    if open_ and alerted:
        ends[-1] = last
    return Alerts(
        np.asarray(at, dtype=np.intp),
        np.asarray(starts, dtype=np.intp),
        np.asarray(peaks, dtype=np.intp),
        np.asarray(ends, dtype=np.intp),
        np.asarray(calibrated, dtype=np.float64),
    )


def _band_distance(result: DetectResult, values: F64Array) -> F64Array | None:
    """A detector that offered no per-point scores: how far each value is from its band, in
    half-widths of the band on that side (1 = the band's edge), when it gives one."""
    if result.expected is None or result.lower is None or result.upper is None:
        return None
    expected, lower, upper = result.expected, result.lower, result.upper
    with np.errstate(divide="ignore", invalid="ignore"):
        above = (values - expected) / (upper - expected)
        below = (expected - values) / (expected - lower)
    distance = np.where(values >= expected, above, below)
    return np.where(np.isfinite(distance), distance, np.nan)


def apply_alerting(
    algorithm: str,
    result: DetectResult,
    timestamps: I64Array,
    values: F64Array,
    captured: PointScores,
    params: AlertingParams,
    explain: bool,
) -> DetectResult:
    """``result`` with its detections replaced by the stage's alerts (band kept)."""
    scores, flags = captured.scores, captured.flags
    if scores is None:
        scores = _band_distance(result, values)
        flags = None
    if scores is None:
        raise InvalidParams(
            f"{algorithm} gives no per-point scores and no band, which alerting calibrates: "
            "drop params.alerting, or build the result with DetectResult.from_flags/from_mask",
            field="params.alerting",
        )
    alerts = find_alerts(scores, flags, params)
    explanations = None
    if explain:  # each explained from its alert on (a peak before it is folded into it)
        peaks = np.maximum(alerts.peaks, alerts.at)
        explanations = Explanation.of_runs(timestamps, alerts.at, alerts.ends, peaks)
    return result._replace(
        timestamps=np.ascontiguousarray(timestamps[alerts.at], dtype=np.int64),
        scores=alerts.calibrated,
        explanations=explanations,
    )
