"""One-class SVM (RBF) over each point's scaled lagged window (scikit-learn fits; numpy scores)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from warden_algos.interfaces import F64Array, StateArray
from warden_algos.interfaces.budget import WorkEstimate
from warden_algos.learned.detector import LearnedDetector, LearnedParams, LearnedState
from warden_algos.learned.svm import check_svm, fit_svm, svm_log_scores, svm_scores


class OneClassSVMParams(LearnedParams):
    window: int = Field(
        4,
        ge=2,
        le=256,
        description="Values in each point's lagged window (the point and the ones before it).",
    )
    sigmas: float = Field(
        8.0,
        gt=0,
        le=1e6,
        description="Flag a point when its score is more than this many sigmas above the median "
        "score of the training windows.",
    )
    max_fit_windows: int = Field(
        2048,
        ge=16,
        le=20_000,
        description="At most this many windows train the model, evenly spaced over the "
        "history: the SVM's fit grows with their square and its state with their number.",
    )
    nu: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Upper bound on the fraction of training windows left outside the learnt "
        "support (and lower bound on the fraction that become support vectors).",
    )
    gamma: float | None = Field(
        None,
        gt=0,
        le=1e6,
        description="RBF kernel width (1 / squared distance); null: scikit-learn's 'scale', "
        "1 / (features x variance of the scaled windows).",
    )


class OneClassSVMState(LearnedState):
    svm_vectors: StateArray = Field(description="Support vectors (float64, vectors x features).")
    svm_weights: StateArray = Field(description="Dual coefficient of each support vector.")
    svm_offset: StateArray = Field(description="Intercept and gamma of the decision function.")


class OneClassSVM(LearnedDetector[OneClassSVMParams, OneClassSVMState]):
    """Fits a One-class SVM with an RBF kernel (scikit-learn's libsvm) on the series' robustly
    scaled lagged windows and flags the points whose window lies far outside the learnt support.

    Use it when the normal behaviour is a compact set of shapes (a sensor's operating regimes, a
    metric that moves within a few typical patterns) and you can train on history that is mostly
    normal: it learns the boundary of that history, and ``nu`` says how much of it may lie
    outside. It is smoother than a forest (distances, not axis splits), so it notices an unusual
    combination of otherwise normal lags. Avoid it on long training histories (its fit grows with
    the square of the training windows, hence ``max_fit_windows`` 2,048) and when the history is
    full of anomalies (they become part of the support).

    Embedding as ``isolation_forest``; the features are centred on their medians and divided by
    their robust spreads inside the model (an RBF kernel needs one scale). Scoring: ``-f(x)``, the
    decision function's opposite, computed by numpy from the support vectors, as a robust z-score
    against the training windows'; flagged above ``sigmas``. A matrix row (whitened, see
    ``learned.detector``) is scored by ``-log`` of the kernel sum instead, which orders rows alike
    but does not level off outside the support (``learned.svm``).

    Trainable: the state is the support vectors and their weights (at least ``nu`` of the
    training windows, ``window + 2`` floats each), the scaling and the last ``window - 1`` values;
    ``detect_next`` scores new points without scikit-learn. Not causal: a stateless ``detect``
    fits on every point it is given.
    """

    name = "one_class_svm"
    summary = "One-class SVM (RBF) on scaled lagged windows (scikit-learn fit, numpy scoring)."

    def fit_model(self, rows: F64Array) -> dict[str, Any]:
        return fit_svm(rows, self.params.nu, self.params.gamma)

    def check_model(self, state: OneClassSVMState, features: int) -> None:
        check_svm(self.model_of(state), features, self.params.max_fit_windows)

    def model_scores(self, model: dict[str, Any], rows: F64Array) -> F64Array:
        return svm_scores(model, rows)

    def matrix_model_scores(self, model: dict[str, Any], rows: F64Array) -> F64Array:
        """A matrix row's score keeps growing outside the support (``svm_log_scores``)."""
        return svm_log_scores(model, rows)

    def model_work(self, fit_rows: int, score_rows: int, features: int) -> WorkEstimate:
        # libsvm's SMO: a kernel row per iteration, about as many iterations as rows (cached
        # kernel of at most 200 MB); scoring: one kernel cell per row and support vector.
        # A stored model may hold up to max_fit_windows support vectors, whatever this request.
        vectors = self.params.max_fit_windows
        fit_ops = 30 * fit_rows * fit_rows * features
        score_ops = 6 * (fit_rows + score_rows) * vectors * features
        return WorkEstimate(
            peak_bytes=200 * (1 << 20) + (1 << 22) * 8 * 3 + fit_rows * features * 24,
            operations=fit_ops + score_ops,
        )
