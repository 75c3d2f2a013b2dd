"""A small autoencoder (scikit-learn MLP) on scaled lagged windows: k-sigma reconstruction error."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from warden_algos.interfaces import F64Array, InvalidInput, StateArray
from warden_algos.interfaces.budget import WorkEstimate
from warden_algos.learned.detector import LearnedDetector, LearnedParams, LearnedState
from warden_algos.learned.mlp import (
    check_autoencoder,
    fit_autoencoder,
    reconstructed,
    reconstruction_errors,
)
from warden_algos.learned.scaling import Scale, score_scale, unwhitened


def _finite_or_nan(values: F64Array) -> F64Array:
    out: F64Array = np.where(np.isfinite(values), values, np.nan)
    return out


class AutoencoderParams(LearnedParams):
    window: int = Field(
        16,
        ge=2,
        le=256,
        description="Values in each point's lagged window (the point and the ones before it): "
        "the shapes the network learns to reproduce span this many points.",
    )
    sigmas: float = Field(
        8.0,
        gt=0,
        le=1e6,
        description="Flag a point when its window's reconstruction error is more than this many "
        "sigmas above the median error of the training windows.",
    )
    hidden: int = Field(32, ge=2, le=512, description="Units of the two outer hidden layers.")
    bottleneck: int = Field(
        4,
        ge=1,
        le=256,
        description="Units of the middle layer: what a window must be squeezed through. Fewer "
        "than the window's features, or the network learns to copy any window.",
    )
    max_iter: int = Field(
        200,
        ge=1,
        le=5000,
        description="Training epochs at most (Adam; stops earlier when the loss stops improving).",
    )
    alpha: float = Field(
        1e-4, ge=0, le=10, description="L2 penalty on the weights (scikit-learn's alpha)."
    )

    @model_validator(mode="after")
    def _narrow_middle(self) -> AutoencoderParams:
        if self.bottleneck > self.hidden:
            raise ValueError("bottleneck must not be wider than hidden")
        return self


class AutoencoderState(LearnedState):
    mlp_w0: StateArray = Field(description="Weights, input -> hidden (features x hidden).")
    mlp_b0: StateArray = Field(description="Biases of the first hidden layer.")
    mlp_w1: StateArray = Field(description="Weights, hidden -> bottleneck.")
    mlp_b1: StateArray = Field(description="Biases of the bottleneck.")
    mlp_w2: StateArray = Field(description="Weights, bottleneck -> hidden.")
    mlp_b2: StateArray = Field(description="Biases of the second hidden layer.")
    mlp_w3: StateArray = Field(description="Weights, hidden -> output (hidden x features).")
    mlp_b3: StateArray = Field(description="Biases of the output.")
    point_sigma: StateArray = Field(
        description="Sigma of the training windows' residual at their own point, in the series' "
        "units (one element; one per column for a matrix; empty if not fitted): the band's "
        "half-width per sigma."
    )


class Autoencoder(LearnedDetector[AutoencoderParams, AutoencoderState]):
    """Trains a small autoencoder (scikit-learn's MLPRegressor: window -> ``hidden`` ->
    ``bottleneck`` -> ``hidden`` -> window, tanh) to reproduce the series' scaled lagged windows
    and flags the points whose window it reconstructs far worse than the training windows (k-sigma
    on the reconstruction error). Returns the reconstruction of each point as ``expected``, with
    ``lower``/``upper`` at ``sigmas`` robust sigmas of the point residual around it.

    Use it for series with recurring local shapes (a batch job's ramp, a sensor's duty cycle)
    where an anomaly is a shape the history never showed, including one whose values are all in
    the normal range. It learns what to ignore (noise) from the history itself. Avoid it on short
    histories (it needs a few hundred windows to learn anything) and when fits must be fast: it is
    the slowest learned detector to fit (seconds at the defaults), though scoring is three matrix
    products per point.

    Embedding and scaling as ``one_class_svm``. Score: the mean squared reconstruction error of
    the window, in scaled units, as a robust z-score against the training windows' errors;
    flagged above ``sigmas``. On a matrix (whitened rows, see ``learned.detector``) the middle
    layer has fewer units than the matrix has columns (``middle_units``), and ``expected`` is the
    reconstruction of every cell in its column's units. The band shows the reconstructed point
    in the series' units: a point outside it was poorly reconstructed, though a window can also
    be flagged for its shape while its last point stays inside.

    Trainable: the state is the network's four weight matrices and biases (a few thousand floats),
    the scaling and the last ``window - 1`` values; ``detect_next`` scores without scikit-learn,
    the same however the points are chunked. Not causal: a stateless ``detect`` trains on every
    point it is given. Training is seeded (``seed``).
    """

    name = "autoencoder"
    summary = "MLP autoencoder on scaled lagged windows; k-sigma reconstruction error (trainable)."
    draws_band: ClassVar[bool] = True

    def fit_model(self, rows: F64Array) -> dict[str, Any]:
        p = self.params
        return fit_autoencoder(rows, p.hidden, p.bottleneck, p.max_iter, p.alpha, p.seed)

    def middle_units(self, columns: int) -> int:
        """Units of the middle layer: ``bottleneck``, and for a matrix fewer than its columns
        (a middle layer as wide as the row lets the network copy any row, anomalies included:
        on three correlated sensors the default 4 units flagged 1.4 % of the training rows
        themselves above 8 sigmas, 2 units none)."""
        bottleneck = self.params.bottleneck
        return max(1, min(bottleneck, columns - 1)) if columns else bottleneck

    def fit_matrix_model(self, rows: F64Array) -> dict[str, Any]:
        p = self.params
        middle = self.middle_units(rows.shape[1])
        return fit_autoencoder(rows, p.hidden, middle, p.max_iter, p.alpha, p.seed)

    def check_model(self, state: AutoencoderState, features: int) -> None:
        p = self.params
        middle = self.middle_units(len(state.columns))
        check_autoencoder(self.model_of(state), features, p.hidden, middle)
        sigma = np.asarray(state.point_sigma)
        wanted = (len(state.columns),) if state.columns else (1,)
        if sigma.shape != wanted or not (np.isfinite(sigma).all() and (sigma > 0).all()):
            raise InvalidInput(
                f"the state's point_sigma is not {wanted[0]} positive number(s)", field="state"
            )

    def model_scores(self, model: dict[str, Any], rows: F64Array) -> F64Array:
        return reconstruction_errors(rows, reconstructed(model, rows))

    def band_fields(
        self, model: dict[str, Any], rows: F64Array, scale: Scale, columns: list[str]
    ) -> dict[str, Any]:
        """The residual sigma of the point itself (lag_0) in the series' units, or of each
        column's value for a matrix (its residual taken back from whitened components)."""
        points = [self.params.window - 1] if not columns else list(range(len(columns)))
        residuals = rows - reconstructed(model, rows)
        if scale.whitening is not None:
            residuals = unwhitened(residuals, scale.whitening)
        sigmas = []
        for point in points:
            residual = residuals[:, point] * scale.spread[point]
            sigmas.append(score_scale(residual)[1])
        return {"point_sigma": np.asarray(sigmas, dtype=np.float64)}

    def model_band(
        self, model: dict[str, Any], rows: F64Array, scale: Scale, state: AutoencoderState
    ) -> dict[str, F64Array]:
        point = self.params.window - 1
        with np.errstate(over="ignore", invalid="ignore"):
            expected = reconstructed(model, rows)[:, point] * scale.spread[point]
            expected += scale.center[point]
            half = self.params.sigmas * float(state.point_sigma[0])
            lower, upper = expected - half, expected + half
        # a band edge beyond float64 (a huge point sigma, a huge reconstruction) is no opinion
        return {
            name: _finite_or_nan(band)
            for name, band in (("expected", expected), ("lower", lower), ("upper", upper))
        }

    def model_expected(
        self, model: dict[str, Any], rows: F64Array, scale: Scale, columns: int
    ) -> F64Array:
        """The reconstruction of each (whitened) row, back in the columns' units."""
        rebuilt = reconstructed(model, rows)
        if scale.whitening is not None:
            rebuilt = unwhitened(rebuilt, scale.whitening)
        with np.errstate(over="ignore", invalid="ignore"):
            out: F64Array = rebuilt[:, :columns] * scale.spread[:columns] + scale.center[:columns]
        return _finite_or_nan(out)

    def model_work(self, fit_rows: int, score_rows: int, features: int) -> WorkEstimate:
        p = self.params
        weights = 2 * features * p.hidden + 2 * p.hidden * p.bottleneck
        # Adam's forward and backward passes, about 16 operations per weight and row: calibrated
        # so that 5,000 epochs on 600 rows (28 s here) are estimated at twice that, and the
        # longest fit the default budget lets through stays well under half a minute.
        fit_ops = 16 * p.max_iter * fit_rows * weights
        score_ops = 4 * (2 * fit_rows + score_rows) * weights
        return WorkEstimate(
            peak_bytes=8 * 8192 * (2 * p.hidden + features) * 4 + fit_rows * features * 48,
            operations=fit_ops + score_ops,
        )
