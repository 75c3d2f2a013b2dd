"""Per-point scores handed to the alerting stage: captured, not returned, so ``detect`` stays
what authors implement.

The alerting stage (``alerting.py``) needs a score for *every* point, while a ``DetectResult``
carries only the detections. ``DetectResult.from_flags``/``from_mask`` already hold the per-point
scores and flags; while a runner captures (a request declares ``alerting``) they offer them here.
A context variable holds the slot, so concurrent requests never see each other's, and the hot
path pays one lookup. The last offer of the whole series wins: an ensemble's members build their
results before the ensemble builds its own from their votes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass
class PointScores:
    """What a detector computed for every input point: its raw score and whether it flagged it,
    and the detections the offering builder made of them (the stage uses the scores only when
    those are the detector's answer: a helper call's scores are not the detector's)."""

    scores: npt.NDArray[np.float64] | None = None
    flags: npt.NDArray[np.bool_] | None = None
    detections: npt.NDArray[np.int64] | None = None


_SLOT: ContextVar[PointScores | None] = ContextVar("warden_algos_point_scores", default=None)


@contextmanager
def capturing() -> Iterator[PointScores]:
    """Collect the per-point scores of what is computed inside the block."""
    slot = PointScores()
    token = None
    try:  # set inside: a deadline's signal between set and try must not leave it set
        token = _SLOT.set(slot)
        yield slot
    finally:
        if token is not None:
            _SLOT.reset(token)


def active() -> PointScores | None:
    """The slot a runner is filling, if any: a detector that can offer better per-point scores
    than its ``from_flags`` call does (an ensemble: its members' calibrated ones) looks here."""
    return _SLOT.get()


def offer(
    n_points: int,
    scores: npt.ArrayLike,
    flags: npt.ArrayLike,
    detections: npt.NDArray[np.int64],
) -> None:
    """Called by the result builders: kept when a runner captures and they cover every point."""
    slot = _SLOT.get()
    if slot is None:
        return
    array = np.asarray(scores, dtype=np.float64)
    flagged = np.asarray(flags, dtype=bool)
    if array.shape == (n_points,) and flagged.shape == (n_points,):
        slot.scores, slot.flags, slot.detections = array, flagged, detections
