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
    deviation_estimate,
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
#: The largest standardised parent value used (its square stays far from float64's end).
MAX_STANDARDISED = 1e150


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
    that prediction's own standard error: the residuals' robust spread (1.4826 MAD) times
    sqrt(1 + leverage), so a prediction extrapolated far beyond the fitted range (a parent far
    out at the anomaly) is trusted less, and never finer than float64 can subtract. A fault's
    effect on a metric downstream of the root cause is what its parents predict, so it is
    explained away, and the root cause, whose change its parents do not explain, ranks first. A
    metric without parents (or whose parents have too few normal points beside its own to fit
    on) is scored as ``deviation`` scores it, seasonal baseline included.

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
        """Deviation's pass over every metric (the fallback of a metric without parents, and the
        whole answer without a graph), plus one least-squares fit per metric with parents: its
        points times its features squared (features: an intercept and ``degree`` columns per
        parent), and solving for them. Read from the request's graph (the runner makes it
        readable while estimating too)."""
        own = deviation_estimate(shape, DeviationSettings())
        graph = rca_graph()
        if graph is None:
            return own
        per_parent = self.params.degree
        features = [1 + per_parent * len(graph.parents(key)) for key in graph.order]
        widest = max(features, default=1)
        return WorkEstimate(
            peak_bytes=own.peak_bytes + 6 * 8 * shape.longest * widest,
            operations=own.operations + sum(f * f * (2 * shape.longest + f) for f in features),
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
        settings = DeviationSettings(
            aggregate=params.aggregate,
            tolerance_s=params.tolerance_s,
            min_baseline_points=params.min_baseline_points,
        )
        by_key = {series.key: series for series in [metric_of_interest, *related_metrics]}
        scores: dict[str, float] = {}
        for series in related_metrics:
            parents = [] if graph is None else [by_key[key] for key in graph.parents(series.key)]
            score = _residual_score(series, parents, targets, params)
            if score is None:  # no parents, or too little to fit on: its own history
                score = deviation_score(series, targets, settings)
            if score is not None:
                scores[series.key] = score
        return scores


def _residual_score(
    series: TimeSeries,
    parents: list[TimeSeries],
    targets: I64Array,
    params: GraphResidualParams,
) -> float | None:
    """The metric's residual from its parents' prediction at the anomaly times, in units of
    that prediction's own error; None when there is no regression to make (no parent with
    normal points beside the metric's, too few rows for the coefficients)."""
    times = series.times
    at = near_any(times, targets, params.tolerance_s)
    y = series.values
    present = ~np.isnan(y)
    design, usable = _design(times, parents, ~at & present, params)
    usable &= present
    normal = usable & ~at
    anomalous = usable & at
    rows = int(normal.sum())
    if (
        design.shape[1] == 1
        or rows < max(params.min_baseline_points, POINTS_PER_COEFFICIENT * design.shape[1])
        or not anomalous.any()
    ):
        return None
    with np.errstate(all="ignore"):
        # The fit in units of the metric's largest normal value (a score does not change):
        # products of values near 1e300 would overflow.
        unit = float(np.max(np.abs(y[normal]))) or 1.0
        residual, leverage, predicted = _ridge_residual(design, y / unit, normal, params.ridge)
        scale = robust_scale(residual[normal], float(np.median(y[normal])) / unit, 1e-3)
        # A prediction's error grows with its distance from the fitted range: its standard
        # error is the residuals' spread times sqrt(1 + leverage). And float64 cannot subtract
        # a prediction of 1e57 from a value of 1e57 to better than about its 9th digit after a
        # least-squares fit's cancellations.
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
    the normal rows, and its square with ``degree`` 2), and the rows that have every parent
    kept. A parent without finite values on the child's normal rows (another grid, all
    missing, only at the anomaly) is left out rather than costing the child its rows."""
    n = times.shape[0]
    columns: list[F64Array] = [np.ones(n)]
    usable = np.ones(n, dtype=bool)
    for parent in parents:
        index = match_nearest(parent.times, times, params.tolerance_s)
        found = index >= 0
        x = np.full(n, np.nan)
        x[found] = parent.values[index[found]]
        seen = ~np.isnan(x)
        finite = x[normal & seen]
        if finite.size < POINTS_PER_COEFFICIENT * (1 + params.degree):
            continue
        usable &= seen
        with np.errstate(all="ignore"):
            centre = float(np.median(finite))
            spread = float(np.std(finite - centre))
            spread = spread if np.isfinite(spread) and spread > 0 else 1.0
            # Clipped so its square stays finite: a parent 1e200 spreads out at the anomaly.
            z = np.clip(np.nan_to_num((x - centre) / spread), -MAX_STANDARDISED, MAX_STANDARDISED)
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
