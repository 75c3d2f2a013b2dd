"""Helpers the built-in algorithms share, so that no algorithm module imports another.

Series preparation and band clean-up for the robust detectors (mad, ewma, level_shift), one
detection per incident for the seasonal ones (seasonal, spectral_residual), and timestamp matching
for the RCA algorithms (deviation, adtributor, graph_residual), with their shared scoring and
seasonal params. Window statistics live in ``rolling``. Imports numpy and pydantic only (which
``interfaces`` imports anyway): listing the algorithms imports every algorithm module, and with
it this one.
"""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import Field

from warden_algos.interfaces import DetectResult, F64Array, I64Array, TimeSeries
from warden_algos.interfaces.budget import InputShape, WorkEstimate

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


def earlier_seasons(
    times: I64Array,
    at_times: I64Array,
    usable: npt.NDArray[np.bool_],
    season_s: int,
    seasons: int,
    tolerance_s: int,
) -> npt.NDArray[np.intp]:
    """(len(at_times), seasons): the index in ``times`` of the point one, two, ... ``seasons``
    seasons before each of ``at_times`` (the nearest within ``tolerance_s``), or -1 where there
    is none or it is not ``usable`` (an anomaly time, a missing value)."""
    lags = season_s * np.arange(1, seasons + 1, dtype=np.int64)
    earlier = match_nearest(times, (at_times[:, None] - lags[None, :]).ravel(), tolerance_s)
    found = earlier >= 0
    found[found] = usable[earlier[found]]
    # Strictly before: with a tolerance of a season or more, the nearest point to t - season
    # can be t itself.
    found[found] &= times[earlier[found]] < np.repeat(at_times, seasons)[found]
    return np.where(found, earlier, -1).reshape(-1, seasons)


def row_nanmedian(rows: F64Array) -> F64Array:
    """Median of each row ignoring NaN (NaN for an all-NaN row); np.nanmedian is slow on the
    many small rows met here."""
    ordered = np.sort(rows, axis=1)  # NaN sort last
    counts = (~np.isnan(rows)).sum(axis=1)
    r = np.arange(rows.shape[0])
    low = ordered[r, np.maximum((counts - 1) // 2, 0)]
    high = ordered[r, counts // 2]
    return np.where(counts > 0, 0.5 * (low + high), np.nan)


def seasonal_expected(
    times: I64Array,
    values: F64Array,
    at: npt.NDArray[np.intp],
    usable: npt.NDArray[np.bool_],
    season_s: int,
    seasons: int,
    tolerance_s: int,
) -> F64Array:
    """The seasonal forecast at the points ``at``: the median of the series' values at the same
    time one, two, ... ``seasons`` seasons earlier, counting only ``usable`` points (normal, not
    missing); NaN where there is none."""
    if at.shape[0] == 0:
        return np.empty(0)
    earlier = earlier_seasons(times, times[at], usable, season_s, seasons, tolerance_s)
    return row_nanmedian(np.where(earlier >= 0, values[np.maximum(earlier, 0)], np.nan))


#: The seasonal forecast's params, declared once for the algorithms that use it.
SeasonSeconds = Annotated[
    int,
    Field(ge=1, le=366 * 86_400, description="Season length in seconds (default: one day)."),
]
Seasons = Annotated[
    int,
    Field(
        ge=1,
        le=100,
        description="Previous seasons whose values at the same time make the seasonal forecast.",
    ),
]


#: Scale factor that turns a median absolute deviation into a standard deviation (normal data).
MAD_TO_STD = 1.4826
#: Scale factor that turns a mean absolute deviation into a standard deviation (normal data).
MEAN_AD_TO_STD = 1.2533
#: RCA scores are capped here so that a perfectly flat series that moves still gets a finite one.
MAX_SCORE = 1e12
#: Normal points with an earlier season a seasonal band needs; fewer (a day and a bit of
#: history) make a band from a handful of errors, and the whole history is the baseline.
MIN_SEASONAL_ERRORS = 30


class DeviationSettings(NamedTuple):
    """How :func:`deviation_score` judges a metric (``deviation``'s params, shared with the
    algorithms that fall back on it)."""

    aggregate: Literal["max", "mean"] = "max"
    tolerance_s: int = 0
    min_baseline_points: int = 3
    min_relative_scale: float = 1e-3
    baseline: Literal["seasonal", "history"] = "seasonal"
    season_s: int = 86_400
    seasons: int = 3


def robust_scale(residuals: F64Array, level: float, min_relative_scale: float) -> float:
    """1.4826 MAD of ``residuals`` (their mean absolute deviation when most are equal), floored
    at ``min_relative_scale`` of ``|level|`` and above 0."""
    spread = np.abs(residuals - np.median(residuals))
    scale = MAD_TO_STD * float(np.median(spread))
    if not scale > 0:
        scale = MEAN_AD_TO_STD * float(np.mean(spread))
    floor = min_relative_scale * abs(level)
    return max(scale, floor, float(np.finfo(np.float64).tiny))


def deviation_score(
    series: TimeSeries, targets: I64Array, settings: DeviationSettings
) -> float | None:
    """How far ``series`` leaves its normal band at the anomaly times ``targets``: the robust
    |z| of each of its points there, combined by ``aggregate``; None when it cannot be judged.

    With ``baseline="seasonal"``, a point's expected value is the median of the same time in the
    previous ``seasons`` seasons and the band's width the robust spread of that forecast's errors
    on the normal points, so a daily cycle (phase-shifted per region) is not an anomaly; where a
    series has too little history for it (fewer than :data:`MIN_SEASONAL_ERRORS` normal points
    with an earlier season), the whole history's median and spread are the baseline, and so
    they are for an anomaly point with no earlier season of its own."""
    times, values = series.times, series.values
    hit = match_nearest(times, targets, settings.tolerance_s)
    hit = np.unique(hit[hit >= 0])  # anomaly times within the tolerance of one point: once
    hit = hit[~np.isnan(values[hit])]
    if hit.size == 0:
        return None
    normal = ~near_any(times, targets, settings.tolerance_s) & ~np.isnan(values)
    if normal.sum() < settings.min_baseline_points:
        return None
    with np.errstate(all="ignore"):  # huge magnitudes: overflow is clipped below
        z = None
        if settings.baseline == "seasonal":
            z = _seasonal_z(times, values, hit, normal, settings)
        if z is None:
            baseline = values[normal]
            level = float(np.median(baseline))
            scale = robust_scale(baseline, level, settings.min_relative_scale)
            z = np.abs(values[hit] - level) / scale
        score = float(np.max(z) if settings.aggregate == "max" else np.mean(z))
    if np.isnan(score):
        return None
    return min(score, MAX_SCORE)


def _seasonal_z(
    times: I64Array,
    values: F64Array,
    hit: npt.NDArray[np.intp],
    normal: npt.NDArray[np.bool_],
    settings: DeviationSettings,
) -> F64Array | None:
    """The anomaly points' |z| against the seasonal forecast, or None without enough history.
    A point without an earlier season is judged on the whole history's level and spread, never
    on the history's level with the seasonal forecast's narrower spread."""
    args = (settings.season_s, settings.seasons, settings.tolerance_s)
    normal_points = np.flatnonzero(normal)
    errors = values[normal_points] - seasonal_expected(times, values, normal_points, normal, *args)
    errors = errors[~np.isnan(errors)]
    expected = seasonal_expected(times, values, hit, normal, *args)
    if errors.size < max(settings.min_baseline_points, MIN_SEASONAL_ERRORS):
        return None
    if np.isnan(expected).all():
        return None
    level = float(np.median(values[normal]))
    seasonal = np.abs(values[hit] - expected) / robust_scale(
        errors, level, settings.min_relative_scale
    )
    plain = np.abs(values[hit] - level) / robust_scale(
        values[normal], level, settings.min_relative_scale
    )
    return np.asarray(np.where(np.isnan(expected), plain, seasonal), dtype=np.float64)


def deviation_estimate(shape: InputShape, settings: DeviationSettings) -> WorkEstimate:
    """What :func:`deviation_score` costs over a request: per series, a seasonal lookup of
    every normal point and every anomaly time (``seasons`` matches each, a search and a sort:
    about 48 bytes and 30 operations a cell), one series at a time."""
    seasons = settings.seasons if settings.baseline == "seasonal" else 0
    anomalies = max(shape.anomalies, 1)
    cells = seasons * (shape.longest + anomalies)
    return WorkEstimate(
        peak_bytes=64 * shape.points + 16 * anomalies + 96 * cells,
        operations=40 * shape.points
        + 30 * seasons * (shape.points + anomalies * shape.series)
        + 4 * anomalies * shape.series,
    )
