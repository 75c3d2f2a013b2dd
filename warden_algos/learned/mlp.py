"""A small autoencoder as arrays: scikit-learn's MLPRegressor trained to reproduce its input.

The network maps a scaled row through ``hidden`` -> ``bottleneck`` -> ``hidden`` units (tanh)
back to the row (identity output), trained with Adam on the training rows as both input and
target. A row like the training ones is reproduced closely; an unusual one is not, and its
reconstruction error (the mean squared difference, in scaled units) is its anomaly score.

The state keeps each layer's weight matrix and bias (``mlp_w0``, ``mlp_b0``, ... in order), so
scoring is three matrix products and two tanh, equal to ``MLPRegressor.predict`` (tests compare
them). No deep-learning framework is needed to fit or to score. Training stops after
``max_iter`` epochs or when the loss stops improving; the fit is seeded, so the same history gives
the same weights on the same machine.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from warden_algos.interfaces import F64Array, InvalidInput

#: Layers of the network (input -> hidden -> bottleneck -> hidden -> output).
LAYERS = 4
#: Rows pushed through the network at once.
_ROWS_PER_CHUNK = 8192


def fit_autoencoder(
    rows: F64Array, hidden: int, bottleneck: int, max_iter: int, alpha: float, seed: int
) -> dict[str, Any]:
    """Train the autoencoder on scaled ``rows`` and take its layers."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    network = MLPRegressor(
        hidden_layer_sizes=(hidden, bottleneck, hidden),
        activation="tanh",
        solver="adam",
        alpha=alpha,
        batch_size=min(200, rows.shape[0]),
        max_iter=max_iter,
        shuffle=True,
        random_state=seed,
        tol=1e-5,
        n_iter_no_change=10,
    )
    with warnings.catch_warnings():
        # Stopping at max_iter is the budget the params set, not a problem to report.
        warnings.simplefilter("ignore", ConvergenceWarning)
        network.fit(rows, rows)
    return mlp_arrays(network)


def mlp_arrays(network: Any) -> dict[str, Any]:
    arrays: dict[str, Any] = {}
    for index, (weights, bias) in enumerate(zip(network.coefs_, network.intercepts_, strict=True)):
        arrays[f"mlp_w{index}"] = np.ascontiguousarray(weights, dtype=np.float64)
        arrays[f"mlp_b{index}"] = np.ascontiguousarray(bias, dtype=np.float64)
    return arrays


def layer_names() -> list[tuple[str, str]]:
    return [(f"mlp_w{index}", f"mlp_b{index}") for index in range(LAYERS)]


def check_autoencoder(model: dict[str, Any], features: int, hidden: int, bottleneck: int) -> None:
    """Refuse layers of other shapes than these params make (which also bounds the work)."""
    widths = [features, hidden, bottleneck, hidden, features]
    for index, (w_name, b_name) in enumerate(layer_names()):
        weights = np.asarray(model[w_name])
        bias = np.asarray(model[b_name])
        if weights.shape != (widths[index], widths[index + 1]) or bias.shape != (
            widths[index + 1],
        ):
            raise InvalidInput(
                f"the state's autoencoder is malformed: layer {index} is not "
                f"{widths[index]} x {widths[index + 1]} (the params' shape)",
                field="state",
            )
        if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
            raise InvalidInput(
                f"the state's autoencoder is malformed: layer {index} holds non-finite numbers",
                field="state",
            )


def reconstructed(model: dict[str, Any], rows: F64Array) -> F64Array:
    """The network's output for each complete scaled row (``MLPRegressor.predict``)."""
    out = np.empty_like(rows, dtype=np.float64)
    layers = [
        (np.asarray(model[w], dtype=np.float64), np.asarray(model[b], dtype=np.float64))
        for w, b in layer_names()
    ]
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, rows.shape[0], _ROWS_PER_CHUNK):
            activation = rows[start : start + _ROWS_PER_CHUNK]
            for index, (weights, bias) in enumerate(layers):
                activation = _rowwise_product(activation, weights) + bias
                if index < len(layers) - 1:
                    activation = np.tanh(activation)
            out[start : start + _ROWS_PER_CHUNK] = activation
    return out


def _rowwise_product(rows: F64Array, weights: F64Array) -> F64Array:
    """``rows @ weights`` summed in the same order for every row, whatever the row count (BLAS
    blocks differently for different shapes, so a point's score would depend on how many points
    came with it, and a stream would not reproduce a batch bit for bit)."""
    out: F64Array = np.einsum("ij,jk->ik", rows, weights, optimize=False)
    return out


def reconstruction_errors(rows: F64Array, rebuilt: F64Array) -> F64Array:
    """Mean squared difference per row: the anomaly score."""
    with np.errstate(over="ignore", invalid="ignore"):
        errors: F64Array = np.mean((rows - rebuilt) ** 2, axis=1)
    return errors
