"""A One-class SVM as arrays: fitted by scikit-learn (libsvm), stored as its support vectors.

A fitted RBF ``OneClassSVM`` decides with ``f(x) = sum_i a_i exp(-gamma |x - s_i|^2) + b``:
positive inside the learnt support of the training rows, negative outside. The state keeps the
support vectors ``s`` (``svm_vectors``, rows x features), their weights ``a`` (``svm_weights``),
the intercept ``b`` and ``gamma`` (``svm_offset``: ``[b, gamma]``). Scoring evaluates ``-f(x)``
(higher is more anomalous), equal to scikit-learn's ``-decision_function`` (tests compare them).

A matrix row is scored by :func:`svm_log_scores` instead: ``-log(sum_i a_i exp(-gamma |x -
s_i|^2))``, the negative log of the kernel sum. It orders rows as ``-f(x)`` does (the weights are
positive), but ``-f(x)`` levels off at ``-b`` once a row is a few kernel widths from every support
vector, so that a row far outside the support scores no higher than one just outside it (on the
multivariate benchmark no row got past z = 6, and the default threshold of 8 sigmas flagged
nothing); the log keeps growing, with the squared distance to the nearest support vectors.

The SVM needs its features on one scale (an RBF kernel measures plain Euclidean distance): the
detector scales them robustly before fitting and stores that scaling in the model too. The number
of support vectors grows with the training rows (about ``nu`` of them at least), so the detector
fits on at most ``max_fit_windows`` rows, which bounds both the state and the cost of scoring a
row (one kernel evaluation per support vector).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from warden_algos.interfaces import F64Array, InvalidInput

#: Kernel cells computed at once (rows x support vectors): ~32 MiB of float64.
_CELLS_PER_CHUNK = 1 << 22


def fit_svm(rows: F64Array, nu: float, gamma: float | None) -> dict[str, Any]:
    """Fit scikit-learn's RBF OneClassSVM on scaled ``rows`` and take its arrays."""
    from sklearn.svm import OneClassSVM

    if gamma is None:  # scikit-learn's "scale", computed without overflowing
        from .scaling import safe_std

        spread = safe_std(rows.reshape(-1))
        variance = spread * spread
        gamma = 1.0 / (rows.shape[1] * variance) if 0 < variance < float("inf") else 1.0
        gamma = gamma if 0 < gamma < float("inf") else 1.0
    svm = OneClassSVM(kernel="rbf", nu=nu, gamma=gamma).fit(rows)
    return svm_arrays(svm)


def svm_arrays(svm: Any) -> dict[str, Any]:
    return {
        "svm_vectors": np.ascontiguousarray(svm.support_vectors_, dtype=np.float64),
        "svm_weights": np.ascontiguousarray(svm.dual_coef_[0], dtype=np.float64),
        "svm_offset": np.asarray([float(svm.intercept_[0]), float(svm._gamma)], dtype=np.float64),
    }


def check_svm(model: dict[str, Any], features: int, max_vectors: int) -> None:
    vectors = np.asarray(model["svm_vectors"])
    weights = np.asarray(model["svm_weights"])
    offset = np.asarray(model["svm_offset"])

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"the state's one-class SVM is malformed: {why}", field="state")

    if vectors.ndim != 2 or vectors.shape[1] != features:
        raise bad(f"its support vectors are not rows of {features} features")
    if weights.shape != (vectors.shape[0],) or offset.shape != (2,):
        raise bad("its weights do not match its support vectors")
    if vectors.shape[0] > max_vectors:
        raise bad(f"it has more support vectors than {max_vectors} training rows make")
    if not all(np.isfinite(array).all() for array in (vectors, weights, offset)):
        raise bad("it holds non-finite numbers")
    if not offset[1] > 0:
        raise bad("its gamma is not positive")


def svm_scores(model: dict[str, Any], rows: F64Array) -> F64Array:
    """``-decision_function`` of each complete row: higher is more anomalous."""
    vectors = np.asarray(model["svm_vectors"], dtype=np.float64)
    weights = np.asarray(model["svm_weights"], dtype=np.float64)
    intercept, gamma = (float(v) for v in model["svm_offset"])
    vector_norms = np.einsum("ij,ij->i", vectors, vectors)
    out = np.empty(rows.shape[0], dtype=np.float64)
    step = max(1, _CELLS_PER_CHUNK // max(1, vectors.shape[0]))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            distances = np.einsum("ij,ij->i", chunk, chunk)[:, None] + vector_norms[None, :]
            # einsum, not BLAS: the same summation order for a row whatever the chunk's size,
            # so streaming a point gives the bytes a batch gives it.
            distances -= 2.0 * np.einsum("ij,kj->ik", chunk, vectors, optimize=False)
            np.maximum(distances, 0.0, out=distances)
            kernel = np.exp(-gamma * distances)
            scores = np.einsum("ik,k->i", kernel, weights, optimize=False)
            out[start : start + step] = -(scores + intercept)
    return out


def svm_log_scores(model: dict[str, Any], rows: F64Array) -> F64Array:
    """``-log(sum_i a_i exp(-gamma |x - s_i|^2))`` of each complete row (log-sum-exp, so a row
    far from every support vector gets its finite, large score rather than -log(0))."""
    vectors = np.asarray(model["svm_vectors"], dtype=np.float64)
    weights = np.asarray(model["svm_weights"], dtype=np.float64)
    gamma = float(model["svm_offset"][1])
    vector_norms = np.einsum("ij,ij->i", vectors, vectors)
    with np.errstate(divide="ignore"):
        log_weights = np.log(np.where(weights > 0, weights, 0.0))
    out = np.empty(rows.shape[0], dtype=np.float64)
    step = max(1, _CELLS_PER_CHUNK // max(1, vectors.shape[0]))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, rows.shape[0], step):
            chunk = rows[start : start + step]
            distances = np.einsum("ij,ij->i", chunk, chunk)[:, None] + vector_norms[None, :]
            distances -= 2.0 * np.einsum("ij,kj->ik", chunk, vectors, optimize=False)
            np.maximum(distances, 0.0, out=distances)
            terms = log_weights[None, :] - gamma * distances
            top = terms.max(axis=1, keepdims=True) if terms.shape[1] else np.zeros((len(chunk), 1))
            total = np.einsum("ik->i", np.exp(terms - top), optimize=False)
            out[start : start + step] = -(top[:, 0] + np.log(total))
    return out
