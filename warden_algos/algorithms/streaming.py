"""Streaming for the causal window detectors: replay a bounded context, score only the new points.

A causal detector's opinion of a point depends on that point and a bounded stretch before it (a
trailing window). Its state can therefore be that stretch itself, the last ``context`` points
seen, plus whatever the batch computation derives from the whole series and must now be frozen
(a level or scale, learnt at fit time). Scoring a chunk is then the batch computation over
``context + chunk``, keeping the outputs for the chunk's points: the same arithmetic on the same
window values as one batch call over the whole series, so the same detections, at a cost that
grows with the window, never with the history.

One incident, one detection: an incident still open at the end of a chunk (its last point was
flagged) continues into the next chunk without a second detection. Its score is the highest score
of the part seen when it was reported; a batch call, seeing the whole run, reports the highest of
all of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from warden_algos.interfaces import DetectResult, F64Array, I64Array
from warden_algos.interfaces.state import AlgorithmState, StateArray

from .common import Prepared, prepare, rescaled


class ContextState(AlgorithmState):
    """The last points seen (at most the detector's context) and whether an incident is open."""

    times: StateArray
    values: StateArray
    open_incident: bool = False


def context_of(times: I64Array, values: F64Array, keep: int) -> tuple[I64Array, F64Array]:
    """The last ``keep`` points, as fresh contiguous arrays (never views of a request)."""
    start = max(times.shape[0] - keep, 0)
    return (
        np.array(times[start:], dtype=np.int64, copy=True),
        np.array(values[start:], dtype=np.float64, copy=True),
    )


def joined(state: ContextState, times: I64Array, values: F64Array) -> tuple[I64Array, F64Array]:
    """The context followed by the new points: what the batch computation runs over."""
    return (
        np.concatenate([np.asarray(state.times, dtype=np.int64), times]),
        np.concatenate([np.asarray(state.values, dtype=np.float64), values]),
    )


def continuing_flags(
    timestamps: I64Array,
    is_anomaly: npt.NDArray[np.bool_],
    point_scores: F64Array,
    open_incident: bool,
    *,
    every_point: bool,
    **band: Any,
) -> DetectResult:
    """``DetectResult.from_flags`` for a chunk: with ``open_incident``, a run of flagged points at
    the chunk's start continues the previous chunk's incident and is not reported again."""
    flags = is_anomaly
    if open_incident and not every_point and flags.shape[0] and flags[0]:
        flags = flags.copy()
        run_end = int(np.argmin(flags)) if not flags.all() else flags.shape[0]
        flags[:run_end] = False
    return DetectResult.from_flags(timestamps, flags, point_scores, every_point=every_point, **band)


def still_open(is_anomaly: npt.NDArray[np.bool_], was_open: bool) -> bool:
    """Whether an incident is open after this chunk: its last point is flagged (an empty chunk
    changes nothing)."""
    return bool(is_anomaly[-1]) if is_anomaly.shape[0] else was_open


# Running-statistics detectors (mad, ewma) ---------------------------------------------------------
#
# Their state is not a context to replay but what the batch arithmetic carries from one point to
# the next (a window's contents, a recursion's sums), plus the series-wide quantities ``prepare``
# derives (scale, spread floor), frozen at fit. Those are one-element arrays rather than JSON
# numbers so that a state's size never depends on how many digits its numbers print with (and so
# that inf and NaN survive); NaN means "not learnt yet" (fitted on nothing valid), and the first
# valid points streamed then learn them.


def scalar(value: float) -> np.ndarray:
    """A float as a one-element state array (NaN for not learnt yet)."""
    return np.array([value], dtype=np.float64)


def value_of(array: np.ndarray) -> float:
    """The float a :func:`scalar` array holds."""
    return float(array[0])


def prepared_as_fitted(values: F64Array, scale: np.ndarray, floor: np.ndarray) -> Prepared:
    """New points in the units the fit froze (``rescaled``, the frozen floor); fitted on nothing
    valid yet (``scale`` NaN), the chunk's own ``prepare``: its points play the history's role."""
    frozen = value_of(scale)
    if np.isnan(frozen):
        return prepare(values)
    return Prepared(rescaled(values, frozen), frozen, value_of(floor))


def learnt_now(scale: np.ndarray, prepared: Prepared) -> bool:
    """Whether this chunk fixes the frozen quantities: none were learnt and it has a valid point."""
    return bool(np.isnan(value_of(scale))) and bool(np.isfinite(prepared.values).any())


def trailing_window(context: F64Array, new: F64Array, keep: int) -> F64Array:
    """The last ``keep`` values of ``context`` then ``new``, NaN-padded at the front to exactly
    ``keep``: a window of constant size whose missing head is what a batch computation sees before
    a series' start (nothing), so a NaN-skipping window statistic is unchanged by the padding."""
    out = np.full(keep, np.nan)
    tail = np.concatenate([context, new])[-keep:] if keep else new[:0]
    if tail.shape[0]:
        out[keep - tail.shape[0] :] = tail
    return out


def frozen_units_ok(scale: np.ndarray, floor: np.ndarray) -> bool:
    """Whether a state's frozen scale and floor are what a fit writes: one-element arrays, both NaN
    (not learnt yet), or a positive finite scale and a finite floor >= 0 (anything else would
    divide new points by 0 or infinity)."""
    if np.shape(scale) != (1,) or np.shape(floor) != (1,):
        return False
    s, f = value_of(scale), value_of(floor)
    if np.isnan(s):
        return bool(np.isnan(f))
    return bool(np.isfinite(s) and s > 0.0 and np.isfinite(f) and f >= 0.0)
