"""pandas convenience for notebooks: run a detect algorithm on a ``pd.Series``.

Only this module imports pandas, and nothing on the dispatcher's path imports this module: the
platform's hot path stays numpy-only. Naive timestamps are taken as UTC, as on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .base import DetectAlgorithm
from .errors import InvalidInput
from .run import run_detect
from .types import DetectResult, TimeSeries


def _unix_seconds(index: pd.Index) -> np.ndarray[Any, np.dtype[np.int64]]:
    if not isinstance(index, pd.DatetimeIndex):
        raise InvalidInput(
            f"the series needs a DatetimeIndex, got {type(index).__name__}", field="series.index"
        )
    utc = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return np.asarray(utc.as_unit("s").asi8, dtype=np.int64)


def to_time_series(series: pd.Series, dimensions: dict[str, str] | None = None) -> TimeSeries:
    """A ``TimeSeries`` from a ``pd.Series`` with a DatetimeIndex (for RCA in notebooks)."""
    return TimeSeries(
        dimensions=dict(dimensions or {}),
        times=_unix_seconds(series.index),
        values=series.to_numpy(dtype=np.float64, na_value=np.nan),
    )


def detect_series(
    algorithm: DetectAlgorithm[Any], series: pd.Series, dimensions: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per input point: ``value``, ``is_anomaly``, ``score`` (NaN where not flagged) and,
    when the algorithm returns a band, ``expected``/``lower``/``upper``. Indexed like ``series``.
    """
    timestamps = _unix_seconds(series.index)
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    result: DetectResult = run_detect(algorithm, timestamps, values, dimensions)
    positions = np.searchsorted(timestamps, result.timestamps)
    is_anomaly = np.zeros(timestamps.shape[0], dtype=bool)
    is_anomaly[positions] = True
    score = np.full(timestamps.shape[0], np.nan)
    score[positions] = result.scores
    frame = pd.DataFrame(
        {"value": values, "is_anomaly": is_anomaly, "score": score}, index=series.index
    )
    for name in ("expected", "lower", "upper"):
        band = getattr(result, name)
        if band is not None:
            frame[name] = band
    return frame
