"""Graph-aware RCA: how far each metric leaves what its parents predict, at the anomaly times.

Light module: numpy and pydantic only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from warden_algos.interfaces import (
    AlgorithmParams,
    F64Array,
    I64Array,
    RCAAlgorithm,
    TimeSeries,
    rca_graph,
)
from warden_algos.interfaces.budget import InputShape, WorkEstimate

from .common import (
    MAX_SCORE,
    DeviationSettings,
    anomaly_times_or_last,
    deviation_score,
    match_nearest,
    near_any,
    robust_scale,
)

#: Fewest normal points per fitted coefficient before a regression on the parents is trusted;
#: below it the metric is scored on its own history, as without a graph.
POINTS_PER_COEFFICIENT = 5
#: The relative precision trusted in a prediction (see ``_residual_score``).
NUMERIC_PRECISION = 1e-9


class GraphResidualParams(AlgorithmParams):
    degree: Literal[1, 2] = Field(
        2,
        description="The regression of a metric on its parents: on each parent's standardised "
        "value (1), or on it and its square (2), which also follows a parent whose effect is "
        "quadratic or saturating over its normal range.",
    )
    aggregate: Literal["max", "mean"] = Field(
        "mean",
        description="How a metric's standardised residuals at the anomaly times are combined: "
        "their mean (an effect that lasts) or the largest.",
    )
    tolerance_s: int = Field(
        0,
        ge=0,
        le=10 * 365 * 86_400,
        description="A point counts as 'at' an anomaly time, and a parent's point as the "
        "child's, when it is the nearest within this many seconds (0: exact timestamps).",
    )
    min_baseline_points: int = Field(
        10,
        ge=3,
        description="Normal points (outside the anomaly times) a metric needs to be scored; "
        "fewer leave it out of the result.",
    )
    ridge: float = Field(
        0.0,
        ge=0,
        le=1e6,
        description="Ridge penalty of the regression on the parents, relative to the normal "
        "points' count (0: none; collinear parents are handled by a pseudo-inverse). A penalty "
        "biases the fit, and the bias grows with how far the anomaly takes the parents.",
    )


class GraphResidual(RCAAlgorithm[GraphResidualParams]):
    """Ranks each related metric by how far it departs, at the anomaly times, from what its
    parents in the request's dependency graph (``rca.graph``) predict. On the normal points
    (outside the anomaly times) each metric is regressed on its parents' standardised values
    (and their squares, ``degree`` 2); its score is the residual at the anomaly times in units of
    the residuals' robust spread on the normal points (1.4826 MAD). A fault's effect on a metric
    downstream of the root cause is what its parents predict, so it is explained away, and the
    root cause, whose change its parents do not explain, ranks first. A metric without parents
    is scored on its own history (the robust z-score of ``deviation``).

    Use it when the platform knows the dependency graph (service calls, queue feeds, derived
    metrics) and the metrics share a time grid (``tolerance_s`` for grids that differ a little).
    Without a graph it answers as ``deviation`` does, so it is safe to call either way.

    Do not use it with a wrong graph: a missing edge leaves a propagated effect unexplained (the
    descendant scores as a root), an extra one can explain a root cause away. The regression is
    fitted on the request's own normal points, so it needs a few per coefficient (5 per
    coefficient, else the metric is scored on its own history) and is only as good as a
    quadratic in each parent is over the range the anomaly reaches. Missing points (NaN) are
    skipped; scores are capped at 1e12.
    """

    name = "graph_residual"
    summary = "Ranks related metrics by their residual from what their graph parents predict."

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """One least-squares fit per metric with parents: its points times its features squared
        (features: an intercept and ``degree`` columns per parent), plus solving for them. Read
        from the request's graph (the runner makes it readable while estimating too); without
        one, deviation's pass over the points."""
        graph = rca_graph()
        if graph is None:
            return WorkEstimate(peak_bytes=64 * shape.points, operations=40 * shape.points)
        per_parent = self.params.degree
        features = [1 + per_parent * len(graph.parents(key)) for key in graph.order]
        widest = max(features, default=1)
        return WorkEstimate(
            peak_bytes=64 * shape.points + 4 * 8 * shape.longest * widest,
            operations=40 * shape.points + sum(f * f * (2 * shape.longest + f) for f in features),
        )

    def simple_rca(
        self,
        metric_of_interest: TimeSeries,
        related_metrics: list[TimeSeries],
        k: int,
        anomalies: I64Array,
        params: GraphResidualParams,
    ) -> Mapping[str, float]:
        graph = rca_graph()
        targets = anomaly_times_or_last(anomalies, metric_of_interest, related_metrics)
        if targets.size == 0:
            return {}
        if graph is None:  # deviation's answer, with this algorithm's settings
            settings = DeviationSettings(
                aggregate=params.aggregate,
                tolerance_s=params.tolerance_s,
                min_baseline_points=params.min_baseline_points,
            )
            scored = ((s.key, deviation_score(s, targets, settings)) for s in related_metrics)
            return {key: score for key, score in scored if score is not None}
        by_key = {series.key: series for series in [metric_of_interest, *related_metrics]}
        scores: dict[str, float] = {}
        for series in related_metrics:
            parents = [by_key[key] for key in graph.parents(series.key)]
            score = _residual_score(series, parents, targets, params)
            if score is not None:
                scores[series.key] = score
        return scores


def _residual_score(
    series: TimeSeries,
    parents: list[TimeSeries],
    targets: I64Array,
    params: GraphResidualParams,
) -> float | None:
    times = series.times
    at = near_any(times, targets, params.tolerance_s)
    design, usable = _design(times, parents, ~at, params)
    y = series.values
    usable &= ~np.isnan(y)
    normal = usable & ~at
    anomalous = usable & at
    if normal.sum() < params.min_baseline_points or not anomalous.any():
        return None
    leverage = predicted = np.zeros(times.shape[0])
    if design.shape[1] > 1 and normal.sum() >= POINTS_PER_COEFFICIENT * design.shape[1]:
        residual, leverage, predicted = _ridge_residual(design, y, normal, params.ridge)
    else:
        residual = y - np.median(y[normal])
    with np.errstate(all="ignore"):
        scale = robust_scale(residual[normal], float(np.median(y[normal])), 1e-3)
        # A prediction's error grows with its distance from the fitted range: its standard
        # error is the residuals' spread times sqrt(1 + leverage).
        # And float64 cannot subtract a prediction of 1e57 from a value of 1e57 to better
        # than about its 9th digit after a least-squares fit's cancellations.
        error = np.hypot(
            scale * np.sqrt(1.0 + leverage[anomalous]), NUMERIC_PRECISION * predicted[anomalous]
        )
        z = np.abs(residual[anomalous] - np.median(residual[normal])) / error
        score = float(np.max(z) if params.aggregate == "max" else np.mean(z))
    if np.isnan(score):
        return None
    return min(score, MAX_SCORE)


def _design(
    times: I64Array,
    parents: list[TimeSeries],
    normal: npt.NDArray[np.bool_],
    params: GraphResidualParams,
) -> tuple[F64Array, npt.NDArray[np.bool_]]:
    """The regression's columns on the child's points (intercept, each parent standardised on
    the normal rows, and its square with ``degree`` 2), and which rows have every parent."""
    n = times.shape[0]
    columns: list[F64Array] = [np.ones(n)]
    usable = np.ones(n, dtype=bool)
    for parent in parents:
        index = match_nearest(parent.times, times, params.tolerance_s)
        found = index >= 0
        x = np.full(n, np.nan)
        x[found] = parent.values[index[found]]
        usable &= ~np.isnan(x)
        finite = x[normal & ~np.isnan(x)]
        if finite.size == 0:
            continue
        centre = float(np.median(finite))
        spread = float(np.std(finite)) or 1.0
        z = np.nan_to_num((x - centre) / spread)
        columns.append(z)
        if params.degree == 2:
            columns.append(z * z)
    return np.column_stack(columns), usable


def _ridge_residual(
    design: F64Array, y: F64Array, normal: npt.NDArray[np.bool_], ridge: float
) -> tuple[F64Array, F64Array, F64Array]:
    """y minus its ridge fit on the normal rows, at every row, each row's leverage
    ``x (X'X + penalty)^-1 x'``: how far the row is from the fitted range, so a prediction
    extrapolated far beyond it (a parent far out at the anomaly) is trusted less, and the fit."""
    a = design[normal]
    b = y[normal]
    with np.errstate(all="ignore"):
        gram = a.T @ a
        penalty = ridge * a.shape[0] * np.eye(gram.shape[0])
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        inverse = np.linalg.pinv(gram + penalty)
        coefficients = inverse @ (a.T @ b)
        leverage = np.einsum("ij,jk,ik->i", design, inverse, design)
        predicted = design @ coefficients
        residual = np.asarray(y - predicted, dtype=np.float64)
    return residual, np.asarray(np.maximum(leverage, 0.0), dtype=np.float64), predicted
