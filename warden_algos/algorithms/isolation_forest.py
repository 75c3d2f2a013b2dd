"""Isolation Forest over each point's lagged window (scikit-learn fits; numpy scores the trees)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from warden_algos.interfaces import F64Array, StateArray
from warden_algos.interfaces.budget import WorkEstimate
from warden_algos.learned.detector import LearnedDetector, LearnedParams, LearnedState
from warden_algos.learned.forest import check_forest, fit_forest, forest_scores, max_depth


class IsolationForestParams(LearnedParams):
    window: int = Field(
        6,
        ge=2,
        le=256,
        description="Values in each point's lagged window (the point and the ones before it). "
        "Short by default: a tree splits on one column at a time, so a point that is unusual in "
        "a few columns of many is isolated no sooner than a normal one.",
    )
    sigmas: float = Field(
        4.0,
        gt=0,
        le=1e6,
        description="Flag a point when its score is more than this many sigmas above the median "
        "score of the training windows (a forest's scores are bounded, so its sigmas are few).",
    )
    n_estimators: int = Field(
        100, ge=1, le=1000, description="Trees in the forest: more give steadier scores."
    )
    max_samples: int = Field(
        256,
        ge=2,
        le=4096,
        description="Training windows drawn for each tree (without replacement); also bounds "
        "each tree's size and depth (log2 of it).",
    )


class IsolationForestState(LearnedState):
    forest_left: StateArray = Field(description="Left child of each node (int32, -1 at leaves).")
    forest_right: StateArray = Field(description="Right child of each node (int32, -1 at leaves).")
    forest_feature: StateArray = Field(
        description="Column each node splits on (int32, -1 at leaves)."
    )
    forest_value: StateArray = Field(
        description="Threshold of each split, path value (depth + c(samples) - 1) of each leaf."
    )
    forest_roots: StateArray = Field(description="First node of each tree (int32).")
    forest_norm: StateArray = Field(description="Trees x c(max_samples): the score's divisor.")


class IsolationForest(LearnedDetector[IsolationForestParams, IsolationForestState]):
    """Fits an Isolation Forest (scikit-learn) on the series' lagged windows and flags the points
    whose window the trees isolate much sooner than they isolate the training windows.

    Use it when anomalies are unusual *shapes* or levels rather than departures from a smooth
    baseline: a sudden spike, a short burst of a pattern the series never showed, a value pair
    (jump, level) that never occurred together. It needs no distributional assumption and is
    cheap to score (a few comparisons per tree). Avoid it for slow drifts and for seasonal series
    whose daily peak is far above their trough at a window shorter than the cycle: a window sees
    only local shape, so a normal peak that is rare in the history can look isolated.

    Embedding: each point becomes its ``window`` last values plus its step from the previous value
    and its offset from its window's mean (see ``warden_algos.learned.embedding``); a window with
    a missing value is not scored. Fitting: on at most ``max_fit_windows`` complete windows
    (evenly spaced over the history), ``n_estimators`` trees of ``max_samples`` windows each,
    seeded by ``seed``. Scoring: scikit-learn's score (``2 ** (-mean path length / c(n))``)
    computed from the stored trees by numpy, turned into a robust z-score against the training
    windows' scores; a point is flagged when its z exceeds ``sigmas``, and its score is that z.
    A matrix's rows are whitened first (``learned.detector``): a split on one of the small
    principal axes is what isolates a row whose columns stop agreeing. Its scores are bounded: a
    row far outside the training range is isolated no sooner than one just outside it (on the
    synthetic benchmark's cases, a column moved by 1,000 spreads scores z 8 to 11, the test
    stretch's most unusual row 4 to 8), hence the few ``sigmas``.

    Trainable: the state is the trees' nodes (about 17 bytes a node, ~0.5 MB at the defaults),
    the scaling and the last ``window - 1`` values; ``detect_next`` scores new points against the
    fitted trees without scikit-learn, the same however the points are chunked. Not causal: a
    stateless ``detect`` fits on every point it is given.
    """

    name = "isolation_forest"
    summary = "Isolation Forest on lagged windows (scikit-learn fit, numpy scoring); trainable."

    def fit_model(self, rows: F64Array) -> dict[str, Any]:
        p = self.params
        return fit_forest(rows, p.n_estimators, p.max_samples, p.seed)

    def check_model(self, state: IsolationForestState, features: int) -> None:
        p = self.params
        check_forest(self.model_of(state), features, p.n_estimators, p.max_samples)

    def model_scores(self, model: dict[str, Any], rows: F64Array) -> F64Array:
        return forest_scores(model, rows, max_depth(self.params.max_samples))

    def model_work(self, fit_rows: int, score_rows: int, features: int) -> WorkEstimate:
        # A stored forest may be as large as the params allow, whatever this request's size:
        # its checks and walks are counted at that size.
        p = self.params
        samples = p.max_samples
        depth = max_depth(samples) + 1
        nodes = p.n_estimators * (2 * samples - 1)
        # Calibrated on this machine (1,000 trees of 4,096 on 20,000 points: 28.7 s, estimated
        # 42 s): a node visit of the numpy walk costs some 80 "operations" of fancy indexing.
        fit_ops = p.n_estimators * samples * depth * features * 40
        score_ops = (fit_rows + score_rows) * p.n_estimators * depth * 80
        chunk = min(score_rows + fit_rows, 4096 * 32)
        return WorkEstimate(
            peak_bytes=nodes * 64 + chunk * 8 * 8 + fit_rows * features * 16,
            operations=fit_ops + score_ops,
        )
