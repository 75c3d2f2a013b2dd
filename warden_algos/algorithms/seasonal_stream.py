"""Streaming ``seasonal``: score new points from the recent cycles a state keeps, not the history.

In the batch call, a point's profile is a median of grid values in the previous ``cycles`` cycles
of each period, and its score compares its residual with the previous ``window`` finite residuals
(statistics refreshed at block boundaries). Only the choice of the periods and of the grid step
(and the units the values are normalised to) looks at the whole series. So once those are decided
and frozen, scoring the next points needs only:

- per period, the grid values its profile reads: the last cycles x period + tolerance slots (of
  the values for the shortest period, of what the shorter periods leave for the longer ones);
- the open last slot's sum and count (a new point may share it: irregular sampling);
- the finite residuals since the last block boundary a window back (and the same for the
  values, whose spread sets the automatic floor), and how many there were;
- the last flagged time and whether the last point was flagged (one detection per incident).

That is at most sum over periods of (cycles x period / step) + window + 2 blocks values, whatever
the history's length. A gap, however long, costs nothing: the slots it skips are empty and the
profile of a slot after it finds NaN (no opinion) where the batch grid has empty slots too.

Deciding needs enough history (``decidable``): two cycles of each given period the grid can
resolve, or three days when the periods are detected (the batch's rule for a daily cycle), or
``WARMUP_POINTS`` points. Until then the state is the history itself and each call is the batch
call over it (keeping the new points' answers), so a detector fitted on nothing works from the
first point and becomes seasonal once it has seen enough.

Equivalence: after the decision, a point's profile, residual, trailing statistics, flag and band
are the batch call's over the whole series given the same periods and grid step (explicit
``periods``, or those decided at fit; the step is the median sampling step, so the same for a
regularly sampled series), with one difference: the units. The state keeps the history's unit
and level (largest magnitude, median) where the batch uses the whole series', so scores and band
differ by floating-point rounding (about 1e-15 relative; tested at 1e-9), and the automatic
spread floor (1e-9 of the level, which matters only on a flat stretch) is the history's.
Detections are the batch's, but for a score within rounding of ``k``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from warden_algos.interfaces import DetectResult, F64Array, I64Array
from warden_algos.interfaces.errors import InvalidInput
from warden_algos.interfaces.streaming import continuing_flags

from .common import incident_mask
from .seasonal import (
    DAY,
    MIN_CYCLES,
    MIN_POINTS,
    WEEK,
    Scored,
    Seasonal,
    SeasonalParams,
    TrailingStats,
    _choose_periods,
    _median_step,
    _normalised,
    _offsets,
    _row_nanmedian,
    score_residuals,
    trailing_robust_stats,
)
from .seasonal_state import (
    LAST_SLOT,
    LEVEL,
    OPEN_COUNT,
    OPEN_SUM,
    ORIGIN,
    RESIDUALS_SEEN,
    STEP,
    UNIT,
    VALUES_SEEN,
    SeasonalState,
    warming_state,
)

#: Grid slots beyond this would not fit an int64 (the batch grid coarsens instead; a state
#: cannot, its grid is frozen).
_FARTHEST_SLOT = 2.0**62
#: Points an undecided state may hold before the periods are decided anyway: two weekly cycles
#: of 1-minute points (what a given weekly period needs at that resolution).
WARMUP_POINTS = 2 * WEEK // 60


class Frame(NamedTuple):
    """What the decision freezes: the grid, the units, the periods."""

    origin: int  # time of slot 0
    step: float  # seconds per slot
    unit: float
    level: float
    period_slots: list[int]
    periods: list[int]  # seconds


def decidable(p: SeasonalParams, times: I64Array, values: F64Array) -> bool:
    """Whether a history covers what deciding its periods needs (or is as long as a state may
    wait): the batch uses a given period once the data spans two of its cycles, and looks for
    a daily cycle once it spans three."""
    n = times.shape[0]
    if n >= WARMUP_POINTS:
        return True
    if n < 2 or np.count_nonzero(np.isfinite(values)) < MIN_POINTS:
        return False
    offsets = _offsets(times)
    step, span = _median_step(offsets), float(offsets[-1])
    if p.periods is None:
        return span >= MIN_CYCLES * DAY
    resolvable = [period for period in p.periods if period >= 2 * step]
    return span >= 2 * max(resolvable, default=0)


def decide(detector: Seasonal, times: I64Array, values: F64Array) -> Frame:
    """The batch call's grid, units and periods for this history."""
    p = detector.params
    valid = np.isfinite(values)
    with np.errstate(all="ignore"):
        x, unit, level = _normalised(values, valid)
        if np.count_nonzero(valid) >= MIN_POINTS:
            grid, slots = _choose_periods(times, x, p.periods, p.min_acf)
            detector.check_grid(times.shape[0], grid.values.shape[0], len(slots))
            step = grid.step
        else:  # nothing to learn a cycle from (WARMUP_POINTS of mostly missing values)
            step, slots = _median_step(_offsets(times)), []
    return Frame(int(times[0]), step, unit, level, slots, [round(s * step) for s in slots])


def _window_lengths(p: SeasonalParams, period_slots: list[int]) -> list[int]:
    """Slots each period's profile reads, the last one included."""
    return [p.cycles * s + min(p.phase_tolerance, (s - 1) // 2) + 1 for s in period_slots]


def started(p: SeasonalParams, frame: Frame) -> SeasonalState:
    """A decided state that has seen nothing yet."""
    return SeasonalState(
        decided=True,
        warmup_times=np.empty(0, dtype=np.int64),
        warmup_values=np.empty(0),
        periods=frame.periods,
        period_slots=frame.period_slots,
        positions=np.array([frame.origin, -1, 0, 0], dtype=np.int64),
        frame=np.array([frame.step, frame.unit, frame.level, 0.0, 0.0]),
        profiles=np.full(sum(_window_lengths(p, frame.period_slots)), np.nan),
        residuals=np.empty(0),
        values_tail=np.empty(0),
        current_stats=np.empty(0),
        last_flag=np.empty(0, dtype=np.int64),
        open_incident=False,
    )


def _lookup(
    window: F64Array, last_slot: int, slots: I64Array, series: F64Array, refs: I64Array
) -> F64Array:
    """Grid values at slots ``refs``: from ``window`` (the slots up to ``last_slot``) before the
    first new slot, from the new ``slots``' ``series`` from it on; NaN for empty slots."""
    out = np.full(refs.shape, np.nan)
    old = refs < slots[0]
    at = refs - (last_slot - window.shape[0] + 1)
    from_window = old & (at >= 0) & (refs <= last_slot)
    out[from_window] = window[at[from_window]]
    wanted = refs[~old]
    index = np.minimum(np.searchsorted(slots, wanted), slots.shape[0] - 1)
    out[~old] = np.where(slots[index] == wanted, series[index], np.nan)
    return out


def _slid(window: F64Array, last_slot: int, slots: I64Array, series: F64Array) -> F64Array:
    """``window`` moved on to end at the last new slot, with the new slots' values in it."""
    length = window.shape[0]
    new_last = int(slots[-1])
    out = np.full(length, np.nan)
    shift = new_last - last_slot
    if shift < length:
        out[: length - shift] = window[shift:]
    first = new_last - length + 1
    inside = slots >= first
    out[slots[inside] - first] = series[inside]
    return out


class Trailing(NamedTuple):
    """What the trailing statistics of a stream of values need: the finite values since a block
    boundary a window or more back (NaN in front of them), how many finite values came before
    the next point, and the statistics it reads (of the last boundary; empty until computed)."""

    tail: F64Array
    seen: int
    current: F64Array  # median, lower spread, upper spread, count


def _trailing(
    before: Trailing, new: F64Array, window: int, tail_q: float
) -> tuple[TrailingStats, Trailing]:
    """``trailing_robust_stats`` of the new values after those ``before`` summarises, and the
    summary after them. The batch refreshes its statistics every block of finite values counted
    from the series' start, so the tail starts on such a boundary, and a chunk that crosses none
    (most single points) reads the statistics kept from the last one instead of sorting."""
    block = max(1, window // 8)
    total = before.seen + int(np.count_nonzero(np.isfinite(new)))
    joined = np.concatenate([before.tail, new])
    if total // block == before.seen // block and before.current.shape[0]:
        mine = TrailingStats(*np.repeat(before.current[:, None], new.shape[0], axis=1))
        current = before.current
    else:  # one more (missing) point after the chunk reads the statistics the next one will
        ahead = np.concatenate([joined, [np.nan]])
        first_row = int(np.count_nonzero(np.isfinite(before.tail))) // block
        stats = trailing_robust_stats(ahead, window, tail_q, first_row=first_row)
        mine = TrailingStats(*(column[before.tail.shape[0] : -1] for column in stats))
        current = np.array([column[-1] for column in stats])
    finite = joined[np.isfinite(joined)]
    start = block * max(0, total // block - -(-window // block))
    # NaN-padded at the front to a constant length (the statistics skip NaN): the state's
    # size then does not depend on where the last boundary fell.
    kept = np.full(window + 2 * block, np.nan)
    if total > start:
        kept[kept.shape[0] - (total - start) :] = finite[finite.shape[0] - (total - start) :]
    return mine, Trailing(kept, total, current)


def _rows(first: F64Array, second: F64Array) -> F64Array:
    """``np.stack([first, second])`` without its Python-level checks (same-shape rows)."""
    if first.shape != second.shape:
        return np.stack([first, second])  # raises, naming the shapes
    return np.array([first, second], dtype=np.float64)


def advance(
    p: SeasonalParams, state: SeasonalState, times: I64Array, values: F64Array
) -> tuple[Scored, SeasonalState]:
    """Score points after those a decided ``state`` has seen; the state after them (incident
    bookkeeping unchanged: :func:`report` does it)."""
    scored, changed = _advanced(p, state, times, values)
    return scored, state.model_copy(update=changed) if changed else state


def _advanced(
    p: SeasonalParams, state: SeasonalState, times: I64Array, values: F64Array
) -> tuple[Scored, dict[str, Any]]:
    """:func:`advance`'s scores, and the fields of the state that change (none for no points),
    so a caller that changes more fields copies the state once."""
    n = values.shape[0]
    if n == 0:
        nothing = np.empty(0)
        return Scored(np.zeros(0, bool), nothing, nothing, nothing, nothing), {}
    at, frame = state.positions, state.frame
    unit, level = float(frame[UNIT]), float(frame[LEVEL])
    last_slot = int(at[LAST_SLOT])
    current = state.current_stats if state.current_stats.size else np.empty((2, 0))
    valid = np.isfinite(values)
    with np.errstate(all="ignore"):  # NaN and overflow are dealt with in score_residuals
        x = np.where(valid, values / unit, np.nan)
        x -= level
        offsets = times.view(np.uint64) - at[ORIGIN : ORIGIN + 1].view(np.uint64)
        grid_at = offsets.astype(np.float64) / float(frame[STEP])
        if not grid_at[-1] < _FARTHEST_SLOT:
            raise InvalidInput(
                "these points are too far from the fitted history for its grid (slot "
                f"{grid_at[-1]:.3g}): fit again on a history that reaches them",
                field="detect.timestamps",
            )
        slot = np.rint(grid_at).astype(np.int64)
        new_slot = np.empty(n, dtype=bool)  # times increase, so slots never decrease
        new_slot[0] = True
        np.not_equal(slot[1:], slot[:-1], out=new_slot[1:])
        slots, where = slot[new_slot], np.cumsum(new_slot) - 1
        sums = np.bincount(where[valid], weights=x[valid], minlength=slots.shape[0])
        sums = sums.astype(np.float64, copy=False)  # int64 when no value is valid
        counts = np.bincount(where[valid], minlength=slots.shape[0])
        if slots[0] == last_slot:  # the first points join the last slot: its mean changes
            total = float(frame[OPEN_SUM])
            for value in x[(where == 0) & valid]:  # in order, as the batch's bincount adds
                total += float(value)
            sums[0] = total
            counts[0] += int(frame[OPEN_COUNT])
        series = sums / counts
        fitted = np.zeros(slots.shape[0])
        slid, end = [], 0
        for period, length in zip(
            state.period_slots, _window_lengths(p, state.period_slots), strict=True
        ):
            window, end = state.profiles[end : end + length], end + length
            tolerance = min(p.phase_tolerance, (period - 1) // 2)
            back = np.arange(1, p.cycles + 1)[:, None] * period - np.arange(
                -tolerance, tolerance + 1
            )
            refs = slots[:, None] - back.reshape(1, -1)
            profile = _row_nanmedian(_lookup(window, last_slot, slots, series, refs))
            fitted += profile
            slid.append(_slid(window, last_slot, slots, series))
            series = series - profile
            series[slots < p.cycles * period] = np.nan
        fitted_at = fitted[where]
        residual = x - fitted_at
        of_residuals = Trailing(state.residuals, int(at[RESIDUALS_SEEN]), current[0])
        stats, of_residuals = _trailing(of_residuals, residual, p.window, p.tail)
        of_x = Trailing(state.values_tail, int(at[VALUES_SEEN]), current[1])
        spread = None
        if p.min_scale == 0:
            of_values, of_x = _trailing(of_x, x, p.window, 0.75)
            spread = of_values.upper_spread
        elif not of_x.current.size:  # no floor to follow: a row of NaN keeps the layout
            of_x = of_x._replace(current=np.full(4, np.nan))
        scored = score_residuals(p, valid, residual, fitted_at, stats, spread, unit, level)
    positions = [at[ORIGIN], slots[-1], of_residuals.seen, of_x.seen]
    changed = {
        "positions": np.array(positions, dtype=np.int64),
        "frame": np.array([frame[STEP], unit, level, sums[-1], counts[-1]]),
        "profiles": np.concatenate(slid) if slid else np.empty(0),
        "residuals": of_residuals.tail,
        "values_tail": of_x.tail,
        "current_stats": _rows(of_residuals.current, of_x.current),
    }
    return scored, changed


def _incidents(
    times: I64Array,
    flags: npt.NDArray[np.bool_],
    last_flag: I64Array,
    open_incident: bool,
    cooldown: int,
) -> tuple[npt.NDArray[np.bool_], bool]:
    """``incident_mask`` of a chunk, and whether its first run continues an incident: the last
    flagged point before the chunk stands in front of it (followed by an unflagged point unless
    the last point seen was flagged), so the batch's filling between close flags, and its
    merging of adjacent ones, reach across the boundary."""
    if last_flag.shape[0] == 0:
        return incident_mask(times, flags, cooldown), False
    lead = 1 if open_incident else 2
    ahead_times = np.concatenate([np.repeat(last_flag[:1], lead), times])
    ahead_flags = np.concatenate([np.arange(lead) == 0, flags])
    mask = incident_mask(ahead_times, ahead_flags, cooldown)
    return mask[lead:], bool(mask[lead - 1])


def report(
    p: SeasonalParams, times: I64Array, scored: Scored, last_flag: I64Array, open_incident: bool
) -> tuple[DetectResult, I64Array, bool]:
    """The chunk's detections (one per incident, unless every_point; an incident open before
    the chunk is not reported again), and the bookkeeping after it."""
    band = {"expected": scored.expected, "lower": scored.lower, "upper": scored.upper}
    flags = scored.is_anomaly
    if p.every_point:
        result = DetectResult.from_flags(times, flags, scored.z, every_point=True, **band)
    else:
        mask, continuing = _incidents(times, flags, last_flag, open_incident, p.cooldown)
        result = continuing_flags(times, mask, scored.z, continuing, every_point=False, **band)
    flagged = np.flatnonzero(flags)
    if flagged.size:
        last_flag = np.array([times[flagged[-1]]], dtype=np.int64)
    return result, last_flag, bool(flags[-1]) if flags.shape[0] else open_incident


def _newest(scored: Scored, k: int) -> Scored:
    """The answers for the last ``k`` points."""
    start = scored.z.shape[0] - k
    return Scored(
        scored.is_anomaly[start:],
        scored.z[start:],
        scored.expected[start:],
        scored.lower[start:],
        scored.upper[start:],
    )


def fit(detector: Seasonal, times: I64Array, values: F64Array) -> SeasonalState:
    """The state after ``times``/``values``: decided if they cover what the periods need."""
    state = warming_state(times[:0], values[:0], np.empty(0, dtype=np.int64), False)
    return detect_next(detector, state, times, values)[1]


def detect_next(
    detector: Seasonal, state: SeasonalState, times: I64Array, values: F64Array
) -> tuple[DetectResult, SeasonalState, tuple[int, ...]]:
    """``Seasonal.detect_next``: decided states advance; undecided ones replay the batch call
    over the history so far, until it covers enough to decide. Also the periods (seconds) the
    points were scored with, for explanations."""
    p = detector.params
    k = times.shape[0]
    if state.decided or k == 0:
        scored, changed = _advanced(p, state, times, values)
        result, last_flag, open_incident = report(
            p, times, scored, state.last_flag, state.open_incident
        )
        changed.update(last_flag=last_flag, open_incident=open_incident)
        return result, state.model_copy(update=changed), tuple(state.periods)
    history_times = np.concatenate([state.warmup_times, times])
    history_values = np.concatenate([state.warmup_values, values])
    if decidable(p, history_times, history_values):
        frame = decide(detector, history_times, history_values)
        every, after = advance(p, started(p, frame), history_times, history_values)
        periods_s = tuple(after.periods)
    else:
        every = detector.batch_scores(history_times, history_values)
        after = warming_state(history_times, history_values, state.last_flag, False)
        periods_s = every.periods_s
    scored = _newest(every, k)
    result, last_flag, open_incident = report(
        p, times, scored, state.last_flag, state.open_incident
    )
    bookkeeping = {"last_flag": last_flag, "open_incident": open_incident}
    return result, after.model_copy(update=bookkeeping), periods_s
