"""One series as a table of feature rows, so that a model made for tables can learn its shapes.

Point ``t`` of a series is described by the ``window`` values ending at it (its lagged window,
oldest first) and two simple features that a tree or kernel otherwise has to assemble from
several of them:

- ``step``: ``v[t] - v[t-1]``, how far the point jumped from the one before;
- ``offset``: ``v[t] - mean(window)``, how far the point stands from its own window.

So a row has ``window + 2`` columns (``feature_names`` lists them). The lags are positional: the
``window`` points that precede in the series, whatever the time between them (a gap in the data is
not filled). A row whose window holds a missing value has no features (the model gives it no
score), so a missing point silences ``window`` rows, and the first ``window - 1`` points of a
series have no full window unless the values before them are given (the state's tail).

A matrix of ``m`` columns (a multivariate request) is embedded without lags: a timestamp's row is
its ``m`` values, ``m`` features, whitened after scaling (``scaling.fit_whitening``). The model
then learns which combinations of the columns' levels occur together, so a row is unusual when
the columns stop moving together (a broken correlation), even if each column alone stays in its
range. Each column's step from the previous row is not a feature (it was, in version 1 of the
learned detectors' state): a sensor's noise makes its steps mostly noise, and on the synthetic
benchmark (``benchmarks/multivariate_quality.py``, tuning seeds 1000-1009, before whitening)
those ``m`` extra features of noise hid the departures from every model: the autoencoder's range
F1 went from 0.43 to 0.75 and its AUC-PR from 0.23 to 0.58 without them, the SVM's AUC-PR from
0.18 to 0.28. A row with a missing cell is not scored; the rows around it are.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from warden_algos.interfaces import F64Array

#: Columns besides the lagged window.
EXTRA_FEATURES = ("step", "offset")


def feature_count(window: int) -> int:
    return window + len(EXTRA_FEATURES)


def feature_names(window: int) -> list[str]:
    """Column names of an embedded row: ``lag_{k}`` is the value k points before the row's own
    (``lag_0``), then the extra features."""
    return [f"lag_{k}" for k in range(window - 1, -1, -1)] + list(EXTRA_FEATURES)


def embedded(
    values: F64Array, window: int, before: F64Array
) -> tuple[F64Array, npt.NDArray[np.bool_]]:
    """The rows of ``values`` (one per value) and which are complete.

    ``before`` holds the ``window - 1`` values preceding ``values`` (NaN where the series had not
    started). Rows that are not complete are NaN. Non-finite values count as missing.
    """
    if values.shape[0] == 0:
        return np.empty((0, feature_count(window))), np.zeros(0, dtype=bool)
    joined = np.concatenate([np.asarray(before, dtype=np.float64), values])
    joined[~np.isfinite(joined)] = np.nan
    lags = sliding_window_view(joined, window)  # (n, window), a view
    n = lags.shape[0]
    rows = np.empty((n, feature_count(window)), dtype=np.float64)
    rows[:, :window] = lags
    current = lags[:, -1]
    with np.errstate(over="ignore", invalid="ignore"):
        rows[:, window] = current - lags[:, -2] if window > 1 else 0.0
        rows[:, window + 1] = current - lags.mean(axis=1)
    _finite_or_missing(rows)
    complete: npt.NDArray[np.bool_] = ~np.isnan(rows).any(axis=1)  # type: ignore[assignment]
    return rows, complete


#: Features are kept within this magnitude: a step or mean of values near the float64 limit
#: overflows, and the row must stay a (very unusual) row rather than become a missing one.
FEATURE_LIMIT = 1e300


def _finite_or_missing(rows: F64Array) -> None:
    """Clip overflowed features (inf) to +-FEATURE_LIMIT in place; NaN stays missing."""
    np.clip(rows, -FEATURE_LIMIT, FEATURE_LIMIT, out=rows)


def tail(values: F64Array, window: int, before: F64Array) -> F64Array:
    """The ``window - 1`` values that precede the point after ``values``: the next call's
    ``before``."""
    keep = window - 1
    if keep == 0:
        return np.empty(0, dtype=np.float64)
    joined = np.concatenate([np.asarray(before, dtype=np.float64), values])
    out = np.array(joined[-keep:], dtype=np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def no_history(window: int) -> F64Array:
    """``before`` for the start of a series."""
    return np.full(window - 1, np.nan)


# -- a matrix of columns ------------------------------------------------------------------------


def matrix_feature_count(columns: int) -> int:
    return columns


def matrix_feature_names(columns: list[str]) -> list[str]:
    """A matrix row's features: every column's value; feature ``j`` is column ``j``."""
    return list(columns)


def matrix_embedded(matrix: F64Array) -> tuple[F64Array, npt.NDArray[np.bool_]]:
    """The rows of a matrix (one per timestamp, its ``m`` values; non-finite = missing) and
    which are complete (no missing cell)."""
    rows = np.where(np.isfinite(matrix), matrix, np.nan).astype(np.float64)
    complete: npt.NDArray[np.bool_] = ~np.isnan(rows).any(axis=1)  # type: ignore[assignment]
    return rows, complete
