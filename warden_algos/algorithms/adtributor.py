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

from .common import (
    Seasons,
    SeasonSeconds,
    anomaly_times_or_last,
    earlier_seasons,
    match_nearest,
    near_any,
    row_nanmedian,
)


class AdtributorParams(AlgorithmParams):
    t_eep: float = Field(
        0.0,
        ge=0,
        le=1,
        description="T_EEP: an element joins its dimension's candidate set only if taking it "
        "out removes more than this share of the dimension's deviation (the most deviating "
        "element always joins); 0: elements join until T_EP is reached.",
    )
    t_ep: float = Field(
        0.9,
        gt=0,
        le=1,
        description="T_EP: a dimension's candidate set is complete once taking its candidates "
        "out removes more than this share of the dimension's deviation (what is left moves "
        "together, as by chance); dimensions whose candidates fall short rank after the others.",
    )
    common_change_prior: float = Field(
        0.5,
        ge=0,
        le=100,
        description="How firmly the elements left out of the candidate set are expected to stay "
        "at their forecast, against moving together by one common factor (a forecast miss of "
        "the whole total): the common change is the weighted mean of their log changes, shrunk "
        "by W / (W + this), W their share of the dimension. 0: any common change is free (only "
        "shares count); large: none is (every change counts from its own forecast).",
    )
    max_dimensions: int = Field(
        3,
        ge=1,
        le=1000,
        description="Report the candidate sets of at most this many dimensions, best first "
        "(the paper's explanatory set keeps 3); the ranking fills k from the best dimension's "
        "candidates on to the next dimensions'.",
    )
    forecast: Literal["seasonal", "median"] = Field(
        "seasonal",
        description="Expected value of a slice at an anomaly time. 'seasonal': median of the "
        "slice at the same time in the previous `seasons` seasons (falls back to 'median' where "
        "none of those points exists); 'median': median of the slice outside the anomaly times.",
    )
    season_s: SeasonSeconds = 86_400
    seasons: Seasons = 3
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


class Explained(NamedTuple):
    """One dimension's answer: its candidate set and how well it explains the dimension."""

    complete: bool  # the candidates remove more than t_ep of the dimension's deviation
    score: float  # deviation removed per candidate: what ranks the dimensions
    dimension: tuple[str, ...]
    candidates: list[tuple[str, float]]  # (key, share of the deviation it alone removes)


#: |A - F| at or below this fraction of max(|A|, |F|) is "no change" (floating-point noise).
NO_CHANGE = 1e-12
#: Log changes are clipped to +-this (a factor of about 22,000): an element that vanished or
#: appeared from nothing deviates a lot, not infinitely.
MAX_LOG_CHANGE = 10.0


def js_surprise(p: F64Array, q: F64Array) -> F64Array:
    """Per-element Jensen-Shannon term 0.5 * (p log(2p/(p+q)) + q log(2q/(p+q))), 0 log 0 = 0.

    Each term lies in [0, ln 2]; summed over a dimension's elements it is the JS divergence between
    the forecast and the actual distributions. For a small change it is m * d**2 / 8, with m the
    element's mean share (p + q) / 2 and d its log change less the dimension's: the quadratic form
    that :func:`deviations` measures from the common change of the other elements instead."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m = p + q
        left = np.where(p > 0, p * np.log(2 * p / m), 0.0)
        right = np.where(q > 0, q * np.log(2 * q / m), 0.0)
    return np.asarray(np.maximum(0.5 * (left + right), 0.0), dtype=np.float64)


def distribution(amounts: F64Array) -> F64Array:
    """Shares of a dimension's elements; negative amounts count as 0, an all-zero one gives 0s."""
    clipped = np.maximum(amounts, 0.0)
    total = float(clipped.sum())
    if not total > 0 or not np.isfinite(total):
        return np.zeros_like(clipped)
    return np.asarray(clipped / total, dtype=np.float64)


class Deviations(NamedTuple):
    """The weighted log changes of one dimension's elements."""

    weight: F64Array  # w_i = (p_i + q_i) / 2: mean of the forecast and actual shares (sum 1)
    change: F64Array  # l_i = log(A_i / F_i), clipped to +-MAX_LOG_CHANGE


def deviations(forecast: F64Array, actual: F64Array) -> Deviations | None:
    """Weights and log changes of one dimension's elements; None when the dimension's sum did not
    change (there is nothing to explain) or it holds no positive amount."""
    scale = max(float(np.abs(forecast).max()), float(np.abs(actual).max()))
    if not scale > 0 or not np.isfinite(scale):
        return None
    f = np.maximum(forecast / scale, 0.0)  # O(1) amounts: sums can neither overflow nor vanish
    a = np.maximum(actual / scale, 0.0)
    change = float(a.sum() - f.sum())
    if abs(change) <= NO_CHANGE * max(float(a.sum()), float(f.sum()), NO_CHANGE):
        return None
    floor = 1e-9 * max(float(a.sum()), float(f.sum()))
    log_change = np.clip(np.log((a + floor) / (f + floor)), -MAX_LOG_CHANGE, MAX_LOG_CHANGE)
    weight = 0.5 * (distribution(f) + distribution(a))
    return Deviations(np.asarray(weight), np.asarray(log_change, dtype=np.float64))


def _left_over(w: float, wl: float, wll: float, prior: float) -> float:
    """Deviation of elements with summed weight w, sum w*l and sum w*l**2 from their common change
    (the weighted mean log change shrunk by w / (w + prior)): sum w*(l - c)**2 + prior*c**2 at
    the best c, which is wll - wl**2 / (w + prior)."""
    if w + prior <= 0:
        return 0.0
    return max(wll - wl * wl / (w + prior), 0.0)


def explain_dimension(
    dimension: tuple[str, ...], slices: list[Slice], params: AdtributorParams
) -> Explained | None:
    """One dimension's candidate set: its elements by decreasing deviation removed, taken until
    what is left deviates by less than 1 - t_ep of the whole (see the class docstring); None when
    the dimension did not change."""
    measured = deviations(
        np.array([s.forecast for s in slices]), np.array([s.actual for s in slices])
    )
    if measured is None:
        return None
    w, log_change = measured
    wl, wll = w * log_change, w * log_change * log_change
    prior = params.common_change_prior
    total = _left_over(float(w.sum()), float(wl.sum()), float(wll.sum()), prior)
    if not total > 1e-24:
        return None
    # Deviation removed by taking one element out: the whole's less what the others leave
    # (_left_over for every element at once).
    rest_w, rest_wl = w.sum() - w, wl.sum() - wl
    denominator = rest_w + prior
    safe = np.where(denominator > 0, denominator, 1.0)
    without = np.where(denominator > 0, (wll.sum() - wll) - rest_wl * rest_wl / safe, 0.0)
    removed = np.maximum(total - np.maximum(without, 0.0), 0.0) / total
    order = sorted(range(len(slices)), key=lambda i: (-removed[i], slices[i].key))
    candidates: list[tuple[str, float]] = []
    kept = [float(w.sum()), float(wl.sum()), float(wll.sum())]
    left = total
    for i in order:
        if candidates and removed[i] <= params.t_eep:
            break
        candidates.append((slices[i].key, float(removed[i])))
        kept = [kept[0] - float(w[i]), kept[1] - float(wl[i]), kept[2] - float(wll[i])]
        left = _left_over(kept[0], kept[1], kept[2], prior) if len(candidates) < len(slices) else 0
        if 1 - left / total > params.t_ep:
            return Explained(True, (total - left) / len(candidates), dimension, candidates)
    return Explained(False, (total - left) / len(candidates), dimension, candidates)


class Adtributor(RCAAlgorithm[AdtributorParams]):
    """Adtributor (Bhagwan et al., "Adtributor: Revenue Debugging in Advertising Systems", NSDI
    2014), with its per-element measure made robust to a change of the whole total. The metric of
    interest is an additive total (requests, revenue, errors, ...) and the related metrics are its
    slices: each carries one dimension key and value, e.g. country=US (a slice with several keys
    is an element of the combined dimension, its sorted key tuple). For each slice it compares the
    forecast F (expected value) with the actual A at the anomaly times, and asks, per dimension,
    which few elements moved while the others stayed put.

    Per element: its weight w = (p + q) / 2, the mean of its forecast share p = F/ΣF and actual
    share q = A/ΣA of the dimension, and its relative change l = log(A/F). A dimension deviates
    by D(all) = Σ w·(l - c)² + ``common_change_prior``·c², c the common change of its elements
    at its best (their weighted mean log change, shrunk towards 0): how far the elements moved
    from their forecasts other than by one common factor, which is allowed but not free. For a
    small change w·(l - c)² is 8 times the element's Jensen-Shannon surprise term (the paper's
    element measure), measured from the common change of the others instead of from the
    dimension's total change; unlike the paper's explanatory power EP = (A - F)/(ΣA - ΣF), it
    does not need the element to carry the total's change: a root cause that explains less than
    half of the total's change (or moved against it, under a wobble of the whole total or noise
    in the big elements) is still the element that moved. Elements are taken by decreasing
    deviation removed, D(all) - D(all without it), kept while each removes more than ``t_eep``
    of D(all), until what is left deviates by less than 1 - ``t_ep`` of it: those are the
    dimension's candidates. Dimensions are ranked by the deviation their candidates remove, per
    candidate (a succinct explanation beats one spread over many elements); the root cause's own
    dimension is the one where, its candidates out, the rest moved together, while in every other
    dimension the cause's change is spread over many elements unequally.

    Scores: a candidate of the dimension ranked r (1 = best) among R reported gets
    (R - r + 1) + half the share of D(all) it alone removes, so the ranking is the best
    dimension's candidates first (most deviating first), then the next dimension's, and so on:
    the top k reach past the best dimension when it has fewer than k candidates. At most
    ``max_dimensions`` dimensions are reported; a dimension whose candidates fall short of
    ``t_ep`` (only with ``t_eep`` > 0) ranks after those that reach it. The result is empty when
    nothing changed (no dimension's sum moved).

    Forecast (``forecast="seasonal"``, the default): at each anomaly time, the median of the
    slice's values one, two, ... ``seasons`` seasons (``season_s``, a day) earlier, skipping
    missing and anomalous points; where none exists (short history), the median of the slice
    outside the anomaly times, which is also the whole forecast with ``forecast="median"``. F and
    A of a slice are means over the anomaly times at which both exist (so a slice missing one
    point is not biased against the others). A point is "at" a time when its timestamp matches
    exactly, or is the nearest one within ``tolerance_s``. With no anomaly times given, the last
    point of the metric of interest is explained.

    Use it to find which country, device, data centre, ... drove a change in a total: it prefers
    an element that moved for its size (a small element that collapsed beats a large one that
    moved by its usual noise), it reports a set of elements when several of the same dimension
    moved together, and it holds when the whole total also moved (a forecast miss, a holiday) or
    the cause hit its own sub-slices unequally. Do not use it when the related metrics are not
    additive parts of the metric of interest (use ``correlation`` or ``deviation``), for ratio
    metrics such as conversion rates (the paper's derived-measure extension is not implemented),
    when the root cause is a combination of elements of different dimensions (it reports single
    dimensions), or when a dimension has two elements and the whole total may have moved (with
    two elements, which one moved and which one stayed is decided by ``common_change_prior``
    alone). Values should be non-negative amounts: negative amounts count as 0. Missing points
    (NaN) are skipped; a slice with no valid point at the anomaly times, or no forecast, is left
    out; so are dimensions with a single element, and slices without dimensions.
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
        by_dimension: dict[tuple[str, ...], list[Slice]] = {}
        for measured in measure_slices(metric_of_interest, related_metrics, anomalies, params):
            by_dimension.setdefault(measured.dimension, []).append(measured)
        explained: list[Explained] = []
        # Huge magnitudes may overflow sums: non-finite forecasts and changes are dropped below.
        with np.errstate(over="ignore", invalid="ignore"):
            for dimension, slices in by_dimension.items():
                if len(slices) >= 2:
                    answer = explain_dimension(dimension, slices, params)
                    if answer is not None:
                        explained.append(answer)
        explained.sort(key=lambda e: (not e.complete, -e.score, e.dimension))
        return _scores(explained[: params.max_dimensions])


def _scores(reported: list[Explained]) -> dict[str, float]:
    """Tier (R - r + 1 for the dimension ranked r of R) plus half the candidate's own share: the
    best dimension's candidates first, then the next dimension's, each most deviating first."""
    scores: dict[str, float] = {}
    for rank, answer in enumerate(reported):
        tier = float(len(reported) - rank)
        for key, share in answer.candidates:
            scores[key] = tier + 0.5 * share
    return scores


def measure_slices(
    metric_of_interest: TimeSeries,
    related_metrics: list[TimeSeries],
    anomalies: I64Array,
    params: AdtributorParams,
) -> list[Slice]:
    """Forecast F and actual A of every usable slice (one with dimensions and a valid point at
    the anomaly times), as the class docstring defines them. Public so that the evaluation's
    trivial baselines rank slices on exactly the forecast Adtributor uses."""
    targets = anomaly_times_or_last(anomalies, metric_of_interest, related_metrics)
    if targets.size == 0:
        return []
    measured: list[Slice] = []
    with np.errstate(over="ignore", invalid="ignore"):
        # One pass per slice (each may have its own time grid); vectorised over its points, the
        # anomaly times and the seasons inside.
        grid: _Grid | None = None
        for series in related_metrics:
            if not series.dimensions or series.times.shape[0] == 0:
                continue
            if grid is None or not np.array_equal(grid.times, series.times):
                grid = _grid(series.times, targets, params)
            one = _measure(series, grid, params)
            if one is not None:
                measured.append(one)
    return measured


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
    earlier = earlier_seasons(
        times, targets[present], outside, params.season_s, params.seasons, params.tolerance_s
    )
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
        forecast = row_nanmedian(earlier)
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
