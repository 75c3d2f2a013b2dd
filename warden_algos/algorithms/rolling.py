"""Trailing-window statistics in O(n), NaN-aware, without a Python loop over points.

Window sums come from prefix sums. Plain prefix sums over a long series lose precision (the running
total grows with n, and variance is a difference of two large numbers), so the series is centred
first and the prefix sums restart every ``block`` points: a window then spans at most two blocks and
is combined from block-local partial sums, whose size is bounded by the block, not the series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from warden_algos.interfaces import F64Array


@dataclass(frozen=True, slots=True)
class WindowStats:
    count: F64Array  # valid (non-NaN) points in the window
    mean: F64Array  # NaN where count < min_periods
    std: F64Array  # sample standard deviation (ddof=1); NaN where count < min_periods


def trailing_window_sums(x: F64Array, window: int) -> F64Array:
    """``out[i] = sum(x[max(0, i - window) : i])``: the ``window`` points before ``i``."""
    n = x.shape[0]
    block = max(4096, 2 * window)
    padded = np.zeros(-(-n // block) * block)
    padded[:n] = x
    blocks = padded.reshape(-1, block)
    inclusive = np.cumsum(blocks, axis=1)
    totals = inclusive[:, -1]
    exclusive = (inclusive - blocks).ravel()  # sum of the block's points before each position
    end = np.arange(n)
    start = np.maximum(end - window, 0)
    end_block = end // block
    start_block = start // block
    same_block = end_block == start_block
    sums: F64Array = np.where(
        same_block,
        exclusive[end] - exclusive[start],
        totals[start_block] - exclusive[start] + exclusive[end],
    )
    return sums


def trailing_window_stats(values: F64Array, window: int, min_periods: int) -> WindowStats:
    """Mean and standard deviation of the ``window`` points before each point, NaNs skipped."""
    valid = ~np.isnan(values)
    centre = float(np.mean(values[valid])) if valid.any() else 0.0
    centred = np.where(valid, values - centre, 0.0)
    count = trailing_window_sums(valid.astype(np.float64), window)
    total = trailing_window_sums(centred, window)
    total_sq = trailing_window_sums(centred * centred, window)
    enough = count >= max(min_periods, 2)
    safe_count = np.where(enough, count, 1.0)
    mean_centred = total / safe_count
    variance = (total_sq - total * mean_centred) / np.where(enough, count - 1.0, 1.0)
    std = np.sqrt(np.maximum(variance, 0.0))
    nan = np.nan
    return WindowStats(
        count=count,
        mean=np.where(enough, mean_centred + centre, nan),
        std=np.where(enough, std, nan),
    )
