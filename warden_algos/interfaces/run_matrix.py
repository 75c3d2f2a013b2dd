"""Run a multivariate detector as the platform does: a checked matrix in, a checked answer out.

The matrix twins of ``run_detect``, ``run_fit`` and ``run_detect_next``: the same timestamp
checks, the request budget counted in cells (rows x columns), the state's checks (its bytes, its
algorithm and params, points after the ones it has seen), and the answer checked
(``multivariate.check_matrix_result``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .alerting_params import refuse_alerting
from .budget import InputShape, check_budget
from .errors import InvalidInput, UnknownAlgorithm
from .explaining import explaining, finish_matrix
from .multivariate import (
    MultivariateDetector,
    MultivariateResult,
    TrainableMultivariate,
    check_matrix_input,
    check_matrix_result,
)
from .run import _readonly, as_times
from .run_state import Fitted, _packed, _usable, check_after_state
from .state import Seen, canonical_params
from .types import F64Array, I64Array
from .validation import check_times


def as_matrix(path: str, data: npt.ArrayLike) -> F64Array:
    """Rows of numbers (None = missing) as a C-ordered float64 matrix."""
    try:
        arr = np.asarray(data)
    except (ValueError, OverflowError):  # ragged rows, integers beyond float64
        raise InvalidInput("must be rows of numbers of one length", field=path) from None
    if arr.dtype == object:
        try:
            arr = np.array(
                [[np.nan if cell is None else cell for cell in row] for row in arr.tolist()],
                dtype=np.float64,
            )
        except (TypeError, ValueError, OverflowError):
            raise InvalidInput("must be rows of numbers of one length", field=path) from None
    if arr.size and not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InvalidInput(f"must hold numbers, got dtype {arr.dtype}", field=path)
    try:
        return np.ascontiguousarray(arr, dtype=np.float64)
    except OverflowError:
        raise InvalidInput("holds a number beyond float64's range", field=path) from None


def _checked(
    path: str, timestamps: npt.ArrayLike, matrix: npt.ArrayLike, columns: Sequence[str]
) -> tuple[I64Array, F64Array, list[str]]:
    ts = _readonly(as_times(f"{path}.timestamps", timestamps))
    cells = as_matrix(f"{path}.matrix", matrix)
    if cells.ndim == 1 and cells.size == 0:
        cells = cells.reshape(0, len(columns))
    check_times(f"{path}.timestamps", ts)
    check_matrix_input(path, ts, cells, list(columns))
    return ts, _readonly(cells), list(columns)


def _shape(matrix: F64Array) -> InputShape:
    """A matrix's budget shape: its cells as points, its columns as series."""
    rows, columns = matrix.shape
    return InputShape(rows * columns, columns, rows * columns, columns=columns)


def _multivariate(algorithm: Any, trainable: bool = False) -> Any:
    wanted = TrainableMultivariate if trainable else MultivariateDetector
    if not isinstance(algorithm, wanted):
        what = "fit on a matrix" if trainable else "score a matrix of columns"
        raise UnknownAlgorithm(f"{algorithm.name} cannot {what} (describe says which can)")
    refuse_alerting(algorithm, "a matrix of columns")
    return algorithm


def run_detect_matrix(
    algorithm: Any,
    timestamps: npt.ArrayLike,
    matrix: npt.ArrayLike,
    columns: Sequence[str],
    dimensions: Sequence[str] = (),
    *,
    path: str = "detect",
    explain: bool = False,
) -> MultivariateResult:
    detector = _multivariate(algorithm)
    ts, cells, names = _checked(path, timestamps, matrix, columns)
    check_budget(detector.name, detector.estimate(_shape(cells)))
    with explaining(explain):
        result = detector.detect_matrix(list(dimensions), ts, cells, names)
    return finish_matrix(check_matrix_result(result, ts, len(names)), ts, cells, names, explain)


def run_fit_matrix(
    algorithm: Any,
    timestamps: npt.ArrayLike,
    matrix: npt.ArrayLike,
    columns: Sequence[str],
    dimensions: Sequence[str] = (),
    *,
    path: str = "fit",
) -> Fitted:
    detector = _multivariate(algorithm, trainable=True)
    ts, cells, names = _checked(path, timestamps, matrix, columns)
    check_budget(detector.name, detector.estimate(_shape(cells)))
    state = detector.fit_matrix(list(dimensions), ts, cells, names)
    return _packed(detector, state, Seen(None, None, 0).then(ts))


def run_detect_matrix_next(
    algorithm: Any,
    timestamps: npt.ArrayLike,
    matrix: npt.ArrayLike,
    columns: Sequence[str],
    state: bytes | Fitted,
    dimensions: Sequence[str] = (),
    *,
    path: str = "detect",
    return_state: bool = True,
    explain: bool = False,
) -> tuple[MultivariateResult, Fitted | None]:
    detector = _multivariate(algorithm, trainable=True)
    canonical = canonical_params(detector.get_params())
    loaded = _usable(detector, state, canonical)
    ts, cells, names = _checked(path, timestamps, matrix, columns)
    info = loaded.info
    check_after_state(info.seen_end, ts, path)
    check_budget(detector.name, detector.estimate(_shape(cells)))
    with explaining(explain):
        result, after = detector.detect_matrix_next(
            list(dimensions), ts, cells, names, loaded.typed
        )
    checked = finish_matrix(check_matrix_result(result, ts, len(names)), ts, cells, names, explain)
    if not return_state:
        return checked, None
    return checked, _packed(detector, after, info.seen.then(ts), canonical)
