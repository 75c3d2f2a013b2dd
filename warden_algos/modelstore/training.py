"""Fit many series and push each model: what ``models fit`` does with the series of a table.

Fitting goes through ``run_fit``, the path a ``fit`` request takes, so a series is checked
exactly as one sent on the wire (a duplicate timestamp gets the same ``INVALID_INPUT``). Series
are fitted one after the other on this thread (fitting is CPU work) while their pushes, which
wait on the store, run ``jobs`` at a time. A failure, in fitting or pushing, is that series'
outcome only: the others go on.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal, NamedTuple

from warden_algos.delivery.errors import ReleaseError
from warden_algos.interfaces.errors import WardenError
from warden_algos.interfaces.state import StateInfo

from .records import ModelMove
from .store import ModelStore
from .tables import TableSeries


class SeriesOutcome(NamedTuple):
    key: str
    status: Literal["pushed", "current", "failed"]
    error: str | None = None
    info: StateInfo | None = None
    sha256: str | None = None
    size: int = 0
    move: ModelMove | None = None


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
    """Fit ``algorithm`` (an instance, with its params) on each series and push the model under
    its key; the outcomes in the order of ``series``."""
    from warden_algos.interfaces.run_state import run_fit

    outcomes: list[SeriesOutcome | Future[SeriesOutcome]] = []

    def push(key: str, blob: bytes) -> SeriesOutcome:
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
            return SeriesOutcome(key, "failed", failure_text(error))
        pointer = pushed.pointer
        status: Literal["pushed", "current"] = "current" if pushed.move is None else "pushed"
        return SeriesOutcome(
            key, status, None, pointer.state, pointer.sha256, pointer.size, pushed.move
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for one in series:
            if one.problem is not None:
                outcomes.append(SeriesOutcome(one.key, "failed", one.problem))
                continue
            try:
                fitted = run_fit(algorithm, one.timestamps, one.values, one.dimensions)
            except WardenError as error:
                outcomes.append(SeriesOutcome(one.key, "failed", failure_text(error)))
                continue
            except Exception as error:  # the algorithm's own failure, as a request reports it
                text = f"ALGORITHM_FAILED {algorithm.name} raised {type(error).__name__}: {error}"
                outcomes.append(SeriesOutcome(one.key, "failed", text))
                continue
            outcomes.append(pool.submit(push, one.key, fitted.state))
        return [item.result() if isinstance(item, Future) else item for item in outcomes]
