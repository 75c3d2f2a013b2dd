"""What a fitted ``novelty`` detector remembers: its pattern memory, the current epoch's grids and
the incident it may be in (the streaming arithmetic is in ``novelty_stream``).

Kept apart from ``novelty_stream`` so that declaring the detector's ``State`` imports nothing but
the state model: the streaming code loads only when a state is involved.

Counts and times are one-element int64 arrays, not JSON numbers, so that a state's size does not
change with how many digits they print with; an empty array means "none yet".
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from warden_algos.interfaces.state import AlgorithmState, StateArray


class NoveltyState(AlgorithmState):
    """The pattern memory of the current epoch (every pattern of ``pattern_length`` levels seen
    in the last ``memory`` valid points, per grid, with where it was last seen) and what the next
    epoch's re-estimate needs (the range of all values, the distinct runs of values seen in the
    last ``memory``)."""

    points: StateArray = Field(
        description="Points seen, missing ones included (int64, one element): where the next "
        "point stands in the series, for the refractory gap.",
    )
    valid: StateArray = Field(
        description="Valid values seen (int64, one element): the epochs of the range "
        "re-estimates are counted in valid values.",
    )
    extremes: StateArray = Field(
        description="Lowest and highest valid value seen (float64; empty before the first): the "
        "band, and the range the next epoch's grids are cut from.",
    )
    grid: StateArray = Field(
        description="Lowest value and span of the current epoch's grids (float64; empty before "
        "min_history valid values).",
    )
    recent_values: StateArray = Field(
        description="The values behind the runs of pattern_length consecutive values seen in the "
        "last memory values, each run only where it was last seen (float64), as stretches of "
        "consecutive runs: pattern_length - 1 values before a stretch (NaN before the series' "
        "start), then each run's newest value. The last pattern_length - 1 are the values before "
        "the next point. Re-cut on the next epoch's grids when the history doubles.",
    )
    recent_stretches: StateArray = Field(
        description="Where each stretch of recent_values starts (valid-value index of its first "
        "run) and how many runs it holds (int64, stretches x 2).",
    )
    pattern_keys: StateArray = Field(
        description="One row per remembered pattern (int64, patterns x (1 + pattern_length)): "
        "grid number, then the levels of the point and of the points before it, newest first "
        "(-2**62: before the series' start). Sorted.",
    )
    pattern_last: StateArray = Field(
        description="Valid-value index at which each remembered pattern was last seen (int64); "
        "patterns not seen in the last memory values are forgotten.",
    )
    last_novel: StateArray = Field(
        description="Index (in points) of the last novel point (int64; empty if none): a novel "
        "point within refractory of it continues its incident.",
    )


def empty_state(pattern_length: int) -> NoveltyState:
    """The state of a detector that has seen nothing (fitted on an empty history)."""
    return NoveltyState(
        points=np.zeros(1, dtype=np.int64),
        valid=np.zeros(1, dtype=np.int64),
        extremes=np.empty(0),
        grid=np.empty(0),
        recent_values=np.empty(0),
        recent_stretches=np.empty((0, 2), dtype=np.int64),
        pattern_keys=np.empty((0, 1 + pattern_length), dtype=np.int64),
        pattern_last=np.empty(0, dtype=np.int64),
        last_novel=np.empty(0, dtype=np.int64),
    )
