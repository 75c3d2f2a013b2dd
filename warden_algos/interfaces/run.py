"""Run an algorithm exactly as the platform does: validated input, validated output.

The dispatcher calls these; so should notebooks and tests, so that "works in my notebook" means
"works on the platform". Lists and other array-likes are accepted here for convenience and
converted once; the dispatcher already hands over read-only numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .alerting_params import alerting_of
from .base import DetectAlgorithm, RCAAlgorithm
from .budget import InputShape, check_budget
from .errors import InvalidInput
from .explaining import explaining, finish_detect
from .graph import DependencyGraph, with_graph
from .types import DetectResult, F64Array, I64Array, RCAResult, TimeSeries
from .validation import (
    check_detect_input,
    check_detect_result,
    check_rca_input,
    check_rca_scores,
)


def as_times(path: str, data: npt.ArrayLike) -> I64Array:
    arr = np.asarray(data)
    if arr.dtype == np.int64:
        return arr
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInput(f"must hold integers (Unix seconds), got dtype {arr.dtype}", field=path)
    return arr.astype(np.int64)


def as_values(path: str, data: npt.ArrayLike) -> F64Array:
    arr = np.asarray(data)
    if arr.dtype == np.float64:
        return arr
    if arr.dtype == object:
        arr = np.array([np.nan if item is None else item for item in arr.tolist()])
    if arr.size and not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InvalidInput(f"must hold numbers, got dtype {arr.dtype}", field=path)
    return arr.astype(np.float64)


def _readonly(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


def run_detect(
    algorithm: DetectAlgorithm[Any],
    timestamps: npt.ArrayLike,
    values: npt.ArrayLike,
    dimensions: Sequence[str] = (),
    *,
    path: str = "detect",
    explain: bool = False,
) -> DetectResult:
    """``algorithm.detect`` on checked input, its answer checked; with ``explain``, one
    ``Explanation`` per detection (``DetectResult.explanations``)."""
    ts = _readonly(as_times(f"{path}.timestamps", timestamps))
    vs = _readonly(as_values(f"{path}.values", values))
    check_detect_input(path, ts, vs)
    n = ts.shape[0]
    if alerting_of(algorithm) is None:
        check_budget(algorithm.name, algorithm.estimate(InputShape(n, 1, n)))
        with explaining(explain):
            result = algorithm.detect(list(dimensions), ts, vs)
        return finish_detect(check_detect_result(result, ts), ts, vs, explain)
    return _detect_alerting(algorithm, list(dimensions), ts, vs, explain)


def _detect_alerting(
    algorithm: DetectAlgorithm[Any],
    dimensions: list[str],
    timestamps: I64Array,
    values: F64Array,
    explain: bool,
) -> DetectResult:
    """``run_detect`` with the alerting stage after the detector (imported only then)."""
    from .alerting import apply_alerting, with_stage
    from .point_capture import capturing

    alerting = alerting_of(algorithm)
    assert alerting is not None
    n = timestamps.shape[0]
    check_budget(algorithm.name, with_stage(algorithm.estimate(InputShape(n, 1, n)), n, alerting))
    with explaining(False), capturing() as captured:
        result = algorithm.detect(dimensions, timestamps, values)
    checked = check_detect_result(result, timestamps)
    alerted, _ = apply_alerting(
        algorithm.name, checked, timestamps, values, captured, alerting, explain
    )
    return finish_detect(alerted, timestamps, values, explain)


def _readonly_series(series: TimeSeries) -> TimeSeries:
    return TimeSeries(
        dimensions=dict(series.dimensions),
        times=_readonly(series.times),
        values=_readonly(series.values),
        sizes=None if series.sizes is None else _readonly(series.sizes),
        variances=None if series.variances is None else _readonly(series.variances),
    )


def run_rca(
    algorithm: RCAAlgorithm[Any],
    metric_of_interest: TimeSeries,
    related_metrics: Iterable[TimeSeries],
    k: int,
    anomalies: npt.ArrayLike,
    *,
    graph: Sequence[tuple[str, str]] | None = None,
    path: str = "rca",
) -> RCAResult:
    """Validate, budget, run ``simple_rca`` and keep the ``k`` best. ``graph``: the request's
    dependency edges (parent, child) between the metrics' keys, checked here and readable by
    the algorithm through ``rca_graph()`` (``interfaces.graph``)."""
    moi = _readonly_series(metric_of_interest)
    related = [_readonly_series(series) for series in related_metrics]
    anomaly_times = _readonly(as_times(f"{path}.anomalies", anomalies))
    check_rca_input(path, moi, related, k, anomaly_times)
    dependencies = None if graph is None else _dependency_graph(graph, moi, related, path)
    sizes = [moi.times.shape[0], *(series.times.shape[0] for series in related)]
    shape = InputShape(sum(sizes), len(sizes), max(sizes), anomaly_times.shape[0])
    with with_graph(dependencies):  # an estimate may count the graph's edges too
        check_budget(algorithm.name, algorithm.estimate(shape))
        scores = algorithm.simple_rca(moi, related, k, anomaly_times, algorithm.params)
    checked = check_rca_scores(scores, {series.key for series in related})
    return RCAResult.rank(checked, k)


def _dependency_graph(
    edges: Sequence[tuple[str, str]], moi: TimeSeries, related: list[TimeSeries], path: str
) -> DependencyGraph:
    keys = [series.key for series in related]
    if moi.key in keys:
        raise InvalidInput(
            f"the metric of interest's key {moi.key!r} is also related_metrics"
            f"[{keys.index(moi.key)}]'s: a graph could not tell them apart",
            field=f"{path}.graph",
        )
    return DependencyGraph.of(edges, [moi.key, *keys], path=f"{path}.graph")
