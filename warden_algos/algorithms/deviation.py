"""Deviation RCA: which related metrics left their own normal band at the anomaly times.

Light module: numpy and pydantic only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from warden_algos.interfaces import (
    AlgorithmParams,
    I64Array,
    RCAAlgorithm,
    TimeSeries,
)

from .common import anomaly_times_or_last, match_nearest, near_any

#: Scale factor that turns a median absolute deviation into a standard deviation (normal data).
MAD_TO_STD = 1.4826
#: Scale factor that turns a mean absolute deviation into a standard deviation (normal data).
MEAN_AD_TO_STD = 1.2533
#: Scores are capped here so that a perfectly flat series that moves still gets a finite score.
MAX_SCORE = 1e12


class DeviationParams(AlgorithmParams):
    aggregate: Literal["max", "mean"] = Field(
        "max",
        description="How the robust |z| of a metric's points at the anomaly times are combined "
        "when there are several anomaly times: the largest, or their mean.",
    )
    tolerance_s: int = Field(
        0,
        ge=0,
        le=10 * 365 * 86_400,
        description="A related metric's point counts as 'at' an anomaly time when it is the "
        "nearest point within this many seconds (0: the timestamps must match exactly). Use "
        "about half the sampling interval when the metrics are sampled on different grids.",
    )
    min_baseline_points: int = Field(
        3,
        ge=1,
        description="Valid points a metric needs outside the anomaly times to have a baseline; "
        "metrics with fewer are left out of the result.",
    )
    min_relative_scale: float = Field(
        1e-3,
        ge=0,
        le=1,
        description="Floor of the baseline's spread as a fraction of its |median|, so a flat "
        "series that moves a little does not get an unbounded score.",
    )


class Deviation(RCAAlgorithm[DeviationParams]):
    """Scores each related metric by how far it leaves its own normal band at the anomaly times:
    the robust z-score |x - median| / (1.4826 * MAD), where median and MAD (median absolute
    deviation) come from the metric's own points outside the anomaly times. With several anomaly
    times the per-point scores are combined by ``aggregate`` (max or mean). A point is "at" an
    anomaly time when its timestamp matches exactly, or is the nearest one within ``tolerance_s``.
    With no anomaly times given, the last point of the metric of interest is explained.

    Use it for any set of related metrics, of any units and scales (hosts, dependencies, business
    counters, slices of the metric of interest): it answers "which of these did something unusual
    at the same time", and needs nothing but each metric's own history. It is the right first
    look when the related metrics are not additive parts of the metric of interest.

    Do not use it to find the root cause among slices of a total (country, device, ...): a big
    slice that moves little and a small slice that collapses both score high, and every slice
    overlapping the root cause moves too; use ``adtributor`` there. It ignores seasonality: the
    baseline is the metric's whole history, so a metric with a strong daily cycle has a wide band
    (fewer false alarms, less sensitivity). Missing points (NaN) are skipped; a metric with no
    valid point at the anomaly times, or fewer than ``min_baseline_points`` valid points outside
    them, is left out of the result. A flat baseline (MAD 0) falls back to the mean absolute
    deviation, then to ``min_relative_scale`` of the median; scores are capped at 1e12.
    """

    name = "deviation"
    summary = "Ranks related metrics by robust |z| (median/MAD of their own history) at anomalies."

    def simple_rca(
        self,
        metric_of_interest: TimeSeries,
        related_metrics: list[TimeSeries],
        k: int,
        anomalies: I64Array,
        params: DeviationParams,
    ) -> Mapping[str, float]:
        targets = anomaly_times_or_last(anomalies, metric_of_interest, related_metrics)
        if targets.size == 0:
            return {}
        scores: dict[str, float] = {}
        # One pass per related metric (each has its own time grid); everything inside is
        # vectorised over the metric's points and the anomaly times.
        for series in related_metrics:
            score = _deviation_score(series, targets, params)
            if score is not None:
                scores[series.key] = score
        return scores


def _deviation_score(
    series: TimeSeries, targets: I64Array, params: DeviationParams
) -> float | None:
    times, values = series.times, series.values
    hit = match_nearest(times, targets, params.tolerance_s)
    hit = hit[hit >= 0]
    at_anomaly = values[hit]
    at_anomaly = at_anomaly[~np.isnan(at_anomaly)]
    if at_anomaly.size == 0:
        return None
    baseline = values[~near_any(times, targets, params.tolerance_s) & ~np.isnan(values)]
    if baseline.size < params.min_baseline_points:
        return None
    with np.errstate(all="ignore"):  # huge magnitudes: overflow is clipped below
        level = float(np.median(baseline))
        spread = np.abs(baseline - level)
        scale = MAD_TO_STD * float(np.median(spread))
        if not scale > 0:
            scale = MEAN_AD_TO_STD * float(np.mean(spread))
        floor = params.min_relative_scale * abs(level)
        scale = max(scale, floor, float(np.finfo(np.float64).tiny))
        z = np.abs(at_anomaly - level) / scale
        score = float(np.max(z) if params.aggregate == "max" else np.mean(z))
    if np.isnan(score):
        return None
    return min(score, MAX_SCORE)
