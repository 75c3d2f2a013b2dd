"""Novelty detector: flags the points whose discretised value patterns the series has never shown.

Causal (a point's score depends only on it and the points before it), vectorised with sorts (no
Python loop over points), light: numpy only. Trainable: the state is the pattern memory
(``novelty_state``), and streaming it (``novelty_stream``, loaded only when a state is involved)
gives exactly the batch call's detections.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from warden_algos.interfaces import (
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
)
from warden_algos.interfaces.trainable import TrainableDetector

from .novelty_state import NoveltyState, empty_state

#: Ratio between successive grid resolutions: sqrt(2), so ``scales`` grids span a factor of
#: sqrt(2) ** (scales - 1) in bin width (5, 7.1, 10, 14.1 bins across the range by default).
_SCALE_RATIO = float(np.sqrt(2.0))
#: Levels are clipped to this before the cast to int64, so huge values cannot overflow.
_LEVEL_LIMIT = float(2**52)
_NEVER = np.iinfo(np.int64).max


class NoveltyParams(DetectorParams):
    levels: float = Field(
        5.0,
        ge=2,
        le=1000,
        description="Bins across the range of the history in the coarsest grid; finer grids "
        "follow at sqrt(2) steps. More levels notice smaller departures (and more noise).",
    )
    scales: int = Field(
        4,
        ge=1,
        le=12,
        description="Number of grids (resolutions) that vote; more grids make the score less "
        "sensitive to where the bin edges fall.",
    )
    pattern_length: int = Field(
        2,
        ge=1,
        le=6,
        description="Longest pattern remembered, in consecutive points: 1 remembers levels, 2 "
        "also transitions (level before, level now), 3 also triples, and so on.",
    )
    threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Flag a point when at least this fraction of the memories (grids x pattern "
        "lengths) have not seen its pattern before.",
    )
    memory: int = Field(
        10_000,
        ge=1,
        le=10**12,
        description="Points after which an unrepeated pattern is forgotten (it becomes novel "
        "again): lets the detector re-arm after a regime change.",
    )
    min_history: int = Field(
        64,
        ge=2,
        le=10**9,
        description="Valid points learnt before any point is scored.",
    )
    refractory: int = Field(
        20,
        ge=0,
        le=10**9,
        description="Novel points separated by at most this many points belong to one incident "
        "(one detection, unless every_point). 0: only adjacent novel points do.",
    )


class Novelty(TrainableDetector[NoveltyParams, NoveltyState]):
    """Flags the first points of behaviour the series has never shown: a value level, or a
    transition between levels, that no earlier point had.

    The values are discretised on several grids (``scales`` resolutions, from ``levels`` bins
    across the range seen so far, each finer by sqrt(2)). For each grid the detector remembers
    every pattern of 1..``pattern_length`` consecutive levels it has seen; a point's score is the
    fraction of these memories to which its pattern is new, and a point is flagged when the score
    reaches ``threshold``. Patterns not repeated within ``memory`` points are forgotten. The
    grids' range is re-estimated from the history whenever the history has doubled (first after
    ``min_history`` points), so only the past shapes a point's score: it behaves the same in a
    stream. Novel points at most ``refractory`` points apart form one incident, reported once
    at its first point with the incident's highest score.

    Use it when you do not know what an anomaly will look like and want one early alarm per
    incident: new highs or lows, level shifts, a change of shape (a flattened cycle, bursts,
    a new rhythm), on any scale of metric, with no model to choose and no threshold in value
    units. It self-limits on stationary data (once the usual patterns are known, nothing is new),
    and one setting works across very different series (on NAB's development set it scores about
    66 on the standard profile). Do not use it to flag every point of a long anomaly (it alerts on
    the new behaviour, then learns it: a level that persists stops being flagged), for anomalies
    that only differ by their time of day (a daily peak occurring at night looks familiar), or
    when a slow trend keeps reaching new levels (every new level is novel: detrend first, or
    compare with a seasonal or k-sigma detector). The band returned is the range of values seen
    before each point (``expected`` is NaN: the method predicts no value). Missing values (NaN)
    are never flagged and are skipped: patterns join the valid points on either side.

    Trainable: ``fit`` learns the pattern memory from a history and streaming new points with
    the state gives exactly the detections of one call over the whole series (an incident cut
    by a chunk boundary is scored by its highest score so far). The state holds, per grid, the
    patterns seen in the last ``memory`` values, and the distinct runs of values behind them
    (re-cut when the history doubles): at most ``memory`` of each, fewer when values repeat.
    """

    name = "novelty"
    summary = "Flags values or level transitions never seen before, voted over several grids."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        n = values.shape[0]
        valid = np.flatnonzero(~np.isnan(values))
        x = values[valid]
        with np.errstate(all="ignore"):
            scores_valid = novelty_scores(
                x,
                levels=p.levels,
                scales=p.scales,
                pattern_length=p.pattern_length,
                memory=p.memory,
                min_history=p.min_history,
            )
            lower_valid, upper_valid = _history_range(x)
        scores = np.zeros(n)
        scores[valid] = scores_valid
        lower = np.full(n, np.nan)
        upper = np.full(n, np.nan)
        lower[valid] = lower_valid
        upper[valid] = upper_valid
        novel = scores >= p.threshold - 1e-12
        if not p.every_point:
            novel = _incident_starts(novel, scores, p.refractory)
        return DetectResult.from_flags(
            timestamps,
            novel,
            scores,
            every_point=True,  # ``novel`` already holds one point per incident unless asked
            expected=np.full(n, np.nan),
            lower=lower,
            upper=upper,
        )

    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> NoveltyState:
        from .novelty_stream import detect_next  # the streaming code loads only with a state

        return detect_next(
            self.params, empty_state(self.params.pattern_length), timestamps, values
        )[1]

    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: NoveltyState
    ) -> tuple[DetectResult, NoveltyState]:
        from .novelty_stream import detect_next

        return detect_next(self.params, state, timestamps, values)


def novelty_scores(
    x: F64Array,
    *,
    levels: float,
    scales: int,
    pattern_length: int,
    memory: int,
    min_history: int,
) -> F64Array:
    """Per point of ``x`` (no NaN), the fraction of memories to which its pattern is new.

    The range that sets the grids is re-estimated when the history doubles; the points of each
    such epoch are scored against the whole history re-discretised with that epoch's grids (a
    sort per grid and pattern length, so about twice the work of a single pass). Zero before
    ``min_history``.
    """
    n = x.shape[0]
    scores = np.zeros(n)
    start = min_history
    while start < n:
        end = min(2 * start, n)
        history = x[:start]
        low, span = epoch_grid(float(history.min()), float(history.max()))
        new_count = np.zeros(end - start)
        for scale in range(scales):
            code = _dense_codes(grid_levels(x[:end], low, span, levels, scale))
            base = int(code.max()) + 2
            pattern = code
            for lag in range(pattern_length):
                if lag:  # extend each pattern by the level ``lag`` points earlier
                    earlier = np.empty_like(code)
                    earlier[:lag] = base - 1  # "before the start" is a level of its own
                    earlier[lag:] = code[:-lag]
                    pattern = _dense_codes(pattern * base + earlier)
                gap = _gap_since_seen(pattern)[start:end]
                new_count += gap > memory
        scores[start:end] = new_count / (scales * pattern_length)
        start = end
    return scores


def epoch_grid(history_low: float, history_high: float) -> tuple[float, float]:
    """The lowest value and the span that set an epoch's grids, from the range of its history."""
    low = history_low
    span = history_high - low
    if not span > 0 or not np.isfinite(span):  # flat history: any departure is new
        span = max(abs(low), 1.0) * 1e-6 if np.isfinite(low) else 1.0
    return low, span


def grid_levels(x: F64Array, low: float, span: float, levels: float, scale: int) -> F64Array:
    """The level (bin number, as a float) of each value on grid ``scale`` of an epoch."""
    width = span / (levels * _SCALE_RATIO**scale)
    level: F64Array = np.floor(np.clip((x - low) / width, -_LEVEL_LIMIT, _LEVEL_LIMIT))
    return level


def _dense_codes(keys: F64Array | I64Array) -> I64Array:
    """Equal keys get equal codes 0..k-1 (so products of codes stay small)."""
    _, inverse = np.unique(keys, return_inverse=True)
    codes: I64Array = inverse.reshape(-1).astype(np.int64)
    return codes


def _gap_since_seen(keys: I64Array) -> I64Array:
    """Points since the previous occurrence of the same key (int64 max for a first one)."""
    order = np.argsort(keys, kind="stable")  # within a key, by position
    ordered = keys[order]
    repeat = np.empty(keys.shape[0], dtype=bool)
    repeat[:1] = False
    np.equal(ordered[1:], ordered[:-1], out=repeat[1:])
    gap_sorted = np.full(keys.shape[0], _NEVER, dtype=np.int64)
    gap_sorted[1:][repeat[1:]] = (order[1:] - order[:-1])[repeat[1:]]
    gap = np.empty_like(gap_sorted)
    gap[order] = gap_sorted
    return gap


def _history_range(x: F64Array) -> tuple[F64Array, F64Array]:
    """Lowest and highest value before each point (NaN for the first)."""
    lower = np.full(x.shape[0], np.nan)
    upper = np.full(x.shape[0], np.nan)
    if x.shape[0] > 1:
        lower[1:] = np.minimum.accumulate(x[:-1])
        upper[1:] = np.maximum.accumulate(x[:-1])
    return lower, upper


def _incident_starts(
    novel: np.ndarray[tuple[int], np.dtype[np.bool_]], scores: F64Array, refractory: int
) -> np.ndarray[tuple[int], np.dtype[np.bool_]]:
    """Keep the first novel point of each incident (novel points <= ``refractory`` apart), and
    give it the incident's highest score (in place in ``scores``)."""
    flagged = np.flatnonzero(novel)
    starts = np.zeros(novel.shape[0], dtype=bool)
    if flagged.size == 0:
        return starts
    first = np.empty(flagged.size, dtype=bool)
    first[0] = True
    np.greater(np.diff(flagged), max(refractory, 1), out=first[1:])
    run_index = np.flatnonzero(first)
    scores[flagged[run_index]] = np.fmax.reduceat(scores[flagged], run_index)
    starts[flagged[run_index]] = True
    return starts
