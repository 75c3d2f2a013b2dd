"""Helpers the built-in algorithms share, so that no algorithm module imports another.

Series preparation and band clean-up for the robust detectors (mad, ewma, level_shift), one
detection per incident for the seasonal ones (seasonal, spectral_residual), and timestamp matching
for the RCA algorithms (deviation, adtributor). Window statistics live in ``rolling``. Imports
numpy only: listing the algorithms imports every algorithm module, and with it this one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from warden_algos.interfaces import DetectResult, F64Array, I64Array, TimeSeries

#: Above this magnitude (or below its inverse) the detectors work on values divided by the largest
#: one, so that no difference, square or band edge can overflow or underflow.
_HUGE = 1e150


class Prepared(NamedTuple):
    """Values ready for window statistics."""

    values: F64Array  # a copy; non-finite -> NaN; divided by `scale`
    scale: float  # 1.0 unless the series holds huge magnitudes
    floor: float  # the automatic spread floor, in the units of `values`


def prepare(values: F64Array) -> Prepared:
    """Copy ``values`` with non-finite entries as missing, rescaled when huge or tiny, and compute
    the automatic spread floor: 1e-9 of the series' typical magnitude (median |value|, or mean
    |value| when most values are 0), so a perfectly flat window still yields finite scores and any
    real departure from it is flagged."""
    x = np.array(values, dtype=np.float64, copy=True)
    finite = np.isfinite(x)
    if not finite.all():
        x[~finite] = np.nan
    magnitudes = np.abs(x[finite])
    largest = float(magnitudes.max()) if magnitudes.size else 0.0
    level = float(np.median(magnitudes)) if magnitudes.size else 0.0
    if level == 0.0:
        level = float(magnitudes.mean()) if magnitudes.size else 0.0
    floor = 1e-9 * (min(level, 1e290) if level > 0.0 else 1.0)
    scale = 1.0
    if largest > _HUGE or 0.0 < largest < 1.0 / _HUGE:
        scale = largest
        x /= scale
        floor /= scale
    return Prepared(x, scale, floor)


def finish_band(
    expected: F64Array, half_width: F64Array, scale: float
) -> tuple[F64Array, F64Array, F64Array]:
    """(expected, lower, upper) in the caller's units; edges that overflow become NaN."""
    with np.errstate(over="ignore", invalid="ignore"):
        lower = expected - half_width
        upper = expected + half_width
        if scale != 1.0:
            expected = expected * scale
            lower *= scale
            upper *= scale
    for band in (expected, lower, upper):
        band[np.isinf(band)] = np.nan
    return expected, lower, upper


def empty_result() -> DetectResult:
    empty = np.empty(0)
    return DetectResult(np.empty(0, dtype=np.int64), empty, empty, empty, empty)


def incident_mask(timestamps: I64Array, is_anomaly: np.ndarray, cooldown: int) -> np.ndarray:
    """Flags filled between flagged points less than ``cooldown`` seconds apart, so that
    ``DetectResult.from_flags`` reports each incident once."""
    flagged = np.flatnonzero(is_anomaly)
    if cooldown <= 0 or flagged.size < 2:
        return is_anomaly
    # Gaps as unsigned 64-bit: exact for increasing int64 times even 2^63 s apart, where a
    # signed difference would wrap negative and merge two distant incidents into one.
    close = np.diff(timestamps[flagged].view(np.uint64)) < cooldown
    filled = is_anomaly.copy()
    # Mark runs between close flagged neighbours: +1 at each close gap's start, -1 at its end.
    delta = np.zeros(is_anomaly.shape[0] + 1, dtype=np.int64)
    np.add.at(delta, flagged[:-1][close], 1)
    np.add.at(delta, flagged[1:][close], -1)
    filled |= np.cumsum(delta[:-1]) > 0
    return filled


def anomaly_times_or_last(
    anomalies: I64Array, metric_of_interest: TimeSeries, related_metrics: list[TimeSeries]
) -> I64Array:
    """The anomaly times, sorted and unique; with none given, the last time of the metric of
    interest (or the latest last time of the related metrics when it has no points): the usual
    question is "why is the newest point anomalous"."""
    if anomalies.size:
        return np.unique(np.asarray(anomalies, dtype=np.int64))
    if metric_of_interest.times.shape[0]:
        return np.asarray(metric_of_interest.times[-1:], dtype=np.int64)
    lasts = [int(series.times[-1]) for series in related_metrics if series.times.shape[0]]
    return np.array([max(lasts)] if lasts else [], dtype=np.int64)


def match_nearest(times: I64Array, targets: I64Array, tolerance_s: int) -> npt.NDArray[np.intp]:
    """Index in ``times`` (increasing) of the point nearest each target within ``tolerance_s``
    seconds (an exact match with 0), or -1 where there is none. Ties go to the earlier point."""
    n = times.shape[0]
    if n == 0 or targets.size == 0:
        return np.full(targets.shape[0], -1, dtype=np.intp)
    right = np.clip(np.searchsorted(times, targets), 0, n - 1)
    left = np.maximum(right - 1, 0)
    # int64 differences of Unix seconds cannot overflow for any real timestamp.
    d_right = np.abs(times[right] - targets)
    d_left = np.abs(times[left] - targets)
    best = np.where(d_left <= d_right, left, right)
    distance = np.minimum(d_left, d_right)
    return np.where(distance <= tolerance_s, best, -1).astype(np.intp)


def near_any(times: I64Array, sorted_targets: I64Array, tolerance_s: int) -> npt.NDArray[np.bool_]:
    """For every point of ``times``: is it within ``tolerance_s`` of some target (sorted)?"""
    if sorted_targets.size == 0 or times.shape[0] == 0:
        return np.zeros(times.shape[0], dtype=bool)
    return match_nearest(sorted_targets, times, tolerance_s) >= 0


def rescaled(values: F64Array, scale: float) -> F64Array:
    """``values`` as :func:`prepare` turns them out in a series whose scale is ``scale``: a copy,
    non-finite entries missing, divided by the scale. A fitted detector judges new points in the
    units its history fixed instead of relearning them from each chunk."""
    x = np.array(values, dtype=np.float64, copy=True)
    finite = np.isfinite(x)
    if not finite.all():
        x[~finite] = np.nan
    if scale != 1.0:
        x /= scale
    return x
