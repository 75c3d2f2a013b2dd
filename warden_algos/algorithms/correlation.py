"""Correlation RCA: which related metrics moved together with the metric of interest."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from warden_algos.interfaces import (
    AlgorithmParams,
    F64Array,
    I64Array,
    RCAAlgorithm,
    TimeSeries,
)


class CorrelationParams(AlgorithmParams):
    window: int = Field(
        10,
        ge=0,
        le=100_000,
        description="Points on each side of every anomaly that make up the analysed period.",
    )
    absolute: bool = Field(
        True,
        description="Rank by |correlation|, so a metric moving opposite to the metric of "
        "interest (e.g. success rate against error rate) counts too.",
    )
    min_points: int = Field(
        3, ge=3, description="Aligned points a related metric needs in the period to be scored."
    )


def _deviation(values: F64Array, baseline_mask: np.ndarray) -> F64Array:
    """Distance from the series' own normal level (median outside the anomaly period)."""
    reference = values[baseline_mask & ~np.isnan(values)]
    if reference.size == 0:
        reference = values[~np.isnan(values)]
    level = float(np.median(reference)) if reference.size else 0.0
    return values - level


class Correlation(RCAAlgorithm[CorrelationParams]):
    """A weak baseline, not a root-cause finder: it scores each related metric by the Pearson
    correlation between its deviations and the metric of interest's deviations over the anomaly
    period: the points within ``window`` points of any given anomaly time (the whole series when
    no anomaly is given). A deviation is the distance from the series' median outside that period.

    Why it is weak: correlation is symmetric, so it cannot tell a cause from what the cause
    propagates to. A metric downstream of the root cause (a symptom, a descendant in the
    dependency graph) moves with the metric of interest at least as closely as the cause itself,
    usually more (it is nearer), and ranks first; among the slices of a total, the biggest ones
    correlate best whatever caused the change, because they carry the total's daily cycle and
    noise. On the synthetic dimensional cases of ``benchmarks/rca_quality.py`` its top-1 is 0.07
    to 0.25 (a random ranking's: 0.04 to 0.08), where ``adtributor`` scores 0.97 or more and
    ``deviation`` 0.78 to 0.91. There is no principled fix within correlation: telling cause
    from effect takes either direction (a dependency graph, or time order) or a model of how the
    metrics add up.

    Use it only as a baseline, or to shortlist the metrics that moved together with the metric
    of interest, on candidate causes measured on the same time grid (the dependencies of a
    service, the hosts behind a load balancer), knowing that the list mixes causes and symptoms.
    Do not use it to name the root cause: for a total broken down by dimensions use
    ``adtributor``; for any set of related metrics ``deviation``. Related points are matched to
    the metric of interest by exact timestamp; missing and unmatched points are skipped. Scores
    are in [0, 1] with ``absolute`` (the default), in [-1, 1] without.
    """

    name = "correlation"
    summary = (
        "Weak baseline: ranks related metrics by correlation of deviations around the anomalies "
        "(ranks symptoms with or above causes)."
    )

    def simple_rca(
        self,
        metric_of_interest: TimeSeries,
        related_metrics: list[TimeSeries],
        k: int,
        anomalies: I64Array,
        params: CorrelationParams,
    ) -> Mapping[str, float]:
        times = metric_of_interest.times
        n = times.shape[0]
        if n == 0 or not related_metrics:
            return {}
        period = np.ones(n, dtype=bool)
        if anomalies.size:
            hits = np.searchsorted(times, anomalies)
            hits = np.clip(hits, 0, n - 1)
            marks = np.zeros(n + 1, dtype=np.int64)
            np.add.at(marks, np.maximum(hits - params.window, 0), 1)
            np.add.at(marks, np.minimum(hits + params.window + 1, n), -1)
            period = np.cumsum(marks[:n]) > 0
        moi_dev = _deviation(metric_of_interest.values, ~period)[period]
        # Align every related metric on the metric of interest's timestamps: one matrix, one pass.
        aligned = np.full((len(related_metrics), n), np.nan)
        for row, series in enumerate(related_metrics):
            if series.times.shape[0] == 0:
                continue
            pos = np.clip(np.searchsorted(series.times, times), 0, series.times.shape[0] - 1)
            match = series.times[pos] == times
            aligned[row, match] = series.values[pos[match]]
        baseline = ~period
        deviations = np.stack([_deviation(row, baseline) for row in aligned])[:, period]
        valid = ~np.isnan(deviations) & ~np.isnan(moi_dev)[None, :]
        counts = valid.sum(axis=1)
        x = np.where(valid, moi_dev[None, :], 0.0)
        y = np.where(valid, deviations, 0.0)
        safe = np.maximum(counts, 1)
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: checked below
            x_centred = _unit_rows(np.where(valid, x - (x.sum(axis=1) / safe)[:, None], 0.0))
            y_centred = _unit_rows(np.where(valid, y - (y.sum(axis=1) / safe)[:, None], 0.0))
        # Rows scaled to at most 1 first (a correlation does not change): squares of values
        # near 1e200 would overflow.
        cov = (x_centred * y_centred).sum(axis=1)
        norm = np.sqrt((x_centred**2).sum(axis=1) * (y_centred**2).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where((norm > 0) & (counts >= params.min_points), cov / norm, 0.0)
        corr = np.clip(np.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
        scores = np.abs(corr) if params.absolute else corr
        return {
            series.key: float(score) for series, score in zip(related_metrics, scores, strict=True)
        }


def _unit_rows(rows: F64Array) -> F64Array:
    """Each row divided by its largest |value| (rows of zeros, or not finite, left as they are)."""
    largest = np.max(np.abs(rows), axis=1, keepdims=True)
    usable = np.isfinite(largest) & (largest > 0)
    return np.asarray(
        np.where(usable, rows / np.where(usable, largest, 1.0), rows), dtype=np.float64
    )
