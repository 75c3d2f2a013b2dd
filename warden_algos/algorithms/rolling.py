"""Trailing-window statistics in O(n), NaN-aware, without a Python loop over points.

Window sums come from prefix sums. Plain prefix sums over a long series lose precision (the running
total grows with n, and variance is a difference of two large numbers), so the series is centred
first and the prefix sums restart every ``block`` points: a window then spans at most two blocks and
is combined from block-local partial sums, whose size is bounded by the block, not the series.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from warden_algos.interfaces import F64Array


def check_min_periods(min_periods: int | None, window: int) -> None:
    """The one rule every trailing-window detector's params share, with one wording."""
    if min_periods is not None and min_periods > window:
        raise ValueError(f"min_periods ({min_periods}) exceeds window ({window})")


def lagged(a: F64Array, lag: int = 1) -> F64Array:
    """``out[i] = a[i - lag]`` (NaN for the first ``lag`` points); a negative lag looks ahead."""
    out = np.full(a.shape[0], np.nan)
    n = a.shape[0]
    if lag >= 0:
        if lag < n:
            out[lag:] = a[: n - lag]
    elif -lag < n:
        out[: n + lag] = a[-lag:]
    return out


class WindowStats(NamedTuple):
    mean: F64Array  # NaN where count < min_periods
    std: F64Array  # sample standard deviation (ddof=1); NaN where count < min_periods
    level: float  # mean of the whole series: its scale, for relative tolerances


def trailing_window_sums(x: F64Array, window: int) -> F64Array:
    """``out[..., i] = sum(x[..., max(0, i - window) : i])``: the ``window`` points before ``i``.

    ``x`` may stack several series (shape ``(k, n)``) so that they share one pass. Only slices and
    one cumulative sum: no gathers, so it runs at memory speed.
    """
    n = x.shape[-1]
    lead = x.shape[:-1]
    block = max(4096, 2 * window)  # >= 2 * window: a window spans at most two blocks
    if n <= block:  # one block: four numpy calls, which matters for short series
        exclusive = np.cumsum(x, axis=-1)
        exclusive -= x
        out = exclusive.copy()
        if window < n:
            out[..., window:] -= exclusive[..., : n - window]
        return out
    n_blocks = -(-n // block)
    padded = np.zeros((*lead, n_blocks * block))
    padded[..., :n] = x
    blocks = padded.reshape(*lead, n_blocks, block)
    totals = blocks.sum(axis=-1)
    # Block-local exclusive prefix sums: E[i] = sum of the block's points before i.
    exclusive = np.cumsum(blocks, axis=-1)
    exclusive -= blocks
    flat = exclusive.reshape(*lead, n_blocks * block)
    lag = min(window, n_blocks * block)
    out = padded.reshape(*lead, n_blocks * block)  # reuse the padded buffer: no fresh pages
    out[..., :lag] = flat[..., :lag]
    np.subtract(flat[..., lag:], flat[..., : flat.shape[-1] - lag], out=out[..., lag:])
    # A window that starts in the previous block also holds that block's points after its start:
    # (total of block b-1) - E[start] + E[i] = (E[i] - E[start]) + total of block b-1.
    out.reshape(*lead, n_blocks, block)[..., 1:, :lag] += totals[..., :-1, None]
    sums: F64Array = out[..., :n]
    return sums


def trailing_window_stats(values: F64Array, window: int, min_periods: int) -> WindowStats:
    """Mean and standard deviation of the ``window`` points before each point, NaNs skipped.

    Written as in-place passes over the data: at a million points each pass costs about a
    millisecond, so the number of passes is the running time.
    """
    n = values.shape[0]
    missing = np.isnan(values)
    has_missing = bool(missing.any())
    if has_missing:
        valid = ~missing
        count = trailing_window_sums(valid.astype(np.float64), window)
        level = float(values[valid].mean()) if valid.any() else 0.0
        centred = values - level
        centred[missing] = 0.0
    else:  # the common case: the count is min(i, window), known without a pass
        count = np.minimum(np.arange(min(n, window + 1), dtype=np.float64), float(window))
        level = float(values.mean()) if n else 0.0
        centred = values - level
    total = trailing_window_sums(centred, window)
    centred *= centred
    variance = trailing_window_sums(centred, window)  # the sum of squares, for now
    if has_missing:
        divisor = count
    else:  # only the head has fewer than `window` points before it
        divisor = np.full(n, float(window))
        divisor[: count.shape[0]] = count
    with np.errstate(divide="ignore", invalid="ignore"):  # too-short windows are NaN below
        mean = total / divisor  # centred mean
        total *= mean
        variance -= total
        divisor -= 1.0
        variance /= divisor
    np.maximum(variance, 0.0, out=variance)
    std = np.sqrt(variance, out=variance)
    mean += level
    short = (divisor + 1.0 < max(min_periods, 2)) if has_missing else None
    if short is not None:
        mean[short] = np.nan
        std[short] = np.nan
    else:
        head = min(n, max(min_periods, 2))
        mean[:head] = np.nan
        std[:head] = np.nan
    return WindowStats(mean=mean, std=std, level=level)
