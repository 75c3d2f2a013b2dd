"""Deviation RCA: which related metrics left their own normal band at the anomaly times.

Light module: numpy and pydantic only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from warden_algos.interfaces import (
    AlgorithmParams,
    DependencyGraph,
    I64Array,
    RCAAlgorithm,
    TimeSeries,
    rca_graph,
)
from warden_algos.interfaces.budget import InputShape, WorkEstimate

from .common import (
    MAD_TO_STD,
    MAX_SCORE,
    MEAN_AD_TO_STD,
    DeviationSettings,
    Seasons,
    SeasonSeconds,
    anomaly_times_or_last,
    deviation_estimate,
    deviation_score,
)

__all__ = ["MAD_TO_STD", "MAX_SCORE", "MEAN_AD_TO_STD", "Deviation", "DeviationParams"]

#: The best-scored metrics among which the graph's tie-break is made (ties below them do not
#: change a top k of a few).
TIE_CANDIDATES = 64


class DeviationParams(AlgorithmParams):
    aggregate: Literal["max", "mean"] = Field(
        "mean",
        description="How the robust |z| of a metric's points at the anomaly times are combined "
        "when there are several anomaly times: their mean (the default: one noisy point does "
        "not outrank a metric that stays off for the whole anomaly; better on every synthetic "
        "setting but the wobble one, chosen on seeds other than the benchmark's) or the largest.",
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
    baseline: Literal["seasonal", "history"] = Field(
        "seasonal",
        description="A point's expected value: 'seasonal', the median of the same time in the "
        "previous `seasons` seasons, with the spread of that forecast's errors on the normal "
        "points (a metric with too little history for it falls back to 'history'); 'history', "
        "the median and spread of the metric's whole history outside the anomaly times.",
    )
    season_s: SeasonSeconds = 86_400
    seasons: Seasons = 3
    tie_margin: float = Field(
        0.25,
        ge=0,
        le=10,
        description="With a dependency graph in the request (rca.graph): a metric scored within "
        "this fraction of one of its descendants' score ranks above it (among the 64 best "
        "scored), since a fault's effect downstream is often as large as at its root (0: the "
        "graph is ignored).",
    )


class Deviation(RCAAlgorithm[DeviationParams]):
    """Scores each related metric by how far it leaves its own normal band at the anomaly times:
    the robust z-score |x - expected| / (1.4826 * MAD). The expected value (``baseline``) is the
    seasonal forecast by default, the median of the metric at the same time in the previous
    ``seasons`` seasons (a day each), with the band's width from that forecast's errors on the
    metric's normal points, so a daily cycle, phase-shifted per region, is not taken for an
    anomaly; a metric with less history than a season falls back to the median and MAD of its
    points outside the anomaly times (``baseline="history"`` always does). With several anomaly
    times the per-point scores are combined by ``aggregate`` (max or mean). A point is "at" an
    anomaly time when its timestamp matches exactly, or is the nearest one within
    ``tolerance_s``. With no anomaly times given, the last point of the metric of interest is
    explained. With a dependency graph in the request (``rca.graph``), a metric scored within
    ``tie_margin`` of one of its descendants ranks above it.

    Use it for any set of related metrics, of any units and scales (hosts, dependencies, business
    counters, slices of the metric of interest): it answers "which of these did something unusual
    at the same time", and needs nothing but each metric's own history. It is the right first
    look when the related metrics are not additive parts of the metric of interest.

    Do not use it to find the root cause among slices of a total (country, device, ...): a big
    slice that moves little and a small slice that collapses both score high, and every slice
    overlapping the root cause moves too; use ``adtributor`` there. Nor, when the platform knows
    how the metrics depend on each other, instead of ``graph_residual``: a fault's effect often
    moves a metric downstream further than the root cause, and only a near tie is given to the
    ancestor here. Missing points (NaN) are skipped; a metric with no valid point at the anomaly
    times, or fewer than ``min_baseline_points`` valid points outside them, is left out of the
    result. A flat baseline (MAD 0) falls back to the mean absolute deviation, then to
    ``min_relative_scale`` of the median; scores are capped at 1e12.
    """

    name = "deviation"
    summary = "Ranks related metrics by robust |z| (median/MAD of their own history) at anomalies."

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """The seasonal lookups of :func:`~.common.deviation_estimate`, plus, with a graph, one
        pass over its edges for the tie-break."""
        p = self.params
        own = deviation_estimate(shape, self._settings())
        graph = rca_graph()
        if graph is None or p.tie_margin == 0:
            return own
        walk = 20 * (len(graph.order) + len(graph.edges)) + TIE_CANDIDATES**2
        return WorkEstimate(own.peak_bytes + 200 * len(graph.order), own.operations + walk)

    def _settings(self) -> DeviationSettings:
        p = self.params
        return DeviationSettings(
            aggregate=p.aggregate,
            tolerance_s=p.tolerance_s,
            min_baseline_points=p.min_baseline_points,
            min_relative_scale=p.min_relative_scale,
            baseline=p.baseline,
            season_s=p.season_s,
            seasons=p.seasons,
        )

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
        settings = self._settings()
        scores: dict[str, float] = {}
        # One pass per related metric (each has its own time grid); everything inside is
        # vectorised over the metric's points and the anomaly times.
        for series in related_metrics:
            score = deviation_score(series, targets, settings)
            if score is not None:
                scores[series.key] = score
        graph = rca_graph()
        if graph is not None and params.tie_margin > 0:
            return ancestors_first(scores, graph, params.tie_margin)
        return scores


def ancestors_first(
    scores: Mapping[str, float], graph: DependencyGraph, margin: float
) -> dict[str, float]:
    """``scores`` with each of the :data:`TIE_CANDIDATES` best-scored metrics lifted just above
    its best descendant among them scored at most ``(1 + margin)`` times its own: a near tie
    goes to the side the fault propagates from. Which candidates are ancestors of which is
    found in one pass over the graph (parents first, a bit per candidate), so a graph of
    100,000 edges costs a fraction of a second, and descendants are settled before their
    ancestors, so a chain resolves in one pass."""
    candidates = sorted(scores, key=scores.__getitem__, reverse=True)[:TIE_CANDIDATES]
    bit = {key: 1 << index for index, key in enumerate(candidates)}
    above: dict[str, int] = {}  # key -> the candidates among its ancestors, as bits
    for key in graph.order:
        mask = 0
        for parent in graph.parents(key):
            mask |= above.get(parent, 0) | bit.get(parent, 0)
        if mask:
            above[key] = mask
    position = {key: index for index, key in enumerate(graph.order)}
    lifted = dict(scores)
    for key in sorted(
        (c for c in candidates if c in position), key=position.__getitem__, reverse=True
    ):
        own = lifted[key]
        if own <= 0:
            continue
        close = [
            lifted[other]
            for other in candidates
            if above.get(other, 0) & bit[key] and own <= lifted[other] <= (1 + margin) * own
        ]
        if close:
            lifted[key] = min(max(close) * (1 + 1e-9), MAX_SCORE)
    return lifted
