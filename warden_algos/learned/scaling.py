"""The feature scaling a learned model carries inside it, and the score scale its threshold uses.

Features are centred on their median and divided by a robust spread (the interquartile range over
1.349, which is the standard deviation for normal data), so that kernel distances and network
weights see every feature on one scale and the anomalies inside the training history do not
stretch it. A feature that does not vary (a constant series) gets a spread of 1: it then only
moves when the data leaves the constant, and that movement is what should be flagged.

A matrix row (the values of several columns at one time) is then whitened as well: rotated onto
the principal axes of the scaled training rows and divided by each axis's standard deviation
(:func:`fit_whitening`), so that the model sees uncorrelated components of unit variance. What
correlated columns do together then lies along a few axes and each way of departing from it (one
column leaving the others, a broken correlation) along an axis of its own, small in the training
rows: a tree's split on that axis isolates such a row, and a kernel or a network sees it as far.
Without whitening a row whose one column strays a few noise sigmas from where the others put it
is as near its neighbours as any: on the synthetic benchmark (``benchmarks/multivariate_quality
.py``, tuning seeds 1000-1009) whitening took the AUC-PR of the forest from 0.14 to 0.60, of the
SVM from 0.28 to 0.64 and of the autoencoder from 0.58 to 0.69.

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

from warden_algos.interfaces import F64Array, InvalidInput

#: IQR of a standard normal: the robust spread is IQR / this.
_IQR_PER_SIGMA = 1.3489795
#: The fraction of training scores the score sigma is taken over (the most typical ones).
_TYPICAL = 0.99


class Whitening(NamedTuple):
    """Principal axes of scaled matrix rows (``rotation``: columns x axes, orthonormal) and each
    axis's standard deviation (``spread``)."""

    rotation: F64Array
    spread: F64Array


class Scale(NamedTuple):
    center: F64Array
    spread: F64Array
    #: Matrix rows only: the whitening applied after scaling (None for one series).
    whitening: Whitening | None = None


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


#: Scaled values are clipped to this many spreads when the covariance is estimated: a gross
#: outlier in the training rows (a spike the history holds) must not become an axis of its own.
COVARIANCE_CLIP = 5.0
#: An axis's variance is at least this fraction of the largest one's: columns that are exact
#: copies or sums of others leave axes of no variance, and dividing by 0 is no whitening.
VARIANCE_FLOOR = 1e-6


def fit_whitening(rows: F64Array) -> Whitening:
    """The whitening of scaled complete matrix ``rows`` (training rows x columns): the
    eigenvectors of their covariance, estimated on the rows clipped to +-COVARIANCE_CLIP and
    shrunk towards a multiple of the identity by Ledoit and Wolf's rule (scikit-learn's
    ``ledoit_wolf``: the fewer rows per column, the more; it keeps a few hundred rows of many
    columns from whitening the noise of its smallest axes into false alarms), each axis's
    variance floored at VARIANCE_FLOOR of the largest. Imports scikit-learn (fitting does)."""
    from sklearn.covariance import ledoit_wolf

    clipped = np.clip(np.nan_to_num(rows, nan=0.0), -COVARIANCE_CLIP, COVARIANCE_CLIP)
    if clipped.shape[0] < 2:
        covariance = np.eye(rows.shape[1])
    else:
        covariance = np.atleast_2d(np.asarray(ledoit_wolf(clipped)[0], dtype=np.float64))
    variance, rotation = np.linalg.eigh((covariance + covariance.T) / 2)
    largest = float(np.max(variance)) if variance.size else 0.0
    if not (largest > 0 and np.isfinite(largest)):
        return Whitening(np.eye(rows.shape[1]), np.ones(rows.shape[1]))
    variance = np.maximum(variance, VARIANCE_FLOOR * largest)
    return Whitening(
        np.ascontiguousarray(rotation, dtype=np.float64),
        np.sqrt(variance).astype(np.float64),
    )


def whitened(rows: F64Array, whitening: Whitening) -> F64Array:
    """Scaled matrix rows as whitened components: ``rows @ rotation / spread``, summed in the
    same order for every row whatever the number of rows (no BLAS: a streamed row gets the bytes
    a batch gives it)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out: F64Array = np.einsum("ij,jk->ik", rows, whitening.rotation, optimize=False)
        out /= whitening.spread
    return out


def unwhitened(components: F64Array, whitening: Whitening) -> F64Array:
    """Whitened components back to scaled values (the inverse of :func:`whitened`)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out: F64Array = np.einsum(
            "ik,jk->ij", components * whitening.spread, whitening.rotation, optimize=False
        )
    return out


def check_whitening(rotation: F64Array, spread: F64Array, columns: int) -> None:
    """Refuse a state's whitening that does not describe ``columns`` columns, or that holds
    non-finite or non-positive numbers (``InvalidInput``); a state of one series has none."""
    wanted = ((columns, columns), (columns,)) if columns else ((0,), (0,))
    if rotation.shape != wanted[0] or spread.shape != wanted[1]:
        raise InvalidInput(
            f"the state's whitening does not describe {columns} columns", field="state"
        )
    if columns and not (
        np.isfinite(rotation).all() and np.isfinite(spread).all() and (spread > 0).all()
    ):
        raise InvalidInput(
            "the state's whitening holds non-finite or non-positive numbers", field="state"
        )
