"""Whether the caller asked for explanations: a context variable, so the hot path pays nothing.

Explanations are off by default (a request sets ``include_explanations``). The runners turn them
on around the algorithm's call; ``DetectResult.from_flags`` and the detectors that know more than
the generic explanation (an ensemble's members, a seasonal model's periods) look at
:func:`explanations_wanted` and do the extra work only then. A context variable rather than a
parameter, so that ``detect``'s signature stays what authors implement, and concurrent requests
(threads, asyncio tasks) never see each other's choice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .multivariate import MultivariateResult
    from .types import DetectResult, F64Array, I64Array

_WANTED: ContextVar[bool] = ContextVar("warden_algos_explanations_wanted", default=False)


def explanations_wanted() -> bool:
    """True while a runner is collecting explanations for the detections being computed."""
    return _WANTED.get()


@contextmanager
def explaining(wanted: bool) -> Iterator[None]:
    """Collect explanations (or not) for what is computed inside the block."""
    token = _WANTED.set(wanted)
    try:
        yield
    finally:
        _WANTED.reset(token)


def finish_detect(
    result: DetectResult, timestamps: I64Array, values: F64Array, wanted: bool
) -> DetectResult:
    """A checked ``DetectResult`` with complete explanations if ``wanted``, else none at all
    (a detector that attached some anyway does not lengthen an answer nobody asked for)."""
    if not wanted:
        return result if result.explanations is None else result._replace(explanations=None)
    from .explain import explain_detections

    return explain_detections(result, timestamps, values)


def finish_matrix(
    result: MultivariateResult,
    timestamps: I64Array,
    matrix: F64Array,
    columns: Sequence[str],
    wanted: bool,
) -> MultivariateResult:
    """``finish_detect`` for a checked ``MultivariateResult``."""
    if not wanted:
        return result if result.explanations is None else result._replace(explanations=None)
    from .explain import explain_matrix_detections

    return explain_matrix_detections(result, timestamps, matrix, columns)
