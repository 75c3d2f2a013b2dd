"""The feature scaling a learned model carries inside it, and the score scale its threshold uses.

Features are centred on their median and divided by a robust spread (the interquartile range over
1.349, which is the standard deviation for normal data), so that kernel distances and network
weights see every feature on one scale and the anomalies inside the training history do not
stretch it. A feature that does not vary (a constant series) gets a spread of 1: it then only
moves when the data leaves the constant, and that movement is what should be flagged.

Scores are put on one scale too: ``(score - median) / sigma`` over the training rows' scores,
sigma being the standard deviation of the 99% most typical of them. Not the MAD: anomaly scores
are skewed to the right (a reconstruction error is a sum of squares), and a MAD-based sigma
measures only the narrow bulk, so that ordinary tail rows would score 30 sigmas. A learned
detector flags a point when its z exceeds ``sigmas``, so the threshold means the same for every
model (how unusual among the training rows), and a reported score is that z.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from warden_algos.interfaces import F64Array

#: IQR of a standard normal: the robust spread is IQR / this.
_IQR_PER_SIGMA = 1.3489795
#: The fraction of training scores the score sigma is taken over (the most typical ones).
_TYPICAL = 0.99


class Scale(NamedTuple):
    center: F64Array
    spread: F64Array


def feature_scale(rows: F64Array) -> Scale:
    """Per-column median and robust spread of complete ``rows`` (at least one, finite). A
    column whose IQR is 0 gets its standard deviation, one that does not vary at all (or whose
    spread overflows) a spread of 1."""
    with np.errstate(over="ignore", invalid="ignore"):
        q25, center, q75 = np.percentile(rows, [25.0, 50.0, 75.0], axis=0)
        spread = (q75 - q25) / _IQR_PER_SIGMA
    flat = ~(spread > 0) | ~np.isfinite(spread)
    if flat.any():
        std = np.array([safe_std(column) for column in rows.T])
        spread = np.where(flat, np.where((std > 0) & np.isfinite(std), std, 1.0), spread)
    return Scale(np.asarray(center, dtype=np.float64), np.asarray(spread, dtype=np.float64))


def safe_std(values: F64Array) -> float:
    """The standard deviation of finite ``values`` without overflowing on huge ones (computed
    on the values divided by the largest magnitude, then scaled back; inf only if it is)."""
    if values.size < 2:
        return 0.0
    magnitude = float(np.max(np.abs(values)))
    if not magnitude > 0 or not np.isfinite(magnitude):
        return 0.0 if magnitude == 0 else float("inf")
    with np.errstate(over="ignore"):
        return float(np.std(values / magnitude)) * magnitude


#: Scaled features are clipped to this many spreads: a row that far out is as unusual as a row
#: can usefully be, and squaring it (kernel distances, reconstruction errors) stays finite.
SCALED_LIMIT = 1e6


def scaled(rows: F64Array, scale: Scale) -> F64Array:
    """``(rows - center) / spread``, clipped to +-SCALED_LIMIT (NaN stays missing)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out: F64Array = (rows - scale.center) / scale.spread
    np.clip(out, -SCALED_LIMIT, SCALED_LIMIT, out=out)
    return out


def score_scale(scores: F64Array) -> tuple[float, float]:
    """(median, sigma) of the training rows' scores, sigma being the standard deviation of the
    99% lowest (the 1% most unusual training rows, where anomalies in the history sit, do not
    widen it). Never 0: a model that scores every training row alike gets a sigma of 1e-12 of
    the scores' magnitude, so that any row it scores higher stands out."""
    center = float(np.median(scores))
    typical = scores[scores <= np.quantile(scores, _TYPICAL)]
    sigma = safe_std(typical)
    if not (sigma > 0 and np.isfinite(sigma)):
        sigma = safe_std(scores)
    if not (sigma > 0 and np.isfinite(sigma)):
        sigma = 1e-12 * max(1.0, min(abs(center), 1e300))
    return center, sigma
