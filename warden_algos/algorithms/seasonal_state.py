"""What a fitted ``seasonal`` detector keeps between calls (the arithmetic is in
``seasonal_stream``).

Two phases. Until the history covers what its periods need (``seasonal_stream.decidable``), the
periods cannot be decided and the state is the history itself (at most ``WARMUP_POINTS``); each
call is then the batch call over it. Once decided, the periods, the grid and the units are frozen
and the state is what scoring the next points needs: the recent grid values of each period's
cycles, the last residuals and values the trailing statistics read, and the incident bookkeeping.

Kept apart from ``seasonal_stream`` so that declaring the detector's ``State`` imports nothing but
the state model. Numbers are small numpy arrays, not JSON numbers, so that the state's size does
not change with how many digits they print with; an empty array means "not yet" (or "none").
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from warden_algos.interfaces.state import AlgorithmState, StateArray


class SeasonalState(AlgorithmState):
    """Either the history so far (``decided`` false) or the frozen periods, grid and units and
    the recent past they need (``decided`` true); the incident bookkeeping in both."""

    decided: bool = Field(
        False, description="The periods, grid step and units are decided and frozen."
    )
    warmup_times: StateArray = Field(
        description="While undecided: the times of every point seen (int64; empty once decided)."
    )
    warmup_values: StateArray = Field(
        description="While undecided: the values of every point seen (float64; NaN = missing)."
    )
    periods: list[int] = Field(
        [], description="The periods decided, in seconds, shortest first ([]: none)."
    )
    period_slots: list[int] = Field([], description="The same periods in grid slots.")
    positions: StateArray = Field(
        description="Once decided (int64, four elements): the time of grid slot 0 (the first "
        "point's), the grid slot of the last point seen (the next points may still fall in it), "
        "and the finite residuals and finite normalised values seen (where the trailing "
        "statistics' block boundaries are).",
    )
    frame: StateArray = Field(
        description="Once decided (float64, five elements): seconds per grid slot; the unit and "
        "level of the normalised values, value / unit - level (the history's largest magnitude "
        "and median, frozen); the sum and count of the valid normalised values in the last slot "
        "(a point joining that slot revises its mean).",
    )
    profiles: StateArray = Field(
        description="Per period, the grid values its profile reads: the last cycles x period + "
        "phase tolerance + 1 slots up to the last one (NaN: no valid value), of the values for "
        "the first period and of what the shorter periods leave for the others; concatenated, "
        "shortest period first (float64).",
    )
    residuals: StateArray = Field(
        description="The last finite residuals since a block boundary a window or more back "
        "(float64, window + 2 blocks, NaN-padded in front): the trailing statistics of the next "
        "points' residuals.",
    )
    values_tail: StateArray = Field(
        description="The last finite normalised values (float64, as residuals; empty with "
        "min_scale > 0): the automatic spread floor's trailing spread.",
    )
    current_stats: StateArray = Field(
        description="The trailing statistics the next point reads, which change only at a block "
        "boundary (float64, 2 x 4: median, lower and upper spread, count; of the residuals, "
        "then of the values; empty until first computed).",
    )
    last_flag: StateArray = Field(
        description="Time of the last flagged point (int64; empty if none): flagged points "
        "closer than cooldown to it continue its incident.",
    )
    open_incident: bool = Field(False, description="The last point seen was flagged.")


#: Where each number is in ``positions`` and ``frame``.
ORIGIN, LAST_SLOT, RESIDUALS_SEEN, VALUES_SEEN = range(4)
STEP, UNIT, LEVEL, OPEN_SUM, OPEN_COUNT = range(5)

_NO_INT = np.empty(0, dtype=np.int64)
_NO_FLOAT = np.empty(0)


def warming_state(
    times: np.ndarray, values: np.ndarray, last_flag: np.ndarray, open_incident: bool
) -> SeasonalState:
    """An undecided state holding the history so far."""
    return SeasonalState(
        decided=False,
        warmup_times=np.array(times, dtype=np.int64, copy=True),
        warmup_values=np.array(values, dtype=np.float64, copy=True),
        positions=_NO_INT,
        frame=_NO_FLOAT,
        profiles=_NO_FLOAT,
        residuals=_NO_FLOAT,
        values_tail=_NO_FLOAT,
        current_stats=_NO_FLOAT,
        last_flag=last_flag,
        open_incident=open_incident,
    )
