"""Robust rolling z-score: distance from the trailing window's median, in scaled MADs.

Trainable: the state is the last ``window`` values and the last ``window`` residuals (exactly what
the next point's windows hold) and the scale and floor the history fixed. Never imports pandas at
module level: only the batch path (``detect``, fitting, large chunks) does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from warden_algos.interfaces import (
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
)
from warden_algos.interfaces.errors import IncompatibleState
from warden_algos.interfaces.state import AlgorithmState, StateArray
from warden_algos.interfaces.streaming import continuing_flags, still_open
from warden_algos.interfaces.trainable import TrainableDetector

from .common import Prepared, empty_result, finish_band, prepare
from .rolling import check_min_periods, lagged
from .streaming import frozen_units_ok, learnt_now, prepared_as_fitted, scalar, trailing_window

#: MAD * this = standard deviation, for Gaussian noise.
MAD_TO_SIGMA = 1.4826
#: Mean absolute deviation * this = standard deviation, for Gaussian noise (sqrt(pi / 2)).
MEAN_AD_TO_SIGMA = 1.2533
#: A chunk of at most this many points is scored point by point from the state's windows (numpy
#: order statistics, O(window) a point); a larger one by the batch path over the state's windows
#: + the chunk (pandas' rolling skiplists, O(log window) a point, plus the fixed cost of refilling
#: two windows). Measured, the two cost the same at 16-30 points for windows of 30 to 20,000.
DIRECT_POINTS = 16


class MadParams(DetectorParams):
    window: int = Field(
        2000, ge=3, le=1_000_000, description="Points in the trailing window (the point excluded)."
    )
    k: float = Field(
        3.5, gt=0, le=1000, description="Flag points more than k robust sigmas from the median."
    )
    min_periods: int | None = Field(
        None,
        ge=3,
        description="Valid points (and valid residuals) the window needs before a point is scored, "
        "at most window. Default: half the window, at most 100 (enough points for the 1% tail "
        "quantile to mean something).",
    )
    tail_rate: float = Field(
        0.01,
        ge=0,
        lt=0.5,
        description="Sigma is also estimated from the (1 - tail_rate) quantile of the window's "
        "absolute residuals (divided by the matching Gaussian quantile) and the larger estimate "
        "is used: the same for Gaussian noise, but a metric whose excursions are routinely "
        "larger (bursts, on/off patterns) needs proportionally larger ones to alarm. 0 turns this "
        "off (pure MAD).",
    )
    min_mad: float = Field(
        0.0,
        ge=0,
        description="Floor for the robust sigma (1.4826 * MAD), in value units. With 0, a window "
        "whose MAD is 0 falls back to its mean absolute deviation, and a perfectly flat window "
        "uses a tiny floor relative to the series' scale, so any departure from a constant is "
        "flagged.",
    )

    @model_validator(mode="after")
    def _min_periods_fits(self) -> MadParams:
        check_min_periods(self.min_periods, self.window)
        return self

    @property
    def warm_up(self) -> int:
        if self.min_periods is not None:
            return self.min_periods
        return max(3, min(100, self.window // 2))

    @property
    def tail_quantile(self) -> float | None:
        """The residuals' quantile of the tail estimate, or None when it is off. A rate too small
        to move 1 - rate/2 off 1.0 in float64 has no tail to estimate (its normal quantile is
        infinite): it is the pure MAD, as tail_rate=0."""
        return 1.0 - self.tail_rate if 1.0 - self.tail_rate / 2.0 < 1.0 else None


class MadState(AlgorithmState):
    """What the next point's windows hold, and the units the history fixed."""

    values: StateArray = Field(
        description="The last `window` values (in the fitted scale's units), oldest first; NaN "
        "where missing or before the series' start."
    )
    residuals: StateArray = Field(
        description="Their residuals |value - its trailing median|, oldest first; NaN where "
        "missing or not yet scored."
    )
    scale: StateArray = Field(
        description="The history's scale (values are divided by it; 1 unless huge or tiny); NaN "
        "until a valid point has been seen."
    )
    floor: StateArray = Field(
        description="The history's automatic sigma floor, in those units; NaN until a valid point "
        "has been seen."
    )
    open_incident: bool = Field(False, description="The last point seen was flagged.")


class Scores(NamedTuple):
    """Per point: the flag, the z-score, the residual (for the next windows) and the band."""

    is_anomaly: npt.NDArray[np.bool_]
    z: F64Array
    residual: F64Array
    expected: F64Array
    lower: F64Array
    upper: F64Array


class Mad(TrainableDetector[MadParams, MadState]):
    """Robust rolling z-score: how far each point is from the median of the previous ``window``
    points (the point itself excluded), in robust standard deviations. Flags z > k, scores by z,
    and returns the band median ± k·sigma for every point (NaN during warm-up).

    Sigma is the larger of two estimates over the last ``window`` one-step residuals
    |x_j - median_j| (each earlier point's distance from *its own* trailing median):
    1.4826 * their median (the MAD) and their (1 - ``tail_rate``) quantile divided by the matching
    Gaussian quantile (2.58 for the default 1%). For Gaussian noise both estimate the standard
    deviation, so this is a plain robust z-score; but where excursions are routine (hourly bursts,
    on/off patterns, a heavy tail) the tail estimate wins and an excursion must be k times larger
    than the usual ones to alarm, which is what keeps a robust detector quiet on real metrics
    (on the NAB corpus the pure MAD, ``tail_rate=0``, scores below zero; the defaults score about
    51). Using residuals from each point's own trailing median, instead of re-centring the window
    on the newest median, gives the window's MAD to within a few percent for stationary noise
    (window ≥ 30), is unaffected by slow drift, and costs O(n log window) rolling passes instead of
    a median per window. Where the MAD is 0 (counts that are mostly constant) and the tail is off,
    the mean absolute residual * 1.2533 is used; ``min_mad`` (or a tiny automatic floor) bounds
    sigma from below.

    Use it instead of ``ksigma`` when the metric has outliers, bursts or heavy tails: a spike moves
    neither the median nor the sigma (while the window holds fewer such points than
    window * tail_rate), so it neither hides the next spike nor raises the band for the following
    ``window`` points. It follows drift within about half a window. Do not use it for
    metrics with a daily cycle larger than the noise (use a seasonal detector), and expect a level
    shift to be flagged once, then absorbed after half a window.

    Missing values (NaN, and ±inf) are never flagged and are skipped in the window statistics;
    ``min_periods`` counts valid points only.

    Trainable: fit keeps the last ``window`` values and residuals, and the scale and floor the
    history fixed (the batch call learns them from the whole series; streaming judges new points
    in the history's units). Streamed chunks give the batch call's detections and bands: the same
    order statistics of the same window contents, bit for bit; only a window whose MAD and tail
    are both 0 falls back to a mean summed afresh, not by pandas' running sum (last-bit
    differences).
    """

    name = "mad"
    summary = "Rolling median/MAD robust z-score over a trailing window; flags z > k."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        if values.shape[0] == 0:
            return empty_result()
        prepared = prepare(values)
        none = np.empty(0)
        scored = self._rolling(none, none, prepared.values, self._floor(prepared), prepared.scale)
        return DetectResult.from_flags(
            timestamps,
            scored.is_anomaly,
            scored.z,
            every_point=p.every_point,
            expected=scored.expected,
            lower=scored.lower,
            upper=scored.upper,
        )

    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> MadState:
        nothing = scalar(np.nan)
        window = np.full(self.params.window, np.nan)
        unfitted = MadState(values=window, residuals=window, scale=nothing, floor=nothing)
        return self.detect_next(dimensions, timestamps, values, unfitted)[1]

    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: MadState
    ) -> tuple[DetectResult, MadState]:
        p = self.params
        past_x, past_r = self._windows(state)
        prepared = prepared_as_fitted(values, state.scale, state.floor)
        x, floor, n = prepared.values, self._floor(prepared), values.shape[0]
        if n <= DIRECT_POINTS:
            scored = self._direct(past_x, past_r, x, floor, prepared.scale)
        else:
            scored = self._rolling(past_x, past_r, x, floor, prepared.scale)
        result = continuing_flags(
            timestamps,
            scored.is_anomaly,
            scored.z,
            state.open_incident,
            every_point=p.every_point,
            expected=scored.expected,
            lower=scored.lower,
            upper=scored.upper,
        )
        learnt = learnt_now(state.scale, prepared)
        after = MadState(
            values=trailing_window(past_x, x, p.window),
            residuals=trailing_window(past_r, scored.residual, p.window),
            scale=scalar(prepared.scale) if learnt else state.scale,
            floor=scalar(prepared.floor) if learnt else state.floor,
            open_incident=still_open(scored.is_anomaly, state.open_incident),
        )
        return result, after

    def _windows(self, state: MadState) -> tuple[F64Array, F64Array]:
        """The state's windows, refused unless they are this window's length (the scoring
        arithmetic relies on it) and its frozen units are ones a fit writes."""
        w = self.params.window
        arrays = [np.asarray(a, dtype=np.float64) for a in (state.values, state.residuals)]
        if any(a.shape != (w,) for a in arrays):
            raise IncompatibleState(
                f"the state's windows are not {w} points long: it is not a state of mad with "
                "these params",
                field="state",
            )
        if not frozen_units_ok(state.scale, state.floor):
            raise IncompatibleState(
                "the state's scale and floor are not ones a fit writes", field="state"
            )
        return arrays[0], arrays[1]

    def _floor(self, prepared: Prepared) -> float:
        p = self.params
        return p.min_mad / prepared.scale if p.min_mad > 0 else prepared.floor

    def _rolling(
        self, past_x: F64Array, past_r: F64Array, x: F64Array, floor: float, scale: float
    ) -> Scores:
        """The batch path: pandas' rolling windows over the past values/residuals (empty for a
        stateless call) then ``x``, keeping the outputs for ``x``'s points."""
        import pandas as pd

        p = self.params
        m = past_x.shape[0]
        series = np.concatenate([past_x, x]) if m else x
        rolled = pd.Series(series).rolling(p.window, min_periods=p.warm_up).median().to_numpy()
        median = lagged(rolled)[m:]
        with np.errstate(all="ignore"):  # NaN (warm-up, missing) flows through; handled below
            residual = np.abs(x - median)
            residuals = np.concatenate([past_r, residual]) if m else residual
            rolling = pd.Series(residuals).rolling(p.window, min_periods=p.warm_up)
            mad = lagged(rolling.median().to_numpy())[m:]
            q = p.tail_quantile
            tail = lagged(rolling.quantile(q).to_numpy())[m:] if q is not None else None

            def mean_ad(flat: npt.NDArray[np.bool_]) -> F64Array:
                means: F64Array = lagged(rolling.mean().to_numpy())[m:][flat]
                return means

            return self._finish(x, median, residual, mad, tail, mean_ad, floor, scale)

    def _direct(
        self, past_x: F64Array, past_r: F64Array, x: F64Array, floor: float, scale: float
    ) -> Scores:
        """A small chunk, point by point: each window's order statistics with numpy over exactly
        the values pandas' rolling window would hold (the state's windows are ``window`` long),
        computed as pandas computes them, so the results are the batch path's."""
        p = self.params
        w, q = p.window, p.tail_quantile
        series, counts = _windows_before(past_x, x, w)
        median = _window_stats(series, counts, w, p.warm_up, None)[0]
        with np.errstate(all="ignore"):
            residual = np.abs(x - median)
            residuals, counts = _windows_before(past_r, residual, w)
            mad, tail = _window_stats(residuals, counts, w, p.warm_up, q)

            def mean_ad(flat: npt.NDArray[np.bool_]) -> F64Array:
                rows = np.flatnonzero(flat)
                sums = [np.nansum(residuals[row : row + w]) for row in rows]
                means: F64Array = np.array(sums, dtype=np.float64) / counts[rows]
                return means

            tail_or_off = tail if q is not None else None
            return self._finish(x, median, residual, mad, tail_or_off, mean_ad, floor, scale)

    def _finish(
        self,
        x: F64Array,
        median: F64Array,
        residual: F64Array,
        mad: F64Array,
        tail: F64Array | None,
        mean_ad: Callable[[npt.NDArray[np.bool_]], F64Array],
        floor: float,
        scale: float,
    ) -> Scores:
        """Sigma from the window estimates, then z, flags and band (``x``'s units: ``scale``)."""
        p = self.params
        with np.errstate(all="ignore"):  # NaN (no opinion yet) flows through
            sigma = mad
            sigma *= MAD_TO_SIGMA
            if tail is not None:
                tail /= _gaussian_quantile(1.0 - p.tail_rate / 2.0)
                np.fmax(sigma, tail, out=sigma)
            flat = sigma == 0.0
            if flat.any():
                sigma[flat] = MEAN_AD_TO_SIGMA * mean_ad(flat)
            np.maximum(sigma, floor, out=sigma)  # NaN (no opinion yet) stays NaN
            z = residual / sigma
            np.minimum(z, np.finfo(np.float64).max, out=z)
            is_anomaly = z > p.k  # NaN (missing value, or no opinion yet) compares False
            sigma *= p.k
        expected, lower, upper = finish_band(median, sigma, scale)
        return Scores(is_anomaly, z, residual, expected, lower, upper)


@cache
def _gaussian_quantile(level: float) -> float:
    """The standard normal quantile (cached: a streamed point must not pay for it each time)."""
    return NormalDist().inv_cdf(level)


def _windows_before(
    past: F64Array, new: F64Array, window: int
) -> tuple[F64Array, npt.NDArray[np.int64]]:
    """What ``_window_stats`` reads for the ``new`` points: a series whose windows
    ``[j : j + window]`` are the ones before each new point, and their valid counts. One new point
    (a stream's usual call) has the state's window itself as its only window: no copy, no
    running count."""
    if new.shape[0] == 1:
        valid = window - np.count_nonzero(np.isnan(past))
        return past, np.array([valid], dtype=np.int64)
    series = np.concatenate([past, new])
    return series, _window_counts(series, window)


def _window_counts(series: F64Array, window: int) -> npt.NDArray[np.int64]:
    """Valid values in each window ``series[j : j + window]`` that precedes one of the last
    ``len(series) - window`` points."""
    valid = np.concatenate([[0], np.cumsum(~np.isnan(series))])
    counts: npt.NDArray[np.int64] = valid[window:-1] - valid[: valid.shape[0] - window - 1]
    return counts


def _window_stats(
    series: F64Array,
    counts: npt.NDArray[np.int64],
    window: int,
    warm_up: int,
    quantile: float | None,
) -> tuple[F64Array, F64Array]:
    """Median (and ``quantile``, else NaN) of each window ``series[j : j + window]``, NaN skipped,
    NaN with fewer than ``warm_up`` valid values: pandas' rolling median and linear quantile,
    reproduced to the bit (the same order statistics, combined by the same arithmetic). np.partition
    sorts NaN last, so the first ``count`` order statistics are the valid values'."""
    rows = counts.shape[0]
    median = np.full(rows, np.nan)
    tail = np.full(rows, np.nan)
    for row in np.flatnonzero(counts >= warm_up):
        count = int(counts[row])
        mid = count // 2
        kth = [mid - 1, mid] if count % 2 == 0 else [mid]
        position = frac = 0.0
        if quantile is not None:
            position = quantile * (count - 1)
            index = int(position)
            frac = position - index
            kth += [index, index + 1] if frac != 0.0 else [index]
        part = np.partition(series[row : row + window], kth)
        median[row] = (part[mid] + part[mid - 1]) / 2 if count % 2 == 0 else part[mid]
        if quantile is not None:
            low = part[int(position)]
            tail[row] = low if frac == 0.0 else low + (part[int(position) + 1] - low) * frac
    return median, tail
