"""k-sigma detector: distance from the trailing window's mean, in its standard deviations.

Trainable: its state is the last ``window`` points and the series' level (``streaming.py``), so
streaming a chunk costs a window's work whatever the history's length.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field, model_validator

from warden_algos.interfaces import (
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
)
from warden_algos.interfaces.streaming import (
    ContextState,
    context_of,
    continuing_flags,
    joined,
    still_open,
)
from warden_algos.interfaces.trainable import TrainableDetector

from .rolling import check_min_periods, trailing_window_stats


class KSigmaParams(DetectorParams):
    window: int = Field(60, ge=2, le=1_000_000, description="Points in the trailing window.")
    k: float = Field(3.0, gt=0, le=1000, description="Flag points with |z| above this.")
    min_periods: int = Field(
        10, ge=2, description="Valid points the window needs before the point is scored."
    )
    min_std: float = Field(
        0.0,
        ge=0,
        description="Floor for the window's standard deviation, in value units. With 0, a flat "
        "window uses a tiny floor relative to the series' scale, so any departure from a constant "
        "is flagged.",
    )

    @model_validator(mode="after")
    def _min_periods_fits(self) -> KSigmaParams:
        check_min_periods(self.min_periods, self.window)
        return self


#: A streamed chunk of at most this many points is scored point by point from its window
#: (``_scores_of_last``); a larger one through the batch pass over context + chunk.
DIRECT_POINTS = 16


class KSigmaState(ContextState):
    """The last ``window`` points, and the level the fitted history had (its mean: the scale of
    the automatic spread floor, frozen so that new points are judged as the history was)."""

    level: float | None = None


class PointScores(NamedTuple):
    is_anomaly: npt.NDArray[np.bool_]
    z: F64Array
    expected: F64Array
    lower: F64Array
    upper: F64Array


class KSigma(TrainableDetector[KSigmaParams, KSigmaState]):
    """Rolling z-score against the previous ``window`` points (the point itself excluded, so a spike
    cannot hide by inflating its own baseline). Flags |z| > k, scores by |z|, and returns the band
    mean ± k·std for every point (NaN until ``min_periods`` valid points have been seen).

    Use it for roughly stationary metrics with spikes or dips: request rates, latencies, error
    counts. It adapts to slow drift within a window's time, but a daily cycle larger than the noise
    will be flagged; use a seasonal detector for those. Missing values (NaN) are never flagged and
    are skipped in the window statistics.
    """

    name = "ksigma"
    summary = "Rolling mean/std z-score over a trailing window; flags |z| > k."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        if values.shape[0] == 0:
            empty = np.empty(0)
            return DetectResult(np.empty(0, dtype=np.int64), empty, empty, empty, empty)
        scored = self._scores(values, level=None)
        return DetectResult.from_flags(
            timestamps,
            scored.is_anomaly,
            scored.z,
            every_point=p.every_point,
            expected=scored.expected,
            lower=scored.lower,
            upper=scored.upper,
        )

    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> KSigmaState:
        times, kept = context_of(timestamps, values, self.params.window)
        valid = values[~np.isnan(values)]
        level = float(valid.mean()) if valid.size else None
        is_anomaly = self._scores(values, level).is_anomaly if values.size else np.zeros(0, bool)
        return KSigmaState(
            times=times, values=kept, level=level, open_incident=still_open(is_anomaly, False)
        )

    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: KSigmaState
    ) -> tuple[DetectResult, KSigmaState]:
        p = self.params
        level = state.level
        if level is None:  # fitted on nothing: the first points set the level
            valid = values[~np.isnan(values)]
            level = float(valid.mean()) if valid.size else None
        all_times, all_values = joined(state, timestamps, values)
        m = state.times.shape[0]
        if values.shape[0] == 1:
            new = self._score_of_last(all_values, level)
        elif 0 < values.shape[0] <= DIRECT_POINTS:
            new = self._scores_of_last(all_values, values.shape[0], level)
        elif all_values.shape[0]:
            scored = self._scores(all_values, level)
            new = PointScores._make(array[m:] for array in scored)
        else:
            new = PointScores(np.zeros(0, bool), *(np.empty(0) for _ in range(4)))
        result = continuing_flags(
            timestamps,
            new.is_anomaly,
            new.z,
            state.open_incident,
            every_point=p.every_point,
            expected=new.expected,
            lower=new.lower,
            upper=new.upper,
        )
        times, kept = context_of(all_times, all_values, p.window)
        after = KSigmaState(
            times=times,
            values=kept,
            level=level,
            open_incident=still_open(new.is_anomaly, state.open_incident),
        )
        return result, after

    def _scores_of_last(self, values: F64Array, count: int, level: float | None) -> PointScores:
        """:meth:`_scores` of the last ``count`` points only, each from the ``window`` points
        before it directly (a few numpy calls on one small matrix): what a streamed chunk costs
        instead of the batch pass's two dozen whole-array passes. The same windows and rules;
        means and deviations summed directly rather than from centred prefix sums, so equal to
        rounding."""
        p = self.params
        n = values.shape[0]
        padded = np.concatenate([np.full(max(p.window - (n - count), 0), np.nan), values])
        windows = sliding_window_view(padded[:-1], p.window)[-count:]
        valid = ~np.isnan(windows)
        counts = valid.sum(axis=1)
        with np.errstate(all="ignore"):  # NaN and overflow are dealt with below
            filled = np.where(valid, windows, 0.0)
            mean = filled.sum(axis=1) / counts
            deviation = np.where(valid, windows - mean[:, None], 0.0)
            std = np.sqrt((deviation * deviation).sum(axis=1) / (counts - 1))
            short = counts < max(p.min_periods, 2)
            mean[short] = np.nan
            std[short] = np.nan
            scale = level if level is not None else float(np.nanmean(values)) if n else 0.0
            floor = p.min_std if p.min_std > 0 else 1e-9 * min(max(abs(scale), 1.0), 1e290)
            new = values[-count:]
            z = np.abs(new - mean) / np.maximum(std, floor)
            half_width = std * p.k
            lower, upper = mean - half_width, mean + half_width
        is_anomaly = z > p.k
        if not _far_from_overflow(values, p.k):
            for band in (mean, lower, upper):
                band[np.isinf(band)] = np.nan
            np.minimum(z, np.finfo(np.float64).max, out=z)
        return PointScores(is_anomaly, z, mean, lower, upper)

    def _score_of_last(self, values: F64Array, level: float | None) -> PointScores:
        """:meth:`_scores_of_last` of the last point alone, the commonest streamed chunk: its
        window's valid values, their mean and deviation in a handful of numpy calls and the
        rest in floats (the same formulas, so equal to rounding)."""
        p = self.params
        n = values.shape[0]
        window = values[max(n - 1 - p.window, 0) : n - 1]
        valid = window[~np.isnan(window)]
        count = valid.shape[0]
        new = float(values[-1])
        nan = float("nan")
        with np.errstate(all="ignore"):  # NaN and overflow are dealt with below
            if count < max(p.min_periods, 2):
                mean = std = nan
            else:
                mean = float(valid.sum()) / count
                deviation = valid - mean
                std = math.sqrt(float(deviation @ deviation) / (count - 1))
            scale = level if level is not None else float(np.nanmean(values)) if n else 0.0
        floor = p.min_std if p.min_std > 0 else 1e-9 * min(max(abs(scale), 1.0), 1e290)
        # np.maximum's NaN from either side (Python's max would drop a NaN floor)
        z = abs(new - mean) / max(std, floor) if std == std and floor == floor else nan
        half_width = std * p.k
        lower, upper = mean - half_width, mean + half_width
        is_anomaly = z > p.k  # NaN compares False
        if not _far_from_overflow(values, p.k):
            mean, lower, upper = (nan if math.isinf(x) else x for x in (mean, lower, upper))
            z = min(z, float(np.finfo(np.float64).max)) if z == z else z
        return PointScores(
            np.array([is_anomaly]),
            np.array([z]),
            np.array([mean]),
            np.array([lower]),
            np.array([upper]),
        )

    def _scores(self, values: F64Array, level: float | None) -> PointScores:
        """Per-point z-scores, flags and band; ``level`` (the floor's scale) defaults to the
        mean of ``values``."""
        p = self.params
        with np.errstate(all="ignore"):  # NaN and overflow are dealt with below
            stats = trailing_window_stats(values, p.window, p.min_periods)
            scale = stats.level if level is None else level
            floor = p.min_std if p.min_std > 0 else 1e-9 * min(max(abs(scale), 1.0), 1e290)
            z = values - stats.mean
            np.abs(z, out=z)
            z /= np.maximum(stats.std, floor)
            half_width = stats.std * p.k
            lower = stats.mean - half_width
            upper = np.add(stats.mean, half_width, out=half_width)
        is_anomaly = z > p.k  # NaN (missing value, or no opinion yet) compares False
        if not _far_from_overflow(values, p.k):
            for band in (stats.mean, lower, upper):
                band[np.isinf(band)] = np.nan
            np.minimum(z, np.finfo(np.float64).max, out=z)
        return PointScores(is_anomaly, z, stats.mean, lower, upper)


def _far_from_overflow(values: F64Array, k: float) -> bool:
    """True when no band edge or score can have overflowed (two passes instead of six)."""
    high = np.fmax.reduce(values) if values.size else 0.0
    low = np.fmin.reduce(values) if values.size else 0.0
    largest = max(abs(float(high)), abs(float(low)))
    return bool(np.isfinite(largest)) and largest * (2 * k + 2) < 1e300
