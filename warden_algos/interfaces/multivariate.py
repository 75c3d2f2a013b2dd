"""Multivariate detection: aligned timestamps and an ``n x m`` matrix of named columns.

A multivariate detector sees several series of one entity at once (the sensors of a machine, the
resources of a host) as one ``float64`` matrix, a row per timestamp and a column per series (NaN
= missing), so it can flag a moment that no single column shows: a broken correlation, a
combination never seen. Its answer is the univariate one plus, for every detection, how much each
column contributed to it (non-negative shares summing to 1, in the order of ``columns``), so that
an alert says which sensors drove it.

A detector opts in by also subclassing :class:`MultivariateDetector` (and
:class:`TrainableMultivariate` to fit a state on a matrix); ``run_detect_matrix`` and friends
(``run_matrix``) check the input and the answer as ``run_detect`` does for one series.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .errors import AlgorithmFailed, InvalidInput
from .explaining import explanations_wanted
from .runs import flag_runs
from .types import Explanation, F64Array, I64Array

#: Columns a request may carry: bounds what per-column work (attribution, scaling) can cost.
MAX_COLUMNS = 256
#: A column name's length at most.
MAX_COLUMN_NAME = 200
#: How far a detection's shares may sum from 1.
SHARE_TOLERANCE = 1e-6


class MultivariateResult(NamedTuple):
    """What a multivariate detector returns.

    ``timestamps``/``scores`` as in ``DetectResult``. ``contributions``: one row per detection,
    one column per input column, each row non-negative and summing to 1 (which columns drove
    it). ``expected``: optionally, the detector's expected value of every cell (``n x m``, NaN
    where it has no opinion). ``explanations``: as in ``DetectResult``, only when asked for.
    """

    timestamps: I64Array
    scores: F64Array
    contributions: F64Array
    expected: F64Array | None = None
    explanations: tuple[Explanation, ...] | None = None

    @classmethod
    def from_flags(
        cls,
        timestamps: I64Array,
        is_anomaly: npt.NDArray[np.bool_],
        point_scores: F64Array,
        point_shares: F64Array,
        *,
        every_point: bool = False,
        open_incident: bool = False,
        expected: F64Array | None = None,
    ) -> MultivariateResult:
        """One detection per run of flagged points, at its first point, scored by the run's
        highest score and carrying the shares of that highest point (or every flagged point with
        ``every_point``). ``point_shares`` needs meaningful rows only where flagged. With
        ``open_incident``, a run at the start continues an earlier chunk's and is not reported."""
        runs = flag_runs(is_anomaly, point_scores, every_point=every_point)
        starts, ends, best = runs
        if open_incident and starts.size and starts[0] == 0 and not every_point:
            starts, ends, best = starts[1:], ends[1:], best[1:]
        explanations = None
        if explanations_wanted():
            explanations = Explanation.of_runs(timestamps, starts, ends, best)
        return cls(
            timestamps=np.ascontiguousarray(timestamps[starts], dtype=np.int64),
            scores=np.ascontiguousarray(point_scores[best], dtype=np.float64),
            contributions=np.ascontiguousarray(point_shares[best], dtype=np.float64).reshape(
                -1, point_shares.shape[1]
            ),
            expected=expected,
            explanations=explanations,
        )


class MultivariateDetector(ABC):
    """Mixin of a detector that also scores a matrix of named columns."""

    @abstractmethod
    def detect_matrix(
        self, dimensions: list[str], timestamps: I64Array, matrix: F64Array, columns: list[str]
    ) -> MultivariateResult:
        """Flag rows of ``matrix`` (``n x m``, read-only, NaN = missing) at ``timestamps``."""
        raise NotImplementedError


class TrainableMultivariate(MultivariateDetector):
    """Mixin of a trainable detector that also fits a state on a matrix (the state records its
    columns: a later matrix must have the same ones, in the same order)."""

    @abstractmethod
    def fit_matrix(
        self, dimensions: list[str], timestamps: I64Array, matrix: F64Array, columns: list[str]
    ) -> Any:
        raise NotImplementedError

    @abstractmethod
    def detect_matrix_next(
        self,
        dimensions: list[str],
        timestamps: I64Array,
        matrix: F64Array,
        columns: list[str],
        state: Any,
    ) -> tuple[MultivariateResult, Any]:
        raise NotImplementedError


def is_multivariate(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, MultivariateDetector)


def check_matrix_input(path: str, timestamps: I64Array, matrix: F64Array, columns: Any) -> None:
    """Rows pair with timestamps, columns are distinct names, cells are numbers or NaN."""
    if not isinstance(columns, list | tuple) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput("must be a list of column names", field=f"{path}.columns")
    if not 1 <= len(columns) <= MAX_COLUMNS:
        raise InvalidInput(
            f"must name 1 to {MAX_COLUMNS} columns, got {len(columns)}", field=f"{path}.columns"
        )
    for index, name in enumerate(columns):
        if not name or len(name) > MAX_COLUMN_NAME:
            raise InvalidInput(
                f"a column name must be 1 to {MAX_COLUMN_NAME} characters",
                field=f"{path}.columns[{index}]",
            )
    seen: set[str] = set()
    for index, name in enumerate(columns):
        if name in seen:
            raise InvalidInput(f"column {name!r} is named twice", field=f"{path}.columns[{index}]")
        seen.add(name)
    if matrix.ndim != 2 or matrix.shape[1] != len(columns):
        raise InvalidInput(
            f"must be rows of {len(columns)} values (one per column), got shape {matrix.shape}",
            field=f"{path}.matrix",
        )
    if matrix.shape[0] != timestamps.shape[0]:
        raise InvalidInput(
            f"has {matrix.shape[0]} rows but {path}.timestamps has {timestamps.shape[0]}",
            field=f"{path}.matrix",
        )
    infinite = np.isinf(matrix)
    if infinite.any():
        row, column = (int(i) for i in np.argwhere(infinite)[0])
        raise InvalidInput(
            "infinite values are not accepted (use NaN/null for missing)",
            field=f"{path}.matrix[{row}][{column}]",
        )


def check_matrix_result(result: object, timestamps: I64Array, columns: int) -> MultivariateResult:
    """The answer a host can trust: detections among the input's times, increasing, finite
    scores, one row of shares per detection that is non-negative and sums to 1."""
    if not isinstance(result, MultivariateResult):
        raise AlgorithmFailed(
            f"detect_matrix returned {type(result).__name__}, expected MultivariateResult"
        )
    ts = np.asarray(result.timestamps)
    scores = np.asarray(result.scores, dtype=np.float64)
    shares = np.asarray(result.contributions, dtype=np.float64)
    if ts.ndim != 1 or scores.shape != ts.shape or shares.shape != (ts.shape[0], columns):
        raise AlgorithmFailed(
            f"result has {ts.shape} timestamps, {scores.shape} scores and {shares.shape} "
            f"contributions; they must pair up, a row of {columns} shares per detection"
        )
    if ts.size:
        if (np.diff(ts) <= 0).any() or not np.isin(ts, timestamps).all():
            raise AlgorithmFailed("result timestamps must be increasing input timestamps")
        if not np.isfinite(scores).all():
            raise AlgorithmFailed("result scores must be finite")
        if not np.isfinite(shares).all() or (shares < 0).any():
            raise AlgorithmFailed("contributions must be finite and non-negative")
        if (np.abs(shares.sum(axis=1) - 1.0) > SHARE_TOLERANCE).any():
            raise AlgorithmFailed("each detection's contributions must sum to 1")
    expected = result.expected
    if expected is not None:
        cells = np.asarray(expected, dtype=np.float64)
        if cells.shape != (timestamps.shape[0], columns):
            raise AlgorithmFailed("expected must be one value per input cell (rows x columns)")
        if np.isinf(cells).any():
            raise AlgorithmFailed("expected must be finite (NaN where there is no opinion)")
    return MultivariateResult(
        np.ascontiguousarray(ts, dtype=np.int64),
        scores,
        shares,
        result.expected,
        result.explanations,  # checked by interfaces.explain when asked for
    )
