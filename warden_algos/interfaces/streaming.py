"""Streaming helpers for trainable detectors: replay a bounded context, score only new points.

A causal detector's opinion of a point depends on that point and a bounded stretch before it (a
trailing window). Its state can therefore be that stretch itself, the last ``context`` points
seen, plus whatever the batch computation derives from the whole series and must now be frozen
(a level or scale, learnt at fit time). Scoring a chunk is then the batch computation over
``context + chunk``, keeping the outputs for the chunk's points: the same arithmetic on the same
window values as one batch call over the whole series, so the same detections, at a cost that
grows with the window, never with the history. ``ksigma`` and the example plugin
``tukey_fences`` (examples/custom_algorithm) are built this way.

One incident, one detection: an incident still open at the end of a chunk (its last point was
flagged) continues into the next chunk without a second detection. Its score is the highest score
of the part seen when it was reported; a batch call, seeing the whole run, reports the highest of
all of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .state import AlgorithmState, StateArray
from .types import DetectResult, F64Array, I64Array


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
