"""The trainable detector the learned models share: embed, scale, fit, threshold, stream.

``fit`` embeds the history (``embedding``), keeps at most ``max_fit_windows`` complete rows
(evenly spaced, so the whole history is represented and nothing random is drawn), scales them
robustly (``scaling``), fits the model on them, scores them with the model's numpy scorer and
keeps the median and robust sigma of those scores. The state holds the model's arrays, the
scaling, that score scale and the last ``window - 1`` values (the next point's lags).

``detect_next`` embeds the new points after the state's tail, scores them and flags those whose
robust z-score exceeds ``sigmas``; the reported score is that z. The model never changes while
scoring, so new points get the same scores however they are chunked. ``detect`` (stateless) fits
on the history it is given and scores it: not causal, since every point helps fit the model
that scores it.

A matrix of columns goes the same way with a row per timestamp (its values), which is whitened
after scaling (``scaling.fit_whitening``: the state keeps the axes and their spreads) before the
model fits or scores it. A flagged row's column shares come from repairing one column at a time:
the column's value is set to what the other columns predict for it (the training rows'
conditional mean, from the inverse covariance the whitening holds), and the score's drop is that
column's weight. Version 2 of the state (version 1 had rows of values and steps, not whitened: a
matrix state of version 1 is refused, to be fitted again; one of a single series reads as it is).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from warden_algos.extras import require
from warden_algos.interfaces import (
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
    InvalidInput,
)
from warden_algos.interfaces.budget import InputShape, WorkEstimate
from warden_algos.interfaces.errors import IncompatibleState
from warden_algos.interfaces.multivariate import MultivariateResult, TrainableMultivariate
from warden_algos.interfaces.state import AlgorithmState, StateArray
from warden_algos.interfaces.streaming import continuing_flags, still_open
from warden_algos.interfaces.trainable import TrainableDetector

from .embedding import (
    embedded,
    feature_count,
    matrix_embedded,
    matrix_feature_count,
    no_history,
    tail,
)
from .scaling import (
    Scale,
    Whitening,
    check_whitening,
    feature_scale,
    fit_whitening,
    scaled,
    score_scale,
    whitened,
)

#: A z-score reported for a row the model scores as non-finite (values so large that the scaled
#: row overflows): the most anomalous a row can be, kept finite for the wire.
_OFF_THE_SCALE = 1e300


class LearnedParams(DetectorParams):
    """The params every learned detector shares: how a series becomes rows, how much of it
    trains the model, and where the threshold is."""

    window: int = Field(
        8,
        ge=2,
        le=256,
        description="Values in each point's lagged window (the point and the ones before it): "
        "the shapes the model learns span this many points.",
    )
    sigmas: float = Field(
        6.0,
        gt=0,
        le=1e6,
        description="Flag a point when its score is more than this many robust sigmas above the "
        "median score of the training windows.",
    )
    max_fit_windows: int = Field(
        4096,
        ge=16,
        le=100_000,
        description="At most this many windows train the model, evenly spaced over the "
        "history: bounds the fit's time and the state's size.",
    )
    min_fit_windows: int = Field(
        64,
        ge=8,
        le=100_000,
        description="Fewer complete windows than this in the history: no model, and no point "
        "is scored.",
    )
    seed: int = Field(
        0, ge=0, le=2**32 - 1, description="Seed of the model's randomness (fits are repeatable)."
    )


class LearnedState(AlgorithmState):
    """What every learned detector's state holds besides its model's arrays."""

    fitted: bool = Field(
        description="Whether a model was fitted (the history had min_fit_windows windows)."
    )
    tail: StateArray = Field(
        description="The last window - 1 values seen (float64, NaN for missing): the lags of "
        "the next point; empty for a matrix (a row is scored alone)."
    )
    feature_center: StateArray = Field(
        description="Median of each feature over the training windows (float64; empty if not "
        "fitted)."
    )
    feature_spread: StateArray = Field(
        description="Robust spread of each feature (IQR / 1.349, float64; empty if not fitted)."
    )
    score_scale: StateArray = Field(
        description="Median and robust sigma of the training windows' scores (float64, two "
        "elements; empty if not fitted): a point's z is (score - median) / sigma."
    )
    open_incident: bool = Field(
        False, description="Whether the last point seen was flagged (its incident continues)."
    )
    columns: list[str] = Field(
        default_factory=list,
        description="The matrix columns the model was fitted on, in order (empty: one series).",
    )
    feature_rotation: StateArray = Field(
        description="A matrix's whitening: the principal axes of the scaled training rows "
        "(float64, columns x axes, orthonormal; empty for one series or if not fitted)."
    )
    component_spread: StateArray = Field(
        description="The standard deviation of the training rows along each axis (float64, one "
        "per axis; empty for one series or if not fitted): a row's whitened components are "
        "(scaled row @ feature_rotation) / component_spread."
    )


LP = TypeVar("LP", bound=LearnedParams)
LS = TypeVar("LS", bound=LearnedState)


class Scored(NamedTuple):
    """Per-point z-scores of a chunk, which points had a complete row, those rows scaled, and
    what the model saw of them (the scaled rows, whitened for a matrix)."""

    z: F64Array
    complete: npt.NDArray[np.bool_]
    rows: F64Array
    inputs: F64Array


def shares_of(weights: F64Array) -> F64Array:
    """Rows of non-negative weights as shares summing to 1 (equal shares where all are 0)."""
    clipped = np.clip(np.nan_to_num(weights, nan=0.0, posinf=1e300, neginf=0.0), 0.0, 1e300)
    totals = clipped.sum(axis=1, keepdims=True)
    equal = np.full_like(clipped, 1.0 / max(1, clipped.shape[1]))
    with np.errstate(invalid="ignore", over="ignore"):
        out: F64Array = np.where(totals > 0, clipped / np.where(totals > 0, totals, 1.0), equal)
    return out


class LearnedDetector(TrainableDetector[LP, LS], TrainableMultivariate, Generic[LP, LS]):
    """Base of the learned detectors: subclasses say how to fit, check and score their model."""

    causal: ClassVar[bool] = False
    #: Whether ``model_band`` draws ``expected``/``lower``/``upper``.
    draws_band: ClassVar[bool] = False
    #: 2: matrix rows are values only, whitened (1: values and steps).
    state_version: ClassVar[int] = 2

    # -- what a model supplies --------------------------------------------------------------

    @abstractmethod
    def fit_model(self, rows: F64Array) -> dict[str, Any]:
        """Fit on scaled complete rows (imports scikit-learn); the model's state arrays."""

    @abstractmethod
    def check_model(self, state: LS, features: int) -> None:
        """Refuse model arrays these params cannot have produced (``InvalidInput``)."""

    @abstractmethod
    def model_scores(self, model: dict[str, Any], rows: F64Array) -> F64Array:
        """Anomaly scores of scaled complete rows (numpy only): higher is more anomalous."""

    @abstractmethod
    def model_work(self, fit_rows: int, score_rows: int, features: int) -> WorkEstimate:
        """Peak bytes and operations of fitting on and scoring that many rows."""

    def fit_matrix_model(self, rows: F64Array) -> dict[str, Any]:
        """Fit on whitened matrix rows: ``fit_model`` unless a model needs another shape for a
        matrix (the autoencoder's middle layer, narrower than the row)."""
        return self.fit_model(rows)

    def matrix_model_scores(self, model: dict[str, Any], rows: F64Array) -> F64Array:
        """Anomaly scores of whitened matrix rows: ``model_scores`` unless a model needs
        another for a matrix (the SVM's, which otherwise levels off outside its support)."""
        return self.model_scores(model, rows)

    def model_band(
        self, model: dict[str, Any], rows: F64Array, scale: Scale, state: LS
    ) -> dict[str, F64Array] | None:
        """``expected``/``lower``/``upper`` for scored rows, if the model draws a band."""
        return None

    def band_fields(
        self, model: dict[str, Any], rows: F64Array, scale: Scale, columns: list[str]
    ) -> dict[str, Any]:
        """Extra state fields computed from the training rows as the model saw them (the band's
        width)."""
        return {}

    @classmethod
    def migrate_state(cls, from_version: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Version 1 -> 2: a single series' state reads as it is (no whitening); a matrix's
        was fitted on other rows (values and steps, not whitened) and is refused."""
        if from_version != 1:
            return super().migrate_state(from_version, fields)
        if fields.get("columns"):
            raise IncompatibleState(
                f"the state was fitted on a matrix by an earlier version of {cls.name} (rows of "
                "values and steps, not whitened): fit it again",
                field="state",
            )
        empty = np.empty(0, dtype=np.float64)
        return {**fields, "feature_rotation": empty, "component_spread": empty}

    # -- the detector -----------------------------------------------------------------------

    def model_of(self, state: LS) -> dict[str, Any]:
        base = set(LearnedState.model_fields)
        return {name: getattr(state, name) for name in type(state).model_fields if name not in base}

    def empty_model(self) -> dict[str, Any]:
        fields = {}
        for name in self.State.model_fields:
            if name not in LearnedState.model_fields and name in self.State._array_fields:
                fields[name] = np.empty(0, dtype=np.float64)
        return fields

    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> LS:
        p = self.params
        start = no_history(p.window)
        rows, complete = embedded(values, p.window, start)
        return self.fitted_on(rows[complete], tail(values, p.window, start), [])

    def fit_matrix(
        self, dimensions: list[str], timestamps: I64Array, matrix: F64Array, columns: list[str]
    ) -> LS:
        rows, complete = matrix_embedded(matrix)
        return self.fitted_on(rows[complete], np.empty(0), columns)

    def fitted_on(self, train: F64Array, last: F64Array, columns: list[str]) -> LS:
        """The state of a model fitted on complete rows ``train`` (none below
        ``min_fit_windows``), with the tail the next rows continue from."""
        p = self.params
        if train.shape[0] < p.min_fit_windows:
            return self.new_state(
                fitted=False,
                columns=columns,
                tail=last,
                feature_center=np.empty(0),
                feature_spread=np.empty(0),
                score_scale=np.empty(0),
                feature_rotation=np.empty(0),
                component_spread=np.empty(0),
                **self.empty_model(),
            )
        require("learned", what=f"fitting {self.name}")
        if train.shape[0] > p.max_fit_windows:
            keep = np.linspace(0, train.shape[0] - 1, p.max_fit_windows).round().astype(np.intp)
            train = train[np.unique(keep)]
        scale = feature_scale(train)
        x = np.nan_to_num(scaled(train, scale), nan=0.0, posinf=1e150, neginf=-1e150)
        if columns:
            scale = scale._replace(whitening=fit_whitening(x))
        inputs = self.model_inputs(x, scale)
        model = self.fit_matrix_model(inputs) if columns else self.fit_model(inputs)
        center, sigma = score_scale(self.finite_scores(model, inputs, matrix=bool(columns)))
        whitening = scale.whitening
        state = self.new_state(
            fitted=True,
            columns=columns,
            tail=last,
            feature_center=scale.center,
            feature_spread=scale.spread,
            score_scale=np.asarray([center, sigma], dtype=np.float64),
            feature_rotation=whitening.rotation if whitening else np.empty(0),
            component_spread=whitening.spread if whitening else np.empty(0),
            **model,
            **self.band_fields(model, inputs, scale, columns),
        )
        features = train.shape[1]
        try:  # what a later call checks: never hand out a state that would be refused
            self.check_scaling(state, features)
            self.check_model(state, features)
        except InvalidInput:
            raise InvalidInput(
                "these values are too large to fit a model on (their spread or the model's "
                "scores overflow float64): rescale them",
                field="values",
            ) from None
        return state

    def new_state(self, **fields: Any) -> LS:
        state: LS = self.State.model_validate(fields)  # type: ignore[assignment]
        return state

    def finite_scores(
        self, model: dict[str, Any], rows: F64Array, *, matrix: bool = False
    ) -> F64Array:
        scores = self.matrix_model_scores(model, rows) if matrix else self.model_scores(model, rows)
        return np.nan_to_num(scores, nan=_OFF_THE_SCALE, posinf=_OFF_THE_SCALE)

    @staticmethod
    def model_inputs(rows: F64Array, scale: Scale) -> F64Array:
        """Scaled rows as the model sees them: whitened for a matrix, as they are otherwise."""
        if scale.whitening is None:
            return rows
        out: F64Array = np.nan_to_num(
            whitened(rows, scale.whitening), nan=0.0, posinf=1e150, neginf=-1e150
        )
        return out

    # -- one series ---------------------------------------------------------------------------

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        state = self.fit(dimensions, timestamps, values)
        fresh = state.model_copy(update={"tail": no_history(self.params.window)})
        result, _ = self.detect_next(dimensions, timestamps, values, fresh)
        return result

    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: LS
    ) -> tuple[DetectResult, LS]:
        p = self.params
        if state.columns:
            raise IncompatibleState(
                f"the state was fitted on a matrix of {len(state.columns)} columns: send that "
                "matrix (columns and matrix), not one series of values",
                field="state",
            )
        before = np.asarray(state.tail, dtype=np.float64)
        if before.shape != (p.window - 1,):
            raise InvalidInput(
                f"the state's tail holds {before.shape} values, not window - 1 = {p.window - 1}",
                field="state",
            )
        rows, complete = embedded(values, p.window, before)
        scored = self.scored(state, rows, complete, feature_count(p.window))
        flagged = scored.complete & (scored.z > p.sigmas)
        band = {}
        if self.draws_band:
            n = values.shape[0]
            band = {name: np.full(n, np.nan) for name in ("expected", "lower", "upper")}
            if state.fitted:
                model, scale = self.model_of(state), self.scale_of(state)
                drawn = self.model_band(model, scored.inputs, scale, state)
                for name, column in (drawn or {}).items():
                    band[name][scored.complete] = column
        result = continuing_flags(
            timestamps,
            flagged,
            np.where(flagged, scored.z, 0.0),
            state.open_incident,
            every_point=p.every_point,
            **band,
        )
        after = state.model_copy(
            update={
                "tail": tail(values, p.window, before),
                "open_incident": still_open(flagged, state.open_incident),
            }
        )
        return result, after

    # -- a matrix of columns -------------------------------------------------------------------

    def detect_matrix(
        self, dimensions: list[str], timestamps: I64Array, matrix: F64Array, columns: list[str]
    ) -> MultivariateResult:
        state = self.fit_matrix(dimensions, timestamps, matrix, columns)
        result, _ = self.detect_matrix_next(dimensions, timestamps, matrix, columns, state)
        return result

    def detect_matrix_next(
        self,
        dimensions: list[str],
        timestamps: I64Array,
        matrix: F64Array,
        columns: list[str],
        state: LS,
    ) -> tuple[MultivariateResult, LS]:
        p = self.params
        scored = self._matrix_scored(matrix, columns, state)
        m = len(columns)
        flagged = scored.complete & (scored.z > p.sigmas)
        n = matrix.shape[0]
        shares = np.full((n, m), 1.0 / m)
        expected = None
        if state.fitted:
            model, scale = self.model_of(state), self.scale_of(state)
            hit = flagged[scored.complete]
            if hit.any():
                shares[flagged] = self.column_shares(
                    model, scored.rows[hit], scored.inputs[hit], scale
                )
            rebuilt = self.model_expected(model, scored.inputs, scale, m)
            if rebuilt is not None:
                expected = np.full((n, m), np.nan)
                expected[scored.complete] = rebuilt
        result = MultivariateResult.from_flags(
            timestamps,
            flagged,
            np.where(flagged, scored.z, 0.0),
            shares,
            every_point=p.every_point,
            open_incident=state.open_incident,
            expected=expected,
        )
        after = state.model_copy(update={"open_incident": still_open(flagged, state.open_incident)})
        return result, after

    def matrix_point_scores(self, matrix: F64Array, columns: list[str], state: LS) -> F64Array:
        """The z-score of every row of ``matrix`` (n x m, after the rows ``state`` has seen),
        before any threshold: the scores ``detect_matrix_next`` flags above ``sigmas``, for
        threshold-free evaluation (a precision-recall curve). NaN where a row is not scored (a
        missing cell, or right after one) and everywhere if the state has no model. The state
        is not advanced and no detection is made; every other behaviour is unchanged."""
        scored = self._matrix_scored(matrix, columns, state)
        out: F64Array = np.where(scored.complete, scored.z, np.nan)
        return out

    def _matrix_scored(self, matrix: F64Array, columns: list[str], state: LS) -> Scored:
        """The rows of ``matrix`` scored against ``state`` (its columns checked)."""
        if list(state.columns) != list(columns):
            had = "one series (values)"
            if state.columns:
                shown = ", ".join(name[:40] for name in state.columns[:8])
                more = len(state.columns) - 8
                if more > 0:
                    shown += f", ... {more} more"
                had = f"{len(state.columns)} columns ({shown})"
            raise IncompatibleState(
                f"the state was fitted on {had}; the matrix's columns must be the same, in the "
                "same order",
                field="state",
            )
        rows, complete = matrix_embedded(matrix)
        return self.scored(state, rows, complete, matrix_feature_count(len(columns)))

    def column_shares(
        self, model: dict[str, Any], rows: F64Array, inputs: F64Array, scale: Scale
    ) -> F64Array:
        """Each column's share in each flagged row's score (``rows`` scaled, ``inputs`` the
        same whitened), by repair: how much the score drops when the column's value is replaced
        by what the other columns predict for it, the conditional mean of the training rows
        (centred on their medians, with the inverse covariance ``Q`` the whitening holds:
        ``x_j - (Q x)_j / Q_jj``). A repaired row's components differ from the row's along
        one row of the whitening matrix only, so the m repairs cost m x m per row."""
        whitening = scale.whitening
        assert whitening is not None  # a matrix state always has one
        columns = rows.shape[1]
        unmix = whitening.rotation / whitening.spread  # scaled row @ unmix = components
        with np.errstate(over="ignore", invalid="ignore"):
            precision = np.einsum("ik,jk->ij", unmix, unmix, optimize=False)
            pulled = np.einsum("ij,jk->ik", rows, precision, optimize=False)
            moves = -pulled / np.diag(precision)  # each column's repair, in spreads
        base = self.finite_scores(model, inputs, matrix=True)
        drops = np.empty((rows.shape[0], columns))
        for column in range(columns):
            with np.errstate(over="ignore", invalid="ignore"):
                repaired = inputs + moves[:, column : column + 1] * unmix[column]
            repaired = np.nan_to_num(repaired, nan=0.0, posinf=1e150, neginf=-1e150)
            drops[:, column] = base - self.finite_scores(model, repaired, matrix=True)
        return shares_of(drops)

    def model_expected(
        self, model: dict[str, Any], rows: F64Array, scale: Scale, columns: int
    ) -> F64Array | None:
        """Each scored row's expected cell values (rows x columns), if the model has them."""
        return None

    # -- scoring --------------------------------------------------------------------------------

    def scale_of(self, state: LS) -> Scale:
        whitening = None
        if state.columns:
            whitening = Whitening(
                np.asarray(state.feature_rotation, dtype=np.float64),
                np.asarray(state.component_spread, dtype=np.float64),
            )
        return Scale(np.asarray(state.feature_center), np.asarray(state.feature_spread), whitening)

    def scored(
        self, state: LS, rows: F64Array, complete: npt.NDArray[np.bool_], features: int
    ) -> Scored:
        """z-scores of embedded rows (0 where not complete or not fitted), the complete rows
        scaled, and those rows as the model saw them."""
        n = rows.shape[0]
        z = np.zeros(n, dtype=np.float64)
        if not state.fitted:
            none = np.zeros(n, dtype=bool)
            return Scored(z, none, np.empty((0, features)), np.empty((0, features)))
        self.check_scaling(state, features)
        self.check_model(state, features)
        scale = self.scale_of(state)
        x = np.nan_to_num(scaled(rows[complete], scale), nan=0.0, posinf=1e150, neginf=-1e150)
        inputs = self.model_inputs(x, scale)
        center, sigma = (float(v) for v in state.score_scale)
        matrix = bool(state.columns)
        with np.errstate(over="ignore", invalid="ignore"):
            scores = self.finite_scores(self.model_of(state), inputs, matrix=matrix)
            z[complete] = (scores - center) / sigma
        z = np.nan_to_num(z, nan=_OFF_THE_SCALE, posinf=_OFF_THE_SCALE, neginf=-_OFF_THE_SCALE)
        return Scored(z, complete, x, inputs)

    @staticmethod
    def check_scaling(state: LearnedState, features: int) -> None:
        center = np.asarray(state.feature_center)
        spread = np.asarray(state.feature_spread)
        score = np.asarray(state.score_scale)
        if center.shape != (features,) or spread.shape != (features,) or score.shape != (2,):
            raise InvalidInput(
                f"the state's scaling does not describe {features} features (window + 2)",
                field="state",
            )
        finite = np.isfinite(center).all() and np.isfinite(spread).all()
        if not (finite and np.isfinite(score).all() and (spread > 0).all() and score[1] > 0):
            raise InvalidInput(
                "the state's scaling holds non-finite or zero spreads", field="state"
            )
        check_whitening(
            np.asarray(state.feature_rotation),
            np.asarray(state.component_spread),
            len(state.columns),
        )

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """Embedding (a few float64 copies of the rows) plus the model's fit and scoring: a
        stateless ``detect`` fits on up to ``max_fit_windows`` of its rows, then scores all. A
        matrix (``series`` columns, ``points`` cells) has a row per timestamp, whitened (a
        covariance and its eigenvectors at the fit, a product per row), and each flagged row is
        scored again once per column for its shares (counted for every row)."""
        p = self.params
        whitening = 0
        if shape.columns:
            n = shape.points // shape.columns
            features = matrix_feature_count(shape.columns)
            rescoring = shape.columns
        else:
            n = shape.longest
            features = feature_count(p.window)
            rescoring = 0
        fit_rows = min(n, p.max_fit_windows)
        if shape.columns:
            whitening = (4 * fit_rows + 4 * n) * features * features + 20 * features**3
        model = self.model_work(fit_rows, n * (1 + rescoring), features)
        rows_bytes = 8 * n * features
        return WorkEstimate(
            peak_bytes=6 * rows_bytes + model.peak_bytes,
            operations=10 * n * features + whitening + model.operations,
        )
