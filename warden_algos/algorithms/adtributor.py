"""Adtributor RCA (Bhagwan et al., NSDI 2014): which slice of an additive total explains its change.

Light module: numpy and pydantic only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from warden_algos.interfaces import (
    AlgorithmParams,
    F64Array,
    I64Array,
    RCAAlgorithm,
    TimeSeries,
)
from warden_algos.interfaces.budget import InputShape, WorkEstimate

from .common import anomaly_times_or_last, match_nearest, near_any

#: |A - F| at or below this fraction of max(|A|, |F|) is "no change" (floating-point noise).
NO_CHANGE = 1e-12


class AdtributorParams(AlgorithmParams):
    t_eep: float = Field(
        0.1,
        ge=0,
        le=1,
        description="T_EEP: an element joins its dimension's candidate set only if its "
        "explanatory power (share of the total's change it accounts for) exceeds this.",
    )
    t_ep: float = Field(
        0.67,
        gt=0,
        le=1,
        description="T_EP: a dimension explains the change once its candidates' cumulative "
        "explanatory power exceeds this; dimensions that never reach it are not reported.",
    )
    max_dimensions: int = Field(
        3,
        ge=1,
        le=1000,
        description="Report the candidate sets of at most this many dimensions, most surprising "
        "first (the paper's explanatory set keeps 3).",
    )
    forecast: Literal["seasonal", "median"] = Field(
        "seasonal",
        description="Expected value of a slice at an anomaly time. 'seasonal': median of the "
        "slice at the same time in the previous `seasons` seasons (falls back to 'median' where "
        "none of those points exists); 'median': median of the slice outside the anomaly times.",
    )
    season_s: int = Field(
        86_400, ge=1, le=366 * 86_400, description="Season length in seconds (default: one day)."
    )
    seasons: int = Field(
        3,
        ge=1,
        le=100,
        description="Previous seasons whose values at the same time make the seasonal forecast.",
    )
    tolerance_s: int = Field(
        0,
        ge=0,
        le=10 * 365 * 86_400,
        description="A slice's point counts as 'at' a time (an anomaly time, or the same time one "
        "season earlier) when it is the nearest point within this many seconds (0: exact match).",
    )

    @model_validator(mode="after")
    def _thresholds_fit(self) -> AdtributorParams:
        if self.t_eep >= self.t_ep:
            raise ValueError(f"t_eep ({self.t_eep}) must be below t_ep ({self.t_ep})")
        return self


class Slice(NamedTuple):
    """One related metric reduced to the two numbers Adtributor needs."""

    key: str
    dimension: tuple[str, ...]
    forecast: float  # F_ij: mean expected value over the anomaly times the slice has data for
    actual: float  # A_ij: mean observed value over the same times


def js_surprise(p: F64Array, q: F64Array) -> F64Array:
    """Per-element Jensen-Shannon term 0.5 * (p log(2p/(p+q)) + q log(2q/(p+q))), 0 log 0 = 0.

    Each term lies in [0, ln 2]; summed over a dimension's elements it is the JS divergence between
    the forecast and the actual distributions."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m = p + q
        left = np.where(p > 0, p * np.log(2 * p / m), 0.0)
        right = np.where(q > 0, q * np.log(2 * q / m), 0.0)
    return np.asarray(np.maximum(0.5 * (left + right), 0.0), dtype=np.float64)


def explanatory_power(forecast: F64Array, actual: F64Array) -> F64Array | None:
    """EP_ij = (A_ij - F_ij) / (A - F) over one dimension's elements; None when A = F."""
    change = float(actual.sum() - forecast.sum())
    scale = max(float(np.abs(actual).sum()), float(np.abs(forecast).sum()))
    if not np.isfinite(change) or abs(change) <= NO_CHANGE * scale:
        return None
    return np.asarray((actual - forecast) / change, dtype=np.float64)


def distribution(amounts: F64Array) -> F64Array:
    """Shares of a dimension's elements; negative amounts count as 0, an all-zero one gives 0s."""
    clipped = np.maximum(amounts, 0.0)
    total = float(clipped.sum())
    if not total > 0 or not np.isfinite(total):
        return np.zeros_like(clipped)
    return np.asarray(clipped / total, dtype=np.float64)


class Adtributor(RCAAlgorithm[AdtributorParams]):
    """Adtributor (Bhagwan et al., "Adtributor: Revenue Debugging in Advertising Systems", NSDI
    2014). The metric of interest is an additive total (requests, revenue, errors, ...) and the
    related metrics are its slices: each carries one dimension key and value, e.g. country=US (a
    slice with several keys is an element of the combined dimension, its sorted key tuple). For
    each slice it compares the forecast F (expected value) with the actual A at the anomaly times;
    per dimension, p = F/ΣF and q = A/ΣA are the forecast and actual distributions over the
    dimension's elements, the surprise of an element is its Jensen-Shannon term
    0.5·(p·log(2p/(p+q)) + q·log(2q/(p+q))), and its explanatory power is EP = (A - F)/(ΣA - ΣF).
    In each dimension, elements are taken by decreasing surprise, kept if EP > ``t_eep``, until
    their cumulative EP exceeds ``t_ep``; a dimension whose candidates never get there is
    dropped. The dimensions left are ranked by the summed surprise of their candidates, and the
    best ``max_dimensions`` are reported.

    Scores: a candidate of the dimension ranked r (1 = best) among R reported gets
    (R - r + 1) + its own surprise. Element surprise is below ln 2 < 1, so the ranking is the best
    dimension's candidates first (most surprising first), then the next dimension's, and so on.
    Only candidates are returned, so there may be fewer than k entries; the result is empty when
    the total did not change (ΣA = ΣF), or when no dimension explains ``t_ep`` of the change.

    Forecast (``forecast="seasonal"``, the default): at each anomaly time, the median of the
    slice's values one, two, ... ``seasons`` seasons (``season_s``, a day) earlier, skipping
    missing and anomalous points; where none exists (short history), the median of the slice
    outside the anomaly times, which is also the whole forecast with ``forecast="median"``. F and
    A of a slice are means over the anomaly times at which both exist (so a slice missing one
    point is not biased against the others). A point is "at" a time when its timestamp matches
    exactly, or is the nearest one within ``tolerance_s``. With no anomaly times given, the last
    point of the metric of interest is explained.

    Use it to find which country, device, data centre, ... drove a change in a total: it prefers
    an element whose share of the total moved (a small element that collapsed beats a large one
    that moved by its usual noise), and it reports a set of elements when several of the same
    dimension moved together. Do not use it when the related metrics are not additive parts of
    the metric of interest (use ``correlation`` or ``deviation``), for ratio metrics such as
    conversion rates (the paper's derived-measure extension is not implemented), or when the root
    cause is a combination of elements of different dimensions (it reports single dimensions).
    Values should be non-negative amounts: negative amounts count as 0 in the distributions
    (they still count in EP). Missing points (NaN) are skipped; a slice with no valid point at the
    anomaly times, or no forecast, is left out; so are dimensions with a single element, and
    slices without dimensions.
    """

    name = "adtributor"
    summary = "Adtributor: which dimension's elements explain a change of an additive total."

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """Per related metric: its points, plus an (anomaly times x seasons) grid of earlier
        times matched on its time grid (int64 and index arrays, about 10 of them alive at once
        while a grid is built); slices that share a grid share it, but err high."""
        p = self.params
        anomalies = max(shape.anomalies, 1)  # none given: the last time is the target
        grid_cells = anomalies * (p.seasons + 1)
        return WorkEstimate(
            peak_bytes=64 * shape.points + 80 * grid_cells,
            operations=4 * shape.points + 20 * grid_cells * max(shape.series - 1, 1),
        )

    def simple_rca(
        self,
        metric_of_interest: TimeSeries,
        related_metrics: list[TimeSeries],
        k: int,
        anomalies: I64Array,
        params: AdtributorParams,
    ) -> Mapping[str, float]:
        targets = anomaly_times_or_last(anomalies, metric_of_interest, related_metrics)
        if targets.size == 0:
            return {}
        by_dimension: dict[tuple[str, ...], list[Slice]] = {}
        explained: list[tuple[float, tuple[str, ...], list[tuple[str, float]]]] = []
        # Huge magnitudes may overflow sums: non-finite forecasts and changes are dropped below.
        with np.errstate(over="ignore", invalid="ignore"):
            # One pass per slice (each may have its own time grid); vectorised over its points,
            # the anomaly times and the seasons inside.
            grid: _Grid | None = None
            for series in related_metrics:
                if not series.dimensions or series.times.shape[0] == 0:
                    continue
                if grid is None or not np.array_equal(grid.times, series.times):
                    grid = _grid(series.times, targets, params)
                measured = _measure(series, grid, params)
                if measured is not None:
                    by_dimension.setdefault(measured.dimension, []).append(measured)
            for dimension, slices in by_dimension.items():
                if len(slices) < 2:
                    continue
                candidates = _candidate_set(slices, params)
                if candidates:
                    surprise = float(sum(score for _, score in candidates))
                    explained.append((surprise, dimension, candidates))
        explained.sort(key=lambda item: (-item[0], item[1]))
        reported = explained[: params.max_dimensions]
        scores: dict[str, float] = {}
        for rank, (_, _, candidates) in enumerate(reported):
            tier = float(len(reported) - rank)
            for key, surprise in candidates:
                scores[key] = tier + surprise
        return scores


def _candidate_set(slices: list[Slice], params: AdtributorParams) -> list[tuple[str, float]]:
    """The paper's Algorithm 1 for one dimension: [(key, surprise)] or [] when it explains too
    little (or nothing changed)."""
    forecast = np.array([s.forecast for s in slices])
    actual = np.array([s.actual for s in slices])
    ep = explanatory_power(forecast, actual)
    if ep is None:
        return []
    surprise = js_surprise(distribution(forecast), distribution(actual))
    order = sorted(range(len(slices)), key=lambda i: (-surprise[i], slices[i].key))
    candidates: list[tuple[str, float]] = []
    explains = 0.0
    for i in order:
        if ep[i] > params.t_eep:
            candidates.append((slices[i].key, float(surprise[i])))
            explains += float(ep[i])
            if explains > params.t_ep:
                return candidates
    return []


class _Grid(NamedTuple):
    """Where the anomaly times and their earlier seasons fall on one time grid; computed once per
    distinct grid (slices of one total usually share theirs)."""

    times: I64Array
    at_target: npt.NDArray[np.intp]  # index of the point at each matched anomaly time
    outside: npt.NDArray[np.bool_]  # points that are not at an anomaly time
    earlier: npt.NDArray[np.intp]  # (matched anomaly times, seasons): index one, two... seasons
    # before, or -1 where there is no such point or it is itself at an anomaly time


def _grid(times: I64Array, targets: I64Array, params: AdtributorParams) -> _Grid:
    hit = match_nearest(times, targets, params.tolerance_s)
    present = hit >= 0
    outside = ~near_any(times, targets, params.tolerance_s)
    lags = params.season_s * np.arange(1, params.seasons + 1, dtype=np.int64)
    earlier_times = (targets[present][:, None] - lags[None, :]).ravel()
    earlier = match_nearest(times, earlier_times, params.tolerance_s)
    found = earlier >= 0
    found[found] = outside[earlier[found]]
    earlier = np.where(found, earlier, -1).reshape(-1, lags.shape[0])
    return _Grid(times, hit[present], outside, earlier)


def _measure(series: TimeSeries, grid: _Grid, params: AdtributorParams) -> Slice | None:
    values = series.values
    if grid.at_target.shape[0] == 0:
        return None
    actual = values[grid.at_target]
    usable = grid.outside & ~np.isnan(values)
    fallback = float(np.median(values[usable])) if usable.any() else np.nan
    if params.forecast == "seasonal":
        earlier = np.where(grid.earlier >= 0, values[np.maximum(grid.earlier, 0)], np.nan)
        forecast = _row_nanmedian(earlier)
        forecast = np.where(np.isnan(forecast), fallback, forecast)
    else:
        forecast = np.full(actual.shape[0], fallback)
    valid = ~np.isnan(actual) & ~np.isnan(forecast)
    if not valid.any():
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        mean_forecast = float(np.mean(forecast[valid]))
        mean_actual = float(np.mean(actual[valid]))
    if not (np.isfinite(mean_forecast) and np.isfinite(mean_actual)):
        return None
    return Slice(series.key, tuple(sorted(series.dimensions)), mean_forecast, mean_actual)


def _row_nanmedian(rows: F64Array) -> F64Array:
    """Median of each row ignoring NaN (NaN for an all-NaN row); np.nanmedian is slow on the
    small arrays met here."""
    ordered = np.sort(rows, axis=1)  # NaN sort last
    counts = (~np.isnan(rows)).sum(axis=1)
    r = np.arange(rows.shape[0])
    low = ordered[r, np.maximum((counts - 1) // 2, 0)]
    high = ordered[r, counts // 2]
    return np.where(counts > 0, 0.5 * (low + high), np.nan)
