"""Streaming ``novelty``: score new points against a remembered pattern memory, not the history.

In the batch computation (``novelty_scores``) a point in the epoch of valid values [S, 2S)
(S = ``min_history`` x 2^j) is scored on that epoch's grids, cut from the range of the first S
values: on each grid, each of its patterns (its level, then with the levels before it, up to
``pattern_length``) is new unless it occurred among the previous ``memory`` valid values. Scoring
the next points therefore needs, per grid:

- the last index at which each pattern of ``pattern_length`` levels occurred: a shorter pattern
  occurs wherever a longer one starting with it does, so the longest patterns answer for every
  length. Patterns not seen in the last ``memory`` values can never count as seen again and are
  dropped, so the memory holds at most min(memory, distinct patterns) entries per grid;
- the epoch's grid (its lowest value and span), and the last ``pattern_length - 1`` values.

And, for the next epoch, the range of all values seen and every distinct run of
``pattern_length`` consecutive values seen in the last ``memory``, with where it was last seen:
when the history doubles, the new grids re-cut the remembered past (two values in one bin today
may fall in two after the re-estimate, so values, not patterns, must be kept until then). That
part is bounded by min(memory, distinct runs of values): small for values that repeat exactly
(counts, states, quantised sensors), but for continuous values every run is distinct and it is
``memory`` runs, O(min(memory, history)) rather than O(distinct patterns).

Everything is integer bookkeeping on the batch's own levels (``grid_levels``), so streaming in any
chunks gives exactly the batch's scores, and so its detections.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from warden_algos.interfaces import DetectResult, F64Array, I64Array

from .novelty import NoveltyParams, epoch_grid, grid_levels
from .novelty_state import NoveltyState

#: The level of "before the series' start" in a pattern: below every real level (|level| <= 2**52).
BEFORE = -(2**62)
_NEVER = np.iinfo(np.int64).max
#: New runs of values matched against the remembered ones by comparison (else by sorting).
_FEW = 16


class Memory(NamedTuple):
    """Remembered patterns: rows of (grid, levels newest first), and where each was last seen,
    in the order they were last seen."""

    keys: I64Array
    last: I64Array


class Recent(NamedTuple):
    """Distinct runs of consecutive values (newest first, NaN before the series' start), and
    where each was last seen, in that order."""

    values: F64Array
    last: I64Array


def epoch_of(index: int, min_history: int) -> int | None:
    """First valid index of the epoch holding valid value ``index`` (None before the first)."""
    if index < min_history:
        return None
    start = min_history
    while 2 * start <= index:
        start *= 2
    return start


def _compact(column: I64Array) -> tuple[I64Array, int]:
    """Equal keys get equal codes in 0..size-1, in the keys' order, and that size: the keys
    shifted when their range is small (the usual case: a few dozen bins), else ranked."""
    if column.shape[0] == 0:
        return column, 1
    low, high = int(column.min()), int(column.max())
    if high - low < 1 << 20:
        return column - low, high - low + 1
    return _ranked(column)


def _ranked(column: I64Array | F64Array) -> tuple[I64Array, int]:
    """Equal keys (NaN with NaN) get equal codes, ranked in the keys' order; and their number."""
    _, inverse = np.unique(column, return_inverse=True)
    codes: I64Array = inverse.reshape(-1).astype(np.int64)
    return codes, int(codes.max()) + 1 if codes.size else 1


def _prefix_codes(rows: I64Array) -> Iterator[I64Array]:
    """For each prefix length 1, 2, ... of the rows, codes equal exactly where the prefixes are
    (ordered as the prefixes sort)."""
    code, size = np.zeros(rows.shape[0], dtype=np.int64), 1
    for column_index in range(rows.shape[1]):
        column, column_size = _compact(rows[:, column_index])
        if size * column_size >= 1 << 62:  # keep the combined codes from overflowing
            code, size = _compact(code)
        code = code * column_size + column
        size *= column_size
        yield code


def _gaps(code: I64Array, pos: I64Array) -> tuple[I64Array, I64Array]:
    """Positions since the previous entry with the same code (int64 max for the first), and
    the stable order by code; entries come in position order."""
    order = np.argsort(code, kind="stable")
    ordered = code[order]
    repeat = np.empty(ordered.shape[0], dtype=bool)
    repeat[:1] = False
    np.equal(ordered[1:], ordered[:-1], out=repeat[1:])
    gap_sorted = np.full(pos.shape[0], _NEVER, dtype=np.int64)
    gap_sorted[1:][repeat[1:]] = np.diff(pos[order])[repeat[1:]]
    gap = np.empty_like(gap_sorted)
    gap[order] = gap_sorted
    return gap, order


def _latest(code: I64Array, order: I64Array, pos: I64Array, horizon: int) -> I64Array:
    """Entries that are the last occurrence of their code (``order``: stable by code) and seen
    at or after ``horizon``, in position order."""
    ordered = code[order]
    latest = np.ones(ordered.shape[0], dtype=bool)
    latest[:-1] = ordered[1:] != ordered[:-1]
    kept = np.sort(order[latest])
    found: I64Array = kept[pos[kept] >= horizon]
    return found


def _for_coding(rows: I64Array) -> I64Array:
    """``rows`` with "before the start" as the level just below every real one: as distinct,
    and a compact range for :func:`_compact`."""
    levels = rows[:, 1:]
    before = levels == BEFORE
    if not before.any():
        return rows
    real = levels[~before]
    coded = rows.copy()
    coded[:, 1:][before] = (int(real.min()) if real.size else 0) - 1
    return coded


def _level_rows(p: NoveltyParams, grid: tuple[float, float], runs: F64Array) -> I64Array:
    """The patterns of runs of values on every grid: (grid, level, level before, ...), one row
    per run and grid, grids innermost."""
    low, span = grid
    before = np.isnan(runs)
    filled = np.where(before, 0.0, runs)
    rows = np.empty((runs.shape[0], p.scales, 1 + runs.shape[1]), dtype=np.int64)
    rows[:, :, 0] = np.arange(p.scales)
    for scale in range(p.scales):
        level = grid_levels(filled, low, span, p.levels, scale).astype(np.int64)
        rows[:, scale, 1:] = np.where(before, BEFORE, level)
    return rows.reshape(-1, 1 + runs.shape[1])


def _scan(
    p: NoveltyParams,
    grid: tuple[float, float],
    runs: F64Array,
    positions: I64Array,
    memory: Memory,
) -> tuple[F64Array, Memory]:
    """Memories (grids x pattern lengths) to which the patterns of the valid values at
    ``positions`` (whose runs of values are ``runs``) are new, and the memory after them.

    All grids at once: a pattern is a row (grid, level, level before, ...), the remembered ones
    (in the order they were last seen) followed by the new ones (in order), so a stable sort by
    a pattern's code puts each occurrence right after the previous one of the same pattern."""
    k = positions.shape[0]
    every_row = np.concatenate([memory.keys, _level_rows(p, grid, runs)])
    pos = np.concatenate([memory.last, np.repeat(positions, p.scales)])
    old = memory.last.shape[0]
    counts = np.zeros(k)
    code = order = pos
    for depth, code in enumerate(_prefix_codes(_for_coding(every_row))):
        if depth:  # prefix (grid, level, ...) of one more level: one more pattern length
            gap, order = _gaps(code, pos)
            counts += np.count_nonzero((gap[old:] > p.memory).reshape(k, p.scales), axis=1)
    kept = _latest(code, order, pos, int(positions[-1]) + 1 - p.memory)
    return counts, Memory(every_row[kept], pos[kept])


def _memory_of(p: NoveltyParams, grid: tuple[float, float], recent: Recent) -> Memory:
    """The pattern memory on new grids, from the runs of values remembered."""
    rows = _level_rows(p, grid, recent.values)
    pos = np.repeat(recent.last, p.scales)
    *_, code = _prefix_codes(_for_coding(rows))
    kept = _latest(code, np.argsort(code, kind="stable"), pos, -_NEVER)
    return Memory(rows[kept], pos[kept])


def _same(a: F64Array, b: F64Array) -> np.ndarray[tuple[int, int], np.dtype[np.bool_]]:
    """``out[i, j]``: run ``a[i]`` equals run ``b[j]`` (NaN equal to NaN)."""
    equal = (a[:, None, :] == b[None, :, :]) | (np.isnan(a)[:, None, :] & np.isnan(b)[None, :, :])
    same: np.ndarray[tuple[int, int], np.dtype[np.bool_]] = equal.all(axis=2)
    return same


def _remember(recent: Recent, runs: F64Array, positions: I64Array, horizon: int) -> Recent:
    """The distinct runs of values with their last occurrence after seeing ``runs`` at
    ``positions`` (after those remembered), forgetting those last seen before ``horizon``."""
    if positions.shape[0] <= _FEW:  # a few new runs: compare them with the remembered ones
        kept_old = np.ones(recent.last.shape[0], dtype=bool)
        newest = recent.values[:, 0]
        for run in runs:  # candidates by the newest value first: one pass over the memory
            near = np.flatnonzero(np.isnan(newest) if np.isnan(run[0]) else newest == run[0])
            kept_old[near[_same(recent.values[near], run[None, :])[:, 0]]] = False
        kept_new: npt.NDArray[np.bool_] = (
            np.ones(1, dtype=bool)
            if runs.shape[0] == 1
            else np.asarray(~np.triu(_same(runs, runs), 1).any(axis=1), dtype=bool)
        )
        if kept_old.all():  # nothing seen again: no masked copy of the whole memory
            values = np.concatenate([recent.values, runs[kept_new]])
            last = np.concatenate([recent.last, positions[kept_new]])
        else:
            values = np.concatenate([recent.values[kept_old], runs[kept_new]])
            last = np.concatenate([recent.last[kept_old], positions[kept_new]])
    else:
        values = np.concatenate([recent.values, runs])
        pos = np.concatenate([recent.last, positions])
        columns = np.column_stack([_ranked(values[:, j])[0] for j in range(values.shape[1])])
        *_, code = _prefix_codes(columns)
        kept = _latest(code, np.argsort(code, kind="stable"), pos, -_NEVER)
        values, last = values[kept], pos[kept]
    start = int(np.searchsorted(last, horizon))
    if start == 0:  # both are new arrays already (concatenated or indexed), not views
        return Recent(values, last)
    return Recent(np.array(values[start:], copy=True), np.array(last[start:], copy=True))


def packed(recent: Recent) -> tuple[F64Array, I64Array]:
    """``recent`` as stored: runs seen at consecutive indices overlap (each is the previous one
    moved on by a value), so each stretch of them is its first run's older values, then every
    run's newest value; and (first index, runs) per stretch. Continuous values, whose runs are
    all distinct, take one value per run; values that repeat, one per distinct run."""
    length = recent.values.shape[1]
    count = recent.last.shape[0]
    starts = np.ones(count, dtype=bool)
    starts[1:] = np.diff(recent.last) != 1
    stretch = np.cumsum(starts) - 1
    newest_at = np.arange(count) + (stretch + 1) * (length - 1)
    flat = np.empty(count + int(np.count_nonzero(starts)) * (length - 1))
    flat[newest_at] = recent.values[:, 0]
    for lag in range(1, length):
        flat[newest_at[starts] - lag] = recent.values[starts, lag]
    first = np.flatnonzero(starts)
    runs = np.diff(np.append(first, count))
    return flat, np.column_stack([recent.last[first], runs]).astype(np.int64)


def unpacked(flat: F64Array, stretches: I64Array, length: int) -> Recent:
    """The runs and where they were last seen, from :func:`packed`'s form."""
    runs = stretches[:, 1]
    count = int(runs.sum())
    stretch = np.repeat(np.arange(runs.shape[0]), runs)
    within = np.arange(count) - np.repeat(np.cumsum(runs) - runs, runs)
    newest_at = np.arange(count) + (stretch + 1) * (length - 1)
    values = np.empty((count, length))
    for lag in range(length):
        values[:, lag] = flat[newest_at - lag]
    return Recent(values, np.repeat(stretches[:, 0], runs) + within)


class ValueMemory(NamedTuple):
    """The state's fields that follow the valid values (the rest follow the points)."""

    valid: int
    extremes: F64Array
    grid: F64Array
    recent: Recent
    memory: Memory


def score_values(
    p: NoveltyParams, state: NoveltyState, x: F64Array
) -> tuple[F64Array, ValueMemory]:
    """``novelty_scores`` of new valid values ``x`` (no NaN) after those ``state`` has seen."""
    length = p.pattern_length
    seen = int(state.valid[0])
    end = seen + x.shape[0]
    context = (  # the last pattern_length - 1 values, NaN before the start
        state.recent_values[state.recent_values.shape[0] - (length - 1) :]
        if state.recent_values.size
        else np.full(length - 1, np.nan)
    )
    extended = np.concatenate([context, x])
    if x.shape[0] == 0:
        runs = np.empty((0, length))
    else:  # run i: value i, then the values before it
        runs = np.lib.stride_tricks.sliding_window_view(extended, length)[:, ::-1]
    positions = np.arange(seen, end, dtype=np.int64)
    recent = unpacked(state.recent_values, state.recent_stretches, length)
    grid = (float(state.grid[0]), float(state.grid[1])) if state.grid.size else None
    memory = Memory(state.pattern_keys, state.pattern_last)
    current = epoch_of(seen - 1, p.min_history) if seen else None
    scores = np.zeros(x.shape[0])
    i = seen
    while i < end:
        start = epoch_of(i, p.min_history)
        if start is None:  # still learning: no score
            i = min(p.min_history, end)
            continue
        if start != current:  # the history has doubled: new grids, the memory re-cut on them
            grid = epoch_grid(*_extremes(state.extremes, x[: start - seen]))
            upto = start - seen
            at_start = _remember(recent, runs[:upto], positions[:upto], start - p.memory)
            memory = _memory_of(p, grid, at_start)
            current = start
        assert grid is not None
        stop = min(2 * start, end)
        chunk = slice(i - seen, stop - seen)
        counts, memory = _scan(p, grid, runs[chunk], positions[chunk], memory)
        scores[chunk] = counts / (p.scales * length)
        i = stop
    return scores, ValueMemory(
        valid=end,
        extremes=np.array(_extremes(state.extremes, x)) if end else np.empty(0),
        grid=np.array(grid) if grid is not None else np.empty(0),
        recent=_remember(recent, runs, positions, end - p.memory),
        memory=memory,
    )


def _extremes(extremes: F64Array, x: F64Array) -> tuple[float, float]:
    """Lowest and highest of what ``extremes`` summarises and ``x`` (not both empty)."""
    lows = [float(x.min())] if x.size else []
    highs = [float(x.max())] if x.size else []
    if extremes.size:
        lows.append(float(extremes[0]))
        highs.append(float(extremes[1]))
    return min(lows), max(highs)


def range_before(extremes: F64Array, x: F64Array) -> tuple[F64Array, F64Array]:
    """Lowest and highest valid value before each of ``x`` (NaN before the first ever)."""
    lower = np.full(x.shape[0], np.nan)
    upper = np.full(x.shape[0], np.nan)
    if x.shape[0] == 0:
        return lower, upper
    if extremes.size:
        lower[:] = np.minimum.accumulate(np.concatenate([extremes[:1], x[:-1]]))
        upper[:] = np.maximum.accumulate(np.concatenate([extremes[1:], x[:-1]]))
    elif x.shape[0] > 1:
        lower[1:] = np.minimum.accumulate(x[:-1])
        upper[1:] = np.maximum.accumulate(x[:-1])
    return lower, upper


def incident_starts(
    novel: np.ndarray[tuple[int], np.dtype[np.bool_]],
    scores: F64Array,
    refractory: int,
    offset: int,
    last_novel: int | None,
) -> np.ndarray[tuple[int], np.dtype[np.bool_]]:
    """``_incident_starts`` for a chunk whose first point is point ``offset`` of the series: a
    novel point within ``refractory`` points of ``last_novel`` (from an earlier chunk) continues
    that incident, which was reported then. Each incident started here gets its highest score in
    this chunk (in place in ``scores``)."""
    flagged = np.flatnonzero(novel)
    starts = np.zeros(novel.shape[0], dtype=bool)
    if flagged.size == 0:
        return starts
    first = np.empty(flagged.size, dtype=bool)
    first[0] = last_novel is None or offset + int(flagged[0]) - last_novel > max(refractory, 1)
    np.greater(np.diff(flagged), max(refractory, 1), out=first[1:])
    run_index = np.flatnonzero(first)
    if run_index.size:
        scores[flagged[run_index]] = np.fmax.reduceat(scores[flagged], run_index)
        starts[flagged[run_index]] = True
    return starts


def detect_next(
    p: NoveltyParams, state: NoveltyState, timestamps: I64Array, values: F64Array
) -> tuple[DetectResult, NoveltyState]:
    """``Novelty.detect`` of the points after those ``state`` has seen, and the state after them."""
    n = values.shape[0]
    valid = np.flatnonzero(~np.isnan(values))
    x = values[valid]
    with np.errstate(all="ignore"):
        scores_valid, after = score_values(p, state, x)
        lower_valid, upper_valid = range_before(state.extremes, x)
    scores = np.zeros(n)
    scores[valid] = scores_valid
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    lower[valid] = lower_valid
    upper[valid] = upper_valid
    novel = scores >= p.threshold - 1e-12
    offset = int(state.points[0])
    flagged = np.flatnonzero(novel)
    last_novel = state.last_novel
    if flagged.size:
        last_novel = np.array([offset + int(flagged[-1])], dtype=np.int64)
    if not p.every_point:
        previous = int(state.last_novel[0]) if state.last_novel.size else None
        novel = incident_starts(novel, scores, p.refractory, offset, previous)
    result = DetectResult.from_flags(
        timestamps,
        novel,
        scores,
        every_point=True,  # ``novel`` already holds one point per incident unless asked
        expected=np.full(n, np.nan),
        lower=lower,
        upper=upper,
    )
    recent_values, recent_stretches = packed(after.recent)
    return result, NoveltyState(
        points=np.array([offset + n], dtype=np.int64),
        valid=np.array([after.valid], dtype=np.int64),
        extremes=after.extremes,
        grid=after.grid,
        recent_values=recent_values,
        recent_stretches=recent_stretches,
        pattern_keys=after.memory.keys,
        pattern_last=after.memory.last,
        last_novel=last_novel,
    )
