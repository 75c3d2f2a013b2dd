"""Fit many series and push each model: what ``models fit`` does with the series of a table.

Fitting goes through ``run_fit``, the path a ``fit`` request takes, so a series is checked
exactly as one sent on the wire (a duplicate timestamp gets the same ``INVALID_INPUT``). Series
are fitted one after the other on this thread (fitting is CPU work) while their pushes, which
wait on the store, run ``jobs`` at a time. A failure, in fitting or pushing, is that series'
outcome only: the others go on.

A series of several value columns (``TableSeries.matrix``) is fitted as one model when the
algorithm fits a matrix (``TrainableMultivariate``: ``run_fit_matrix``, the state records the
columns), stored under the series key; any other algorithm gets one model per column, fitted on
that column alone and stored under ``tables.column_key`` (``<series key>,column=<name>``), the
column also being one more dimension (``column=<name>``). Each model is a ``Unit``; batch
detect scores the same units (``units``), so it finds every model again.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from warden_algos.delivery.errors import ReleaseError
from warden_algos.interfaces.errors import WardenError
from warden_algos.interfaces.state import StateInfo

from .records import ModelMove
from .store import ModelStore
from .tables import TableSeries, column_key

if TYPE_CHECKING:
    from warden_algos.interfaces.run_state import Fitted


class SeriesOutcome(NamedTuple):
    key: str  # the model's key in the store
    status: Literal["pushed", "current", "failed"]
    error: str | None = None
    info: StateInfo | None = None
    sha256: str | None = None
    size: int = 0
    move: ModelMove | None = None
    column: str | None = None  # the one column a per-column model was fitted on


class Unit(NamedTuple):
    """What one model is fitted on (or scores): a whole series, or one column of it."""

    key: str  # the model's key in the store
    column: str | None  # the column of a per-column model; None: the whole series
    dimensions: list[str]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]  # one series' values; a matrix when ``columns``
    columns: tuple[str, ...] = ()  # a matrix's columns: one model of them all

    def later_than(self, seen_end: int | None) -> Unit:
        """The unit's rows after ``seen_end`` (all of them for None)."""
        if seen_end is None:
            return self
        later = self.timestamps > seen_end
        return self._replace(timestamps=self.timestamps[later], values=self.values[later])


def scores_matrix(algorithm: Any) -> bool:
    """Whether ``algorithm`` takes several columns as one matrix: a trainable one must fit a
    matrix (its models are stored per series), any other must score one."""
    from warden_algos.interfaces.multivariate import MultivariateDetector, TrainableMultivariate
    from warden_algos.interfaces.trainable import TrainableDetector

    if isinstance(algorithm, TrainableDetector):
        return isinstance(algorithm, TrainableMultivariate)
    return isinstance(algorithm, MultivariateDetector)


def units(algorithm: Any, one: TableSeries) -> list[Unit]:
    """The models of a series: one (one value column, or a matrix ``algorithm`` takes whole),
    or one per column."""
    if one.matrix is None:
        return [Unit(one.key, None, one.dimensions, one.timestamps, one.values)]
    if scores_matrix(algorithm):
        return [Unit(one.key, None, one.dimensions, one.timestamps, one.matrix, one.columns)]
    return [
        Unit(
            column_key(one.key, name),
            name,
            [*one.dimensions, f"column={name}"],
            one.timestamps,
            np.ascontiguousarray(one.matrix[:, index]),
        )
        for index, name in enumerate(one.columns)
    ]


def fit_unit(algorithm: Any, unit: Unit) -> Fitted:
    """The state of one model, through the path a ``fit`` request takes."""
    from warden_algos.interfaces.run_matrix import run_fit_matrix
    from warden_algos.interfaces.run_state import run_fit

    if unit.columns:
        return run_fit_matrix(
            algorithm, unit.timestamps, unit.values, unit.columns, unit.dimensions
        )
    return run_fit(algorithm, unit.timestamps, unit.values, unit.dimensions)


def failure_text(error: BaseException) -> str:
    """One line: a wire error as its code and message, ours as its message, anything else
    (S3's) as what raised it."""
    if isinstance(error, WardenError):
        return f"{error.code} {error}"
    if isinstance(error, ReleaseError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def fit_and_push(
    store: ModelStore,
    algorithm: Any,
    series: Iterable[TableSeries],
    *,
    why: str,
    who: str | None = None,
    jobs: int = 8,
) -> list[SeriesOutcome]:
    """Fit ``algorithm`` (an instance, with its params) on each series (each of its columns,
    for a per-column algorithm) and push the model under its key; the outcomes in the order of
    ``series``."""
    outcomes: list[SeriesOutcome | Future[SeriesOutcome]] = []

    def push(unit: Unit, blob: bytes) -> SeriesOutcome:
        key, column = unit.key, unit.column
        try:
            pushed = store.push(
                blob,
                key,
                why=why,
                who=who,
                algorithm=algorithm.name,
                params=algorithm.get_params(),
            )
        except Exception as error:  # the store refused, or S3 failed for this one
            return SeriesOutcome(key, "failed", failure_text(error), column=column)
        pointer = pushed.pointer
        status: Literal["pushed", "current"] = "current" if pushed.move is None else "pushed"
        return SeriesOutcome(
            key, status, None, pointer.state, pointer.sha256, pointer.size, pushed.move, column
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for one in series:
            if one.problem is not None:
                outcomes.append(SeriesOutcome(one.key, "failed", one.problem))
                continue
            for unit in units(algorithm, one):
                try:
                    fitted = fit_unit(algorithm, unit)
                except WardenError as error:
                    text = failure_text(error)
                    outcomes.append(SeriesOutcome(unit.key, "failed", text, column=unit.column))
                    continue
                except Exception as error:  # the algorithm's own failure, as a request says
                    text = (
                        f"ALGORITHM_FAILED {algorithm.name} raised {type(error).__name__}: {error}"
                    )
                    outcomes.append(SeriesOutcome(unit.key, "failed", text, column=unit.column))
                    continue
                outcomes.append(pool.submit(push, unit, fitted.state))
        return [item.result() if isinstance(item, Future) else item for item in outcomes]
