"""Level-shift detector: median of the ``window`` points before each point against the median of the
``window`` points from it on, in robust standard deviations. Looks ahead: for batch use.

pandas (its C rolling median and quantiles) is imported inside ``detect`` only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from warden_algos.interfaces import (
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
)

from .common import empty_result, finish_band, prepare
from .rolling import check_min_periods, lagged

#: Interquartile range / this = standard deviation, for Gaussian noise.
IQR_TO_SIGMA = 1.349


class LevelShiftParams(DetectorParams):
    window: int = Field(
        200,
        ge=3,
        le=1_000_000,
        description="Points on each side of the candidate change point. A shift must last at "
        "least about window / 2 points to be seen, and is reported once window points after it "
        "are known.",
    )
    k: float = Field(
        5.0,
        gt=0,
        le=1000,
        description="Flag shifts of more than k robust sigmas of the points' noise (a magnitude "
        "threshold, not a significance level: the medians themselves are far less noisy).",
    )
    min_periods: int | None = Field(
        None,
        ge=3,
        description="Valid points each window needs before a shift is measured, at most window. "
        "Default: half the window (at least 3).",
    )
    min_spread: float = Field(
        0.0,
        ge=0,
        description="Floor for the robust sigma, in value units. With 0, a tiny floor relative to "
        "the series' scale, so any shift away from a constant level is flagged.",
    )

    @model_validator(mode="after")
    def _min_periods_fits(self) -> LevelShiftParams:
        check_min_periods(self.min_periods, self.window)
        return self

    @property
    def warm_up(self) -> int:
        if self.min_periods is not None:
            return self.min_periods
        return max(3, self.window // 2)


class LevelShift(DetectAlgorithm[LevelShiftParams]):
    """Finds persistent changes of level. For each point t it compares the median of the
    ``window`` points before t (left) with the median of the ``window`` points from t on (right),
    and divides the difference by a robust sigma: the two windows' interquartile ranges pooled
    (root mean square) and divided by 1.349, with a floor. Points where |shift| > k sigmas form a
    run around each change; the detection is reported at the point of the run where the two
    windows' *means* differ most, which for a step is the first point of the new level, and is
    scored by the run's largest shift in sigmas. With ``every_point`` every point from there to the
    end of the run is reported. The band is the left median ± k * the left window's robust sigma
    (NaN until the left window has ``min_periods`` valid points).

    Use it for step changes that persist: a deploy that raises latency, a lost replica halving
    throughput, a sensor recalibration. Medians make it blind to spikes and bursts shorter than
    about window / 2 points (use ``mad`` or ``ksigma`` for those), and it ignores changes in
    variance alone. Not for metrics with a daily cycle larger than the noise: every daily rise and
    fall is a level shift too. Pair it with a spike detector rather than using it alone: on the NAB
    development corpus, whose labels are mostly spikes and bursts, it scores only about 6 (it
    fires 9 times and finds 4 of 53 windows; the defaults, window 200 and k 5, were the best
    setting there, any window from 150 to 300 scoring within a point). Windows below about 10
    points make the interquartile range too noisy to be a spread.

    It looks ahead: the shift at t is measured only once the ``window`` points from t on are all
    known, so the last window - 1 points are never flagged and a shift is reported window - 1
    points after it happened, stamped at the point where it happened. Meant for batch analysis
    (or a host that re-runs it over a sliding range and accepts that delay), not for alerting on
    the newest point.

    Missing values (NaN, and ±inf) are skipped in the window statistics and never reported;
    ``min_periods`` counts valid points in each window.
    """

    name = "level_shift"
    summary = "Median of the window before each point vs the window after; flags persistent shifts."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        n = values.shape[0]
        if n == 0:
            return empty_result()
        import pandas as pd

        prepared = prepare(values)
        x = prepared.values
        w = p.window
        # rolling(...)[i] summarises x[i - w + 1 .. i]: the left window of t is rolling[t - 1],
        # the right window of t is rolling[t + w - 1] (only when it lies inside the series).
        rolling = pd.Series(x).rolling(w, min_periods=p.warm_up)
        median = rolling.median().to_numpy()
        iqr = rolling.quantile(0.75).to_numpy() - rolling.quantile(0.25).to_numpy()
        mean = rolling.mean().to_numpy()
        left_median = lagged(median)
        with np.errstate(all="ignore"):  # NaN (warm-up, missing, look-ahead) flows through
            shift = lagged(median, 1 - w) - left_median
            iqr *= iqr
            spread = lagged(iqr) + lagged(iqr, 1 - w)
            spread *= 0.5
            np.sqrt(spread, out=spread)
            spread /= IQR_TO_SIGMA
            floor = p.min_spread / prepared.scale if p.min_spread > 0 else prepared.floor
            np.maximum(spread, floor, out=spread)
            z = np.abs(shift)
            z /= spread
            np.minimum(z, np.finfo(np.float64).max, out=z)
            over = z > p.k  # NaN compares False
            mean_shift = np.abs(lagged(mean, 1 - w) - lagged(mean))
            # Left band: the spread is known wherever the left window is, not only the right.
            band_spread = np.sqrt(lagged(iqr)) / IQR_TO_SIGMA
            np.maximum(band_spread, floor, out=band_spread)
            band_spread *= p.k
        is_anomaly = _from_change_point(over, mean_shift)
        expected, lower, upper = finish_band(left_median, band_spread, prepared.scale)
        return DetectResult.from_flags(
            timestamps,
            is_anomaly,
            z,
            every_point=p.every_point,
            expected=expected,
            lower=lower,
            upper=upper,
        )


def _from_change_point(over: npt.NDArray[np.bool_], locator: F64Array) -> npt.NDArray[np.bool_]:
    """Each run of ``over`` cut to start where ``locator`` peaks within it (first peak; NaN never
    wins), so that one-per-run reporting lands on the change point itself."""
    flagged = np.flatnonzero(over)
    if flagged.size == 0:
        return over
    first_of_run = np.empty(flagged.size, dtype=bool)
    first_of_run[0] = True
    np.not_equal(flagged[1:], flagged[:-1] + 1, out=first_of_run[1:])
    run_index = np.flatnonzero(first_of_run)
    run_of = np.cumsum(first_of_run) - 1
    key = np.nan_to_num(locator[flagged], nan=-1.0)
    peak = np.maximum.reduceat(key, run_index)
    at_peak = np.where(key == peak[run_of], flagged, over.shape[0])
    start = np.minimum.reduceat(at_peak, run_index)
    end = np.append(flagged[run_index[1:] - 1], flagged[-1]) + 1
    marks = np.zeros(over.shape[0] + 1, dtype=np.int64)
    np.add.at(marks, start, 1)
    np.add.at(marks, end, -1)
    out: npt.NDArray[np.bool_] = np.cumsum(marks[:-1]) > 0
    return out
