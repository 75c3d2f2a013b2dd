"""Seasonal residual detector: remove each point's seasonal profile, score what is left.

The profile of a point is the median of the same phase in the previous cycles (a robust seasonal
naive forecast), so only the past shapes it and an anomaly cannot hide inside its own profile.
Periods are found by autocorrelation unless given. Everything is vectorised numpy on a regular
grid; nothing here writes to stdout. Trainable: ``fit`` decides the periods, grid and units and
the state keeps the recent cycles (``seasonal_state``); streaming with it (``seasonal_stream``,
loaded only when a state is involved) scores new points as the batch call would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator

from warden_algos.interfaces import (
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
    explanations_wanted,
)
from warden_algos.interfaces.budget import InputShape, WorkEstimate, check_budget
from warden_algos.interfaces.trainable import TrainableDetector

from .common import incident_mask
from .seasonal_state import SeasonalState

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
#: Calendar periods tried first when the periods are detected, shortest first.
CALENDAR_PERIODS = (HOUR, DAY, WEEK)
#: A period is only used when the data spans at least this many cycles.
MIN_CYCLES = 3.0
#: Most slots the regular grid may have, per input point (huge gaps coarsen the grid).
MAX_SLOTS_PER_POINT = 20
#: Fewest valid points for any opinion at all.
MIN_POINTS = 8
#: Spread floor as a fraction of the values' own recent spread (when min_scale is 0).
REL_FLOOR = 0.01
#: Fraction of points clipped on each side before an autocorrelation.
WINSOR = 0.01


class SeasonalParams(DetectorParams):
    periods: list[int] | None = Field(
        None,
        description="Seasonal periods in seconds (e.g. [86400, 604800] for daily and weekly). "
        "null: detect them from the data (hourly, daily, weekly, or the strongest "
        "autocorrelation peak); []: no seasonality, a robust rolling z-score.",
    )
    k: float = Field(
        4.5,
        gt=0,
        le=1000,
        description="Flag points whose residual is more than k robust "
        "standard deviations from its recent median.",
    )
    cycles: int = Field(
        3,
        ge=1,
        le=52,
        description="Previous cycles whose same-phase values form the profile (their median).",
    )
    phase_tolerance: int = Field(
        0,
        ge=0,
        le=100,
        description="Neighbouring grid slots on each side of the phase pooled into the profile, "
        "so that jitter in the timing of the cycle is not an anomaly.",
    )
    window: int = Field(
        300,
        ge=10,
        le=1_000_000,
        description="Previous residuals (points) whose median and spread score a point.",
    )
    min_acf: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Autocorrelation at the period lag a detected period needs (after removing "
        "variation slower than one cycle).",
    )
    cooldown: int = Field(
        43200,
        ge=0,
        le=100 * 365 * DAY,
        description="Seconds: flagged points closer than this to the previous flagged point "
        "belong to the same incident, which is reported once (ignored with every_point).",
    )
    tail: float = Field(
        0.95,
        ge=0.75,
        lt=1,
        description="Quantile of the recent residuals that also sets the spread (IQR/1.349 is the "
        "other estimate; the larger wins): heavy-tailed normal behaviour widens the band.",
    )
    min_scale: float = Field(
        0.0,
        ge=0,
        description="Floor for the residual's spread, in value units (0: a tiny floor relative "
        "to the series' scale).",
    )

    @field_validator("periods")
    @classmethod
    def _periods_are_sane(cls, periods: list[int] | None) -> list[int] | None:
        if periods is None:
            return None
        if len(periods) > 4:
            raise ValueError("at most 4 periods")
        if any(p < 2 or p > 100 * 365 * DAY for p in periods):
            raise ValueError("each period must be between 2 seconds and 100 years")
        if len(set(periods)) != len(periods):
            raise ValueError("periods must be distinct")
        return sorted(periods)


class Grid(NamedTuple):
    """Points mapped onto a regular grid: ``values[slot[i]]`` is the mean of the points there."""

    step: float  # seconds per slot
    slot: I64Array  # grid slot of every input point
    values: F64Array  # slot means, NaN where no valid point fell


def _offsets(timestamps: I64Array) -> npt.NDArray[np.uint64]:
    """Seconds since the first timestamp, exact for any increasing int64 times: a span can reach
    2**64 - 1 (from -2**63 to 2**63 - 1), which int64 differences would overflow and wrap."""
    offsets: npt.NDArray[np.uint64] = timestamps.view(np.uint64) - timestamps[:1].view(np.uint64)
    return offsets


def _build_grid(offsets: npt.NDArray[np.uint64], values: F64Array, step: float) -> Grid:
    span = float(offsets[-1])
    step = max(step, span / (MAX_SLOTS_PER_POINT * offsets.shape[0] + 1000), 1e-9)
    slot = np.rint(offsets.astype(np.float64) / step).astype(np.int64)
    size = int(slot[-1]) + 1
    valid = ~np.isnan(values)
    counts = np.bincount(slot[valid], minlength=size)
    sums = np.bincount(slot[valid], weights=values[valid], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid_values = sums / counts
    return Grid(step=step, slot=slot, values=grid_values)


def _median_step(offsets: npt.NDArray[np.uint64]) -> float:
    return float(np.median(np.diff(offsets))) if offsets.shape[0] > 1 else 1.0


def _aligned_step(step: float, periods_s: list[int]) -> float:
    """The grid step nearest ``step`` that divides the shortest period it can resolve, so that a
    cycle is a whole number of slots (7-minute sampling becomes 86400/206 s for a daily cycle)."""
    usable = [p for p in periods_s if p >= 2 * step]
    if not usable:
        return step
    shortest = min(usable)
    return shortest / max(1, round(shortest / step))


def _centred_mean(x: F64Array, length: int) -> F64Array:
    """NaN-aware centred moving average over ``length`` slots (shorter at the edges)."""
    valid = ~np.isnan(x)
    filled = np.where(valid, x, 0.0)
    sums = np.concatenate(([0.0], np.cumsum(filled)))
    counts = np.concatenate(([0], np.cumsum(valid)))
    n = x.shape[0]
    lo = np.clip(np.arange(n) - length // 2, 0, n)
    hi = np.clip(lo + length, 0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F64Array = (sums[hi] - sums[lo]) / (counts[hi] - counts[lo])
    return out


def _acf_at(x: F64Array, lag: int) -> float:
    """NaN-aware autocorrelation of ``x`` at one lag."""
    if lag <= 0 or lag >= x.shape[0]:
        return 0.0
    a = x - np.nanmean(x)
    pairs = a[:-lag] * a[lag:]
    n_pairs = int(np.count_nonzero(~np.isnan(pairs)))
    variance = float(np.nanmean(a * a))
    if n_pairs < 3 or not variance > 0:
        return 0.0
    return float(np.nansum(pairs) / n_pairs / variance)


def _acf(x: F64Array) -> F64Array:
    """NaN-aware autocorrelation at every lag, by FFT (mean-filled series, pair-count weights)."""
    valid = ~np.isnan(x)
    a = np.where(valid, x - np.nanmean(x), 0.0)
    w = valid.astype(np.float64)
    n = x.shape[0]
    size = 1 << int(2 * n - 1).bit_length()
    fa = np.fft.rfft(a, size)
    fw = np.fft.rfft(w, size)
    num = np.fft.irfft(fa * np.conj(fa), size)[:n]
    cnt = np.fft.irfft(fw * np.conj(fw), size)[:n]
    variance = float(np.sum(a * a) / max(1.0, float(w.sum())))
    with np.errstate(invalid="ignore", divide="ignore"):
        acf: F64Array = num / np.maximum(np.rint(cnt), 1.0) / variance
    return np.nan_to_num(acf) if variance > 0 else np.zeros(n)


def _season_strength(x: F64Array, period: int) -> float:
    """Autocorrelation at ``period`` once variation slower than one cycle is removed: a moving
    average over exactly one cycle keeps none of the cycle, so what is left is the cycle plus
    noise, and a wandering level (whose raw autocorrelation is high at every lag) scores ~0."""
    return _acf_at(_winsorised(x - _centred_mean(x, period)), period)


def _winsorised(x: F64Array) -> F64Array:
    """``x`` clipped to its 0.5% and 99.5% quantiles, so that a few outliers (the anomalies a
    detector is for) cannot dominate an autocorrelation and make a period; quantiles rather than
    a robust spread, so that a signal made of rare large values (a spike train) survives."""
    if np.count_nonzero(~np.isnan(x)) < MIN_POINTS:
        return x
    low, high = np.nanquantile(x, [WINSOR, 1 - WINSOR])
    return np.clip(x, low, high)


def _strongest_peak(x: F64Array, min_lag: int, max_lag: int) -> int | None:
    """Lag of the highest autocorrelation peak after the first zero crossing (none when the
    autocorrelation never turns negative: a trend or a random walk, not a cycle)."""
    if max_lag <= min_lag:
        return None
    detrended = _winsorised(x - _centred_mean(x, max(max_lag, 3)))
    acf = _acf(detrended)[: max_lag + 2]
    negative = np.flatnonzero(acf[1:] < 0)
    if negative.size == 0:
        return None
    start = max(min_lag, int(negative[0]) + 1)
    if start >= max_lag:
        return None
    inner = acf[start : max_lag + 1]
    peaks = np.flatnonzero((inner[1:-1] >= inner[:-2]) & (inner[1:-1] >= inner[2:])) + 1
    if peaks.size == 0:
        return None
    # The fundamental: a cycle of lag L also peaks at 2L, 3L, ... about as high, so take the
    # shortest lag nearly as strong as the strongest peak.
    heights = inner[peaks]
    strongest = float(np.nanmax(heights)) if np.isfinite(heights).any() else float("nan")
    if not np.isfinite(strongest) or strongest <= 0:
        return None  # no positive correlation at any candidate lag: no cycle
    best = int(peaks[np.flatnonzero(heights >= 0.9 * strongest)[0]])
    return start + best


def _row_nanmedian(rows: F64Array) -> F64Array:
    """Median of each row ignoring NaN (NaN for an all-NaN row); sorting puts NaN last."""
    ordered = np.sort(rows, axis=1)
    count = np.count_nonzero(~np.isnan(ordered), axis=1)
    lo = np.maximum((count - 1) // 2, 0)
    hi = np.maximum(count // 2, 0)
    row = np.arange(ordered.shape[0])
    out: F64Array = 0.5 * (ordered[row, lo] + ordered[row, hi])
    out[count == 0] = np.nan
    return out


def _seasonal_profile(x: F64Array, period: int, cycles: int, tolerance: int) -> F64Array:
    """``profile[i]`` = median of ``x`` at the same phase (± ``tolerance`` slots) in the previous
    ``cycles`` cycles: data before slot ``i`` only (``tolerance`` < ``period``)."""
    n = x.shape[0]
    tolerance = min(tolerance, (period - 1) // 2)
    width = 2 * tolerance + 1
    lead = cycles * period + tolerance
    padded = np.concatenate((np.full(lead, np.nan), x, np.full(tolerance, np.nan)))
    # Row i of `windows` holds x[i - tolerance : i + tolerance + 1] (shifted by `lead`).
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    first = lead - tolerance  # row of `windows` centred on x[0]
    cycles_back = range(1, cycles + 1)
    out = np.empty(n)
    chunk = max(1, 4_000_000 // (cycles * width))
    for start in range(0, n, chunk):  # chunks bound the memory of the stacked neighbourhoods
        stop = min(n, start + chunk)
        parts = [
            windows[first - q * period + start : first - q * period + stop] for q in cycles_back
        ]
        out[start:stop] = _row_nanmedian(np.concatenate(parts, axis=1))
    return out


def _fitted_profiles(x: F64Array, periods: list[int], cycles: int, tolerance: int) -> F64Array:
    """The sum of the seasonal profiles of ``periods`` (shortest first), each taken from what the
    shorter ones leave: NaN (no opinion) until every period has some history.

    A longer period learns from the residual of the shorter ones only where they had their full
    ``cycles`` of history: early residuals are measured against fewer cycles (a daily profile
    from one weekday, then from a weekend), and mixing the two would teach the weekly profile a
    correction that is wrong once the daily profile is complete.
    """
    fitted = np.zeros(x.shape[0])
    residual = x
    for period in periods:
        profile = _seasonal_profile(residual, period, cycles, tolerance)
        fitted += profile
        residual = residual - profile
        residual[: cycles * period] = np.nan
    return fitted


def _choose_periods(
    timestamps: I64Array, values: F64Array, requested: list[int] | None, min_acf: float
) -> tuple[Grid, list[int]]:
    """The grid and the periods (in slots) to remove, shortest first."""
    offsets = _offsets(timestamps)
    step = _median_step(offsets)
    span = float(offsets[-1])
    if requested is not None:
        usable = [p for p in requested if p >= 2 * step and span >= 2 * p]
        grid = _build_grid(offsets, values, _aligned_step(step, usable))
        return grid, sorted({round(p / grid.step) for p in usable if round(p / grid.step) >= 2})
    calendar = [p for p in CALENDAR_PERIODS if p >= 4 * step and span >= MIN_CYCLES * p]
    grid = _build_grid(offsets, values, _aligned_step(step, calendar))
    chosen: list[int] = []
    residual = grid.values
    for period_s in calendar:
        period = round(period_s / grid.step)
        if _season_strength(residual, period) >= min_acf:
            chosen.append(period)
            residual = residual - _seasonal_profile(residual, period, 3, 1)
            residual[: 3 * period] = np.nan
    if not chosen:
        size = grid.values.shape[0]
        lag = _strongest_peak(grid.values, 4, int(size / MIN_CYCLES))
        # A cycle must repeat: strong at its lag and at twice its lag (one peak at a long lag,
        # seen over barely three cycles, is as often chance as rhythm).
        if (
            lag is not None
            and _season_strength(grid.values, lag) >= min_acf
            and _season_strength(grid.values, 2 * lag) >= min_acf
        ):
            chosen.append(lag)
    return grid, chosen


def _normalised(values: F64Array, valid: np.ndarray) -> tuple[F64Array, float, float]:
    """``values / unit - level``: within [-2, 2] whatever the magnitude (so nothing overflows),
    centred on the median; non-finite values become NaN. Returns (x, unit, level)."""
    finite = values[valid]
    unit = float(np.max(np.abs(finite))) if finite.size else 1.0
    if not unit > 0:
        unit = 1.0
    x = np.where(valid, values / unit, np.nan)
    level = float(np.median(x[valid])) if finite.size else 0.0
    x -= level
    return x, unit, level


def detect_periods(timestamps: I64Array, values: F64Array, min_acf: float = 0.3) -> list[int]:
    """The seasonal periods (seconds, shortest first) ``Seasonal`` finds in a series: hourly,
    daily and weekly cycles when the data covers three of them and they are strong enough, else the
    strongest autocorrelation peak, else none."""
    timestamps = np.asarray(timestamps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(values)
    if np.count_nonzero(valid) < MIN_POINTS:
        return []
    with np.errstate(all="ignore"):
        grid, periods = _choose_periods(timestamps, _normalised(values, valid)[0], None, min_acf)
    return [round(p * grid.step) for p in periods]


class TrailingStats(NamedTuple):
    median: F64Array  # of the previous `window` finite values; NaN when too few
    lower_spread: F64Array  # robust standard deviation below the median
    upper_spread: F64Array  # and above it
    n_values: F64Array  # finite values in the window


def trailing_robust_stats(
    x: F64Array, window: int, tail: float, first_row: int = 0
) -> TrailingStats:
    """Median and robust spread of the ``window`` finite values before each point.

    The spread on each side is the larger of IQR/1.349 and the distance from the median to the
    ``tail`` quantile (and ``1 - tail``) divided by the matching Gaussian quantile: both estimate
    the standard deviation of Gaussian data, and the tail-based one keeps heavy-tailed but normal
    behaviour (frequent spikes) from being flagged point after point. Computed at block
    boundaries (every ``window // 8`` finite values), so the cost is about eight sorts of the
    series, not one per point; a point uses the last boundary before it (its statistics lag by
    at most a block). ``first_row`` skips the first boundaries (a stream needs only its new
    points'); points before boundary ``first_row`` then get that boundary's statistics.
    """
    from statistics import NormalDist

    n = x.shape[0]
    finite_at = np.flatnonzero(np.isfinite(x))
    finite = x[finite_at]
    block = max(1, window // 8)
    before = np.searchsorted(finite_at, np.arange(n))  # finite values strictly before i
    n_bounds = finite.shape[0] // block + 1
    padded = np.concatenate((np.full(window, np.nan), finite, np.full(block, np.nan)))
    rows = np.lib.stride_tricks.sliding_window_view(padded, window)[
        first_row * block : n_bounds * block : block
    ]
    z_tail = NormalDist().inv_cdf(tail) if tail > 0.75 else 0.6745
    out = np.empty((4, rows.shape[0]))
    chunk = max(1, 4_000_000 // window)
    for start in range(0, rows.shape[0], chunk):
        part = np.sort(rows[start : start + chunk], axis=1)
        count = np.count_nonzero(~np.isnan(part), axis=1)
        last = np.maximum(count - 1, 0)
        row = np.arange(part.shape[0])

        def quantile(
            q: float, part: F64Array = part, last: I64Array = last, row: I64Array = row
        ) -> F64Array:
            pos = last * q
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, last)
            a = part[row, lo]
            b = part[row, hi]
            result: F64Array = a + (b - a) * (pos - lo)
            return result

        med = quantile(0.5)
        iqr_spread = (quantile(0.75) - quantile(0.25)) / 1.349
        out[0, start : start + chunk] = med
        out[1, start : start + chunk] = np.fmax(iqr_spread, (med - quantile(1 - tail)) / z_tail)
        out[2, start : start + chunk] = np.fmax(iqr_spread, (quantile(tail) - med) / z_tail)
        out[3, start : start + chunk] = count
    index = before // block
    if first_row:
        index = np.maximum(index - first_row, 0)
    return TrailingStats(out[0, index], out[1, index], out[2, index], out[3, index])


def periods_in_seconds(period_slots: Sequence[int], step: float) -> tuple[int, ...]:
    """Periods in grid slots as whole seconds (a grid step need not be a whole number of seconds:
    rounded, as the state records them)."""
    return tuple(round(slots * step) for slots in period_slots)


def with_seasons(result: DetectResult, periods_s: Sequence[int]) -> DetectResult:
    """Each detection's seasonal context: the periods removed (``periods_s``, seconds, or
    ``none``) and where its peak falls in each (``phase_s``: seconds since the cycle began,
    cycles counted from the Unix epoch, so a daily phase is the UTC time of day)."""
    explained = []
    for at, one in zip(result.timestamps, result.explanations or (), strict=True):
        peak = int(at) if one.peak is None else one.peak
        context: tuple[tuple[str, str], ...] = (("periods_s", "none"),)
        if periods_s:
            context = (
                ("periods_s", ",".join(str(period) for period in periods_s)),
                ("phase_s", ",".join(str(peak % period) for period in periods_s)),
            )
        explained.append(one._replace(context=one.context + context))
    return result._replace(explanations=tuple(explained))


class Scored(NamedTuple):
    """Per point: flagged (before incidents are grouped), score, and band."""

    is_anomaly: npt.NDArray[np.bool_]
    z: F64Array
    expected: F64Array
    lower: F64Array
    upper: F64Array
    #: The periods removed, in seconds (batch_scores only: for explanations).
    periods_s: tuple[int, ...] = ()


_LOWEST = float(np.finfo(np.float64).min)


def score_residuals(
    p: SeasonalParams,
    valid: npt.NDArray[np.bool_],
    residual: F64Array,
    fitted_at: F64Array,
    stats: TrailingStats,
    value_spread: F64Array | None,
    unit: float,
    level: float,
) -> Scored:
    """Robust z-scores of the residuals against their trailing statistics, flags and band, in
    the caller's units. ``value_spread`` is the trailing upper spread of the normalised values
    (the automatic floor's scale; None when ``min_scale`` sets the floor). Shared by the batch
    call and the streaming one, so both judge a point with the same arithmetic."""
    med = stats.median
    med[stats.n_values < max(MIN_POINTS, p.window // 4)] = np.nan
    if value_spread is None:
        floor: F64Array | float = p.min_scale / unit
    else:  # a small fraction of the series' own recent spread, never exactly zero
        floor = np.fmax(REL_FLOOR * value_spread, 1e-9 * max(abs(level), 1e-3))
    lower_spread = np.fmax(stats.lower_spread, floor)
    upper_spread = np.fmax(stats.upper_spread, floor)
    deviation = residual - med
    z = np.where(deviation > 0, deviation / upper_spread, -deviation / lower_spread)
    # nan_to_num(z, nan=0.0) then capped at 1e300, in three ufunc calls (a streamed point pays
    # for nan_to_num's Python-level checks more than for all the arithmetic here)
    z[np.isnan(z)] = 0.0
    np.minimum(z, 1e300, out=z)
    np.maximum(z, _LOWEST, out=z)
    is_anomaly = (z > p.k) & valid
    expected = fitted_at + med + level
    lower = (expected - p.k * lower_spread) * unit
    upper = (expected + p.k * upper_spread) * unit
    expected *= unit
    for band in (expected, lower, upper):
        band[~np.isfinite(band)] = np.nan
    return Scored(is_anomaly, z, expected, lower, upper)


class Seasonal(TrainableDetector[SeasonalParams, SeasonalState]):
    """Seasonal residual detector. Each point is compared with its seasonal profile: the median
    of the same phase of the cycle (± ``phase_tolerance`` grid slots) over the previous
    ``cycles`` cycles, a robust seasonal-naive forecast. Several periods (e.g. daily, then
    weekly) are removed in turn, each learnt from what the shorter ones leave. The residual is
    then scored against its own recent behaviour: the median and spread of the previous
    ``window`` residuals give a robust z-score, the spread on each side being the larger of
    IQR/1.349 and the distance to the ``tail`` quantile (so heavy-tailed but normal residuals,
    such as frequent small spikes, widen the band instead of firing). Points with |z| > ``k`` are
    flagged, and flagged points less than ``cooldown`` seconds apart are one incident, reported
    once at its first point. The band is profile + recent residual median, minus/plus ``k``
    spreads.

    Periods are given in seconds or detected: the hourly, daily and weekly cycles are tried when
    the data covers at least three of them, each kept when the (outlier-clipped)
    autocorrelation at its lag, after removing slower variation and the shorter cycles already
    kept, is at least ``min_acf``; otherwise the strongest autocorrelation peak that repeats
    (at twice its lag too). With no period found it is a robust rolling z-score: each point
    against the median and spread of its recent past.

    Use it for metrics with a daily or weekly rhythm (traffic, request rates, business KPIs,
    sensor cycles), where a value normal at noon is anomalous at midnight: it catches what a
    plain rolling z-score misses (off-phase values inside the normal range) or over-reports (every
    daily peak), and it adapts to slow drift and to a new level after about half of ``cycles``
    cycles. Do not use it on series shorter than about two cycles (the first cycle of each period
    gets no opinion; with a weekly cycle the first one or two weeks are quiet) or to judge a slow
    trend. Defaults were chosen on the NAB corpus (one setting for all 31 files); the ``cooldown``
    of 12 hours is what keeps one incident from paging many times.

    A point's profile and scale come from earlier data only; only the choice of periods and the
    grid step look at the whole request. Irregular sampling is mapped onto a regular grid of the
    median sampling step (points sharing a slot are averaged). Missing values (NaN) and gaps are
    skipped: they are never flagged and do not count towards a profile, and a point whose phase
    has no valid value in the previous cycles gets no opinion (NaN band, never flagged).

    Trainable: ``fit`` decides the periods, the grid step and the units from the history (once
    it spans two cycles of each given period, or three days when they are detected; until then
    the state is the history and each call the batch call over it) and freezes them; the state
    then keeps the last ``cycles`` cycles of grid values per period and the last ``window``
    residuals, so streaming costs a window's work and the state does not grow with the history.
    Streamed points get the detections of one batch call over the whole series given the same
    periods (``periods`` set, or the fitted ones) and grid step; scores and band agree to
    rounding (the state keeps the history's units).

    Explanations (``include_explanations``) carry ``context`` ``periods_s``, the periods removed
    in seconds (or ``none``), and ``phase_s``, where the peak falls in each cycle (seconds since
    the cycle began, cycles counted from the Unix epoch: a daily phase is the UTC time of day).
    """

    name = "seasonal"
    summary = (
        "Removes daily/weekly (or detected) seasonal profiles; robust z-score of the residual."
    )
    #: The periods and the grid step are chosen from the whole series (``fit`` freezes them).
    causal = False

    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> SeasonalState:
        from . import seasonal_stream  # the streaming code loads only with a state

        return seasonal_stream.fit(self, timestamps, values)

    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: SeasonalState
    ) -> tuple[DetectResult, SeasonalState]:
        from . import seasonal_stream

        result, after, periods_s = seasonal_stream.detect_next(self, state, timestamps, values)
        if explanations_wanted():
            result = with_seasons(result, periods_s)
        return result, after

    def _work(self, points: int, slots: int, periods: int) -> WorkEstimate:
        """Each period's profile is a median over ``cycles`` x (2 ``phase_tolerance`` + 1) grid
        values per slot (measured ~17 ns a value; counted 20); the trailing statistics sort about
        eight windows' worth per point. Memory: some ten slot-long arrays, a 4M-value chunk."""
        p = self.params
        per_slot = p.cycles * (2 * p.phase_tolerance + 1) * max(periods, 1)
        trailing = 8 * points * max(int(np.log2(max(min(p.window, points), 2))), 1)
        return WorkEstimate(
            peak_bytes=80 * slots + 64 * points + 4 * 8 * 4_000_000,
            operations=20 * slots * per_slot + 20 * trailing,
        )

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """For a regular series (one grid slot per point) and all three candidate periods;
        ``detect`` checks again with the grid the timestamps actually make (gaps add slots)."""
        return self._work(shape.longest, shape.longest, 3)

    def check_grid(self, points: int, slots: int, periods: int) -> None:
        """Refuse a request whose grid (known only once the timestamps are read) is over budget."""
        check_budget(self.name, self._work(points, slots, periods))

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        n = values.shape[0]
        nan_band = np.full(n, np.nan)
        if n == 0 or np.count_nonzero(np.isfinite(values)) < MIN_POINTS:
            return DetectResult(
                np.empty(0, dtype=np.int64), np.empty(0), nan_band, nan_band.copy(), nan_band.copy()
            )
        scored = self.batch_scores(timestamps, values)
        is_anomaly = scored.is_anomaly
        if not p.every_point:
            is_anomaly = incident_mask(timestamps, is_anomaly, p.cooldown)
        result = DetectResult.from_flags(
            timestamps,
            is_anomaly,
            scored.z,
            every_point=p.every_point,
            expected=scored.expected,
            lower=scored.lower,
            upper=scored.upper,
        )
        return with_seasons(result, scored.periods_s) if explanations_wanted() else result

    def batch_scores(self, timestamps: I64Array, values: F64Array) -> Scored:
        """Every point's flag (before incidents are grouped), score and band, from the whole
        series: what ``detect`` reports, and what a state replays until its periods are decided."""
        p = self.params
        n = values.shape[0]
        valid = np.isfinite(values)
        if n == 0 or np.count_nonzero(valid) < MIN_POINTS:
            nan_band = np.full(n, np.nan)
            return Scored(
                np.zeros(n, bool), np.zeros(n), nan_band, nan_band.copy(), nan_band.copy()
            )
        with np.errstate(all="ignore"):  # NaN and overflow are dealt with in score_residuals
            x, unit, level = _normalised(values, valid)
            grid, periods = _choose_periods(timestamps, x, p.periods, p.min_acf)
            self.check_grid(n, grid.values.shape[0], len(periods))
            fitted = _fitted_profiles(grid.values, periods, p.cycles, p.phase_tolerance)
            fitted_at = fitted[grid.slot]
            residual = x - fitted_at
            stats = trailing_robust_stats(residual, p.window, p.tail)
            value_spread = (
                trailing_robust_stats(x, p.window, 0.75).upper_spread if p.min_scale == 0 else None
            )
            scored = score_residuals(
                p, valid, residual, fitted_at, stats, value_spread, unit, level
            )
            return scored._replace(periods_s=periods_in_seconds(periods, grid.step))
