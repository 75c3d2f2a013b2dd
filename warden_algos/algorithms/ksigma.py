"""k-sigma detector: distance from the trailing window's mean, in its standard deviations."""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from warden_algos.interfaces import (
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
)

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


class KSigma(DetectAlgorithm[KSigmaParams]):
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
        with np.errstate(all="ignore"):  # NaN and overflow are dealt with below
            stats = trailing_window_stats(values, p.window, p.min_periods)
            floor = p.min_std if p.min_std > 0 else 1e-9 * min(max(abs(stats.level), 1.0), 1e290)
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
        return DetectResult.from_flags(
            timestamps,
            is_anomaly,
            z,
            every_point=p.every_point,
            expected=stats.mean,
            lower=lower,
            upper=upper,
        )


def _far_from_overflow(values: F64Array, k: float) -> bool:
    """True when no band edge or score can have overflowed (two passes instead of six)."""
    high = np.fmax.reduce(values) if values.size else 0.0
    low = np.fmin.reduce(values) if values.size else 0.0
    largest = max(abs(float(high)), abs(float(low)))
    return bool(np.isfinite(largest)) and largest * (2 * k + 2) < 1e300
