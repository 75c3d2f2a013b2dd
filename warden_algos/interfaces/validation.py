"""Boundary checks on what enters and leaves an algorithm.

Every check is vectorised and names the field and the first offending index, because the person
reading the error is usually looking at a request built by some other program. Input problems raise
``InvalidInput``; a malformed result from an algorithm raises ``AlgorithmFailed`` (the caller's data
was fine; the algorithm broke its contract).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import AlgorithmFailed, InvalidInput
from .types import DetectResult, F64Array, I64Array, TimeSeries


def _first(mask: np.ndarray) -> int | None:
    if not mask.any():  # one fast pass in the common, valid case
        return None
    return int(np.argmax(mask))


def check_times(path: str, times: I64Array) -> None:
    """Times must be strictly increasing: algorithms index and difference them freely."""
    if times.ndim != 1:
        raise InvalidInput("must be a one-dimensional array", field=path)
    if times.shape[0] > 1:
        bad = _first(times[1:] <= times[:-1])
        if bad is not None:
            raise InvalidInput(
                f"times must be strictly increasing, but {int(times[bad + 1])} follows "
                f"{int(times[bad])}",
                field=f"{path}[{bad + 1}]",
            )


def check_values(path: str, values: F64Array, length: int, length_of: str) -> None:
    """NaN is accepted as "missing"; infinities are not values."""
    if values.ndim != 1:
        raise InvalidInput("must be a one-dimensional array", field=path)
    if values.shape[0] != length:
        raise InvalidInput(
            f"has {values.shape[0]} elements but {length_of} has {length}", field=path
        )
    bad = _first(np.isinf(values))
    if bad is not None:
        raise InvalidInput(
            f"infinite values are not accepted (use NaN/null for missing), got {values[bad]}",
            field=f"{path}[{bad}]",
        )


def check_detect_input(path: str, timestamps: I64Array, values: F64Array) -> None:
    check_times(f"{path}.timestamps", timestamps)
    check_values(f"{path}.values", values, timestamps.shape[0], f"{path}.timestamps")


def check_time_series(path: str, series: TimeSeries) -> None:
    n = series.times.shape[0]
    check_times(f"{path}.times", series.times)
    check_values(f"{path}.values", series.values, n, f"{path}.times")
    if series.variances is not None:
        check_values(f"{path}.variances", series.variances, n, f"{path}.times")
        bad = _first(series.variances < 0)
        if bad is not None:
            raise InvalidInput("variances must not be negative", field=f"{path}.variances[{bad}]")
    if series.sizes is not None:
        if series.sizes.shape[0] != n:
            raise InvalidInput(
                f"has {series.sizes.shape[0]} elements but {path}.times has {n}",
                field=f"{path}.sizes",
            )
        bad = _first(series.sizes < 0)
        if bad is not None:
            raise InvalidInput("sizes must not be negative", field=f"{path}.sizes[{bad}]")


def check_rca_input(
    path: str,
    metric_of_interest: TimeSeries,
    related_metrics: list[TimeSeries],
    k: int,
    anomalies: I64Array,
) -> None:
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}", field=f"{path}.k")
    check_time_series(f"{path}.metric_of_interest", metric_of_interest)
    seen: dict[str, int] = {}
    for index, series in enumerate(related_metrics):
        item = f"{path}.related_metrics[{index}]"
        check_time_series(item, series)
        key = series.key
        if key in seen:
            raise InvalidInput(
                f"metric key {key!r} repeats related_metrics[{seen[key]}]; keys must be unique",
                field=f"{item}.dimensions",
            )
        seen[key] = index
    if anomalies.ndim != 1:
        raise InvalidInput("must be a one-dimensional array", field=f"{path}.anomalies")


def check_detect_result(result: object, timestamps: I64Array) -> DetectResult:
    """The algorithm's answer must be something a host can trust without re-checking."""
    if not isinstance(result, DetectResult):
        raise AlgorithmFailed(f"detect returned {type(result).__name__}, expected DetectResult")
    ts = np.asarray(result.timestamps)
    scores = np.asarray(result.scores)
    if ts.shape != scores.shape or ts.ndim != 1:
        raise AlgorithmFailed(
            f"result has {ts.shape} timestamps but {scores.shape} scores; they must pair up"
        )
    if ts.size:
        if not np.issubdtype(ts.dtype, np.integer):
            raise AlgorithmFailed(f"result timestamps must be integers, got dtype {ts.dtype}")
        pos = np.searchsorted(timestamps, ts)
        inside = pos < timestamps.shape[0]
        bad = _first(~inside | (timestamps[np.minimum(pos, timestamps.shape[0] - 1)] != ts))
        if bad is not None:
            raise AlgorithmFailed(
                f"result timestamp {int(ts[bad])} (index {bad}) is not one of the input timestamps"
            )
        bad = _first(ts[1:] <= ts[:-1])
        if bad is not None:
            raise AlgorithmFailed(f"result timestamps must be increasing (index {bad + 1})")
        bad = _first(~np.isfinite(scores))
        if bad is not None:
            raise AlgorithmFailed(f"result score at index {bad} is {scores[bad]}; must be finite")
    n = timestamps.shape[0]
    band: dict[str, F64Array | None] = {}
    for name in ("expected", "lower", "upper"):
        arr = getattr(result, name)
        if arr is None:
            band[name] = None
            continue
        arr = np.asarray(arr, dtype=np.float64)
        if arr.shape != (n,):
            raise AlgorithmFailed(f"result {name} has shape {arr.shape}; expected ({n},)")
        bad = _first(np.isinf(arr))
        if bad is not None:
            raise AlgorithmFailed(f"result {name}[{bad}] is infinite; use NaN for 'no opinion'")
        band[name] = arr
    return DetectResult(
        timestamps=ts.astype(np.int64, copy=False),
        scores=scores.astype(np.float64, copy=False),
        **band,
        explanations=result.explanations,  # checked by interfaces.explain when asked for
    )


def check_rca_scores(scores: object, allowed_keys: set[str]) -> Mapping[str, float]:
    if not isinstance(scores, Mapping):
        raise AlgorithmFailed(
            f"simple_rca returned {type(scores).__name__}, expected a mapping of key to score"
        )
    for key, score in scores.items():
        if key not in allowed_keys:
            raise AlgorithmFailed(f"simple_rca returned key {key!r}, which is no related metric")
        if not isinstance(score, int | float | np.floating | np.integer) or not np.isfinite(score):
            raise AlgorithmFailed(
                f"simple_rca returned score {score!r} for {key!r}; must be finite"
            )
    return scores
