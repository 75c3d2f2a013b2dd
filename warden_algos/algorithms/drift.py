"""Distribution drift: a recent window's values against a reference distribution (PSI or KS)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from warden_algos.interfaces import (
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
    InvalidInput,
    StateArray,
)
from warden_algos.interfaces.budget import InputShape, WorkEstimate
from warden_algos.interfaces.state import AlgorithmState
from warden_algos.interfaces.streaming import continuing_flags, still_open
from warden_algos.interfaces.trainable import TrainableDetector

#: Reference quantiles the window's distribution is compared at: levels 0, 1/GRID, ..., 1.
GRID = 100
#: PSI's bins: the reference deciles (every tenth grid level), open-ended at both ends.
PSI_BINS = 10
#: A bin's share below this counts as this in PSI's logarithm (an empty bin would be infinite).
PSI_FLOOR = 1e-4


class DriftParams(DetectorParams):
    method: Literal["psi", "ks"] = Field(
        "psi",
        description="psi: population stability index over the reference's deciles; ks: "
        "Kolmogorov-Smirnov distance between the window's and the reference's distributions.",
    )
    window: int = Field(
        288,
        ge=10,
        le=100_000,
        description="Recent points whose distribution is compared with the reference (the point "
        "and the ones before it).",
    )
    reference_points: int = Field(
        2000,
        ge=20,
        le=1_000_000,
        description="Valid values that form the reference distribution: the first ones the "
        "detector sees (fit on the reference period).",
    )
    psi_threshold: float = Field(
        0.25,
        gt=0,
        le=100,
        description="method psi: flag when the PSI exceeds this (the usual reading: below 0.1 "
        "stable, 0.1 to 0.25 a moderate shift, above 0.25 a significant one).",
    )
    ks_alpha: float = Field(
        0.001,
        gt=0,
        lt=1,
        description="method ks: flag when the KS distance exceeds the two-sample critical value "
        "at this significance, sqrt(-ln(alpha / 2) / 2) * sqrt((n + m) / (n m)).",
    )
    cooldown: int = Field(
        288,
        ge=0,
        le=10**9,
        description="Flagged points at most this many points apart are one incident (one "
        "detection, unless every_point): a drift hovering at the threshold is reported once.",
    )
    min_valid: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Score a window only when at least this fraction of its points are valid.",
    )


class DriftState(AlgorithmState):
    reference_values: StateArray = Field(
        description="Valid values seen while the reference is incomplete (float64, fewer than "
        "reference_points; empty once it is complete)."
    )
    grid: StateArray = Field(
        description="The reference's quantiles at levels 0, 0.01, ..., 1 (float64, 101; empty "
        "until the reference is complete)."
    )
    grid_cdf: StateArray = Field(
        description="Share of reference values at or below each grid quantile (float64, 101)."
    )
    tail: StateArray = Field(
        description="The last window - 1 values seen (float64, NaN for missing): the window of "
        "the next point."
    )
    open_incident: bool = Field(
        False, description="Whether the last point seen belongs to an incident."
    )
    since_flagged: int = Field(
        -1,
        ge=-1,
        description="Points since the last flagged one, at most cooldown + 1 (-1: none "
        "flagged yet).",
    )


class Drift(TrainableDetector[DriftParams, DriftState]):
    """Compares the distribution of the last ``window`` values with a reference distribution,
    the first ``reference_points`` valid values seen (fit on a period you consider normal), and
    flags the points where they differ: by the population stability index over the reference's
    deciles (``method`` psi, flagged above ``psi_threshold``, 0.25 by default) or by the
    Kolmogorov-Smirnov distance (``method`` ks, flagged above the two-sample critical value at
    ``ks_alpha``). The score is the statistic over its threshold (above 1 when flagged).

    Use it for slow or distributional change that no single point shows: a feature whose mix
    shifts, a latency whose tail fattens, a sensor whose noise grows, a level that creeps by less
    than its noise per day. Both statistics ignore order inside the window, so it answers "is the
    recent distribution still the reference one", not "is this point odd": pair it with a point
    detector. PSI reads shares of deciles (robust, the model-monitoring convention); KS reads the
    largest gap between the cumulative distributions and has a significance level. Avoid it on
    series with strong seasonality and a window shorter than the cycle: the window then drifts
    through the day by itself.

    The reference is kept as its quantiles at 101 levels (0, 0.01, ..., 1) and the exact share
    of reference values at or below each, so the state is bounded whatever the reference size.
    The window's distribution is read at those same quantiles: KS is the largest gap at those
    101 points (exact at them; the true KS distance can exceed it by at most one grid step of
    the reference, 0.01); PSI's bins are the reference deciles, open-ended at both ends, with
    shares floored at 1e-4. Missing values are left out of both distributions; a window with
    fewer than ``min_valid`` of its points valid is not scored, nor are points until the
    reference is complete.

    Trainable and causal: the state holds the reference (its values until it is complete, then
    its quantiles) and the last ``window - 1`` values, so streaming gives exactly a batch call's
    detections.
    """

    name = "drift"
    summary = (
        "Distribution drift of a recent window against a reference: PSI or Kolmogorov-Smirnov."
    )
    causal: ClassVar[bool] = True

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        result, _ = self.detect_next(dimensions, timestamps, values, self.empty())
        return result

    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DriftState:
        """The state after streaming the history from nothing: its reference, its tail and an
        incident it may end in (so that streaming on gives one call's detections)."""
        return self.detect_next(dimensions, timestamps, values, self.empty())[1]

    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: DriftState
    ) -> tuple[DetectResult, DriftState]:
        p = self.params
        self.check(state)
        z = self.scores(state, values)
        flagged = z > 1.0
        n = values.shape[0]
        # Where the last flagged point is, for every point (positions relative to this chunk;
        # the state carries the one before it), and so whether a point is within the cooldown.
        before = -1 - state.since_flagged if state.since_flagged >= 0 else -(2**62)
        last = np.maximum.accumulate(np.where(flagged, np.arange(n), before)) if n else None
        incident = flagged if p.every_point or last is None else (np.arange(n) - last) <= p.cooldown
        result = continuing_flags(
            timestamps,
            incident,
            np.where(flagged, z, 0.0),
            state.open_incident,
            every_point=p.every_point,
        )
        since = state.since_flagged
        if last is not None and last[-1] > -(2**62):
            since = int(n - 1 - last[-1])
        if since >= 0:
            since = min(since, p.cooldown + 1)  # beyond the cooldown, the count means nothing
        after = self.advance(state, values)
        return result, after.model_copy(
            update={
                "open_incident": still_open(incident, state.open_incident),
                "since_flagged": since,
            }
        )

    # -- the reference ------------------------------------------------------------------------

    def empty(self) -> DriftState:
        return DriftState(
            reference_values=np.empty(0),
            grid=np.empty(0),
            grid_cdf=np.empty(0),
            tail=np.full(self.params.window - 1, np.nan),
        )

    def advance(self, state: DriftState, values: F64Array) -> DriftState:
        """The state after ``values``: the reference completed from them if it was not, and the
        new tail."""
        p = self.params
        clean = np.where(np.isfinite(values), values, np.nan)
        joined = np.concatenate([np.asarray(state.tail), clean])
        tail = np.array(joined[joined.shape[0] - (p.window - 1) :], copy=True)
        if state.grid.shape[0]:
            return state.model_copy(update={"tail": tail})
        reference = reference_for(state, values, p.reference_points)
        if reference is None:
            gathered = np.concatenate([np.asarray(state.reference_values), clean[~np.isnan(clean)]])
            return state.model_copy(update={"reference_values": gathered, "tail": tail})
        grid, cdf, _ = reference
        return state.model_copy(
            update={"reference_values": np.empty(0), "grid": grid, "grid_cdf": cdf, "tail": tail}
        )

    def check(self, state: DriftState) -> None:
        p = self.params
        tail = np.asarray(state.tail)
        ref = np.asarray(state.reference_values)
        grid = np.asarray(state.grid)
        cdf = np.asarray(state.grid_cdf)
        problem = None
        if tail.shape != (p.window - 1,) or np.isinf(tail).any():
            problem = f"its tail is not window - 1 = {p.window - 1} values (NaN for missing)"
        elif ref.ndim != 1 or ref.shape[0] >= p.reference_points or not np.isfinite(ref).all():
            problem = "its reference values are not fewer than reference_points valid values"
        elif state.since_flagged > p.cooldown + 1:
            problem = "its count of points since the last flagged one exceeds cooldown + 1"
        elif grid.shape[0] and (grid.shape != (GRID + 1,) or cdf.shape != (GRID + 1,)):
            problem = f"its reference quantiles are not {GRID + 1}"
        elif grid.shape[0] and not (
            np.isfinite(grid).all() and (np.diff(grid) >= 0).all() and np.isfinite(cdf).all()
        ):
            problem = "its reference quantiles are not finite and increasing"
        elif grid.shape[0] and not (
            (cdf >= 0).all() and (np.diff(cdf) >= 0).all() and cdf[-1] == 1.0
        ):
            problem = "its reference shares are not a cumulative distribution (0 to 1)"
        elif grid.shape[0] == 0 and cdf.shape[0]:
            problem = "it has reference shares without quantiles"
        if problem:
            raise InvalidInput(
                f"the state's drift reference is malformed: {problem}", field="state"
            )

    # -- the statistics -----------------------------------------------------------------------

    def scores(self, state: DriftState, values: F64Array) -> F64Array:
        """Each new point's statistic over its threshold (0 where it is not scored)."""
        p = self.params
        n = values.shape[0]
        out = np.zeros(n)
        reference = reference_for(state, values, p.reference_points)
        if reference is None:
            return out
        grid, cdf, first = reference
        w = p.window
        joined = np.concatenate(
            [np.asarray(state.tail), np.where(np.isfinite(values), values, np.nan)]
        )
        valid = ~np.isnan(joined)
        # One count per valid value, in the column of the grid quantiles below it; prefix sums
        # over time give each window's counts, prefix sums over columns "at or below grid[j]".
        column = np.searchsorted(grid, np.where(valid, joined, 0.0), side="left")
        counts = np.zeros((joined.shape[0] + 1, GRID + 2), dtype=np.int32)
        rows = np.flatnonzero(valid)
        np.add.at(counts, (rows + 1, column[rows]), 1)
        np.cumsum(counts, axis=0, out=counts)
        ends = np.arange(w, w + n)  # the window of new point i is joined[i : i + w]
        in_window = np.cumsum(counts[ends] - counts[ends - w], axis=1, dtype=np.int32)
        total = in_window[:, -1].astype(np.float64)
        share = in_window[:, : GRID + 1] / np.maximum(total, 1.0)[:, None]
        if p.method == "ks":
            gap = np.abs(share - cdf[None, :]).max(axis=1)
            m = float(p.reference_points)
            size = np.sqrt(np.maximum(total + m, 1.0) / np.maximum(total * m, 1.0))
            statistic = gap / (np.sqrt(-np.log(p.ks_alpha / 2.0) / 2.0) * size)
        else:
            statistic = psi(share, cdf) / p.psi_threshold
        scored = total >= max(1, int(np.ceil(p.min_valid * w)))
        scored[:first] = False
        out[scored] = statistic[scored]
        return out

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """Counts per point and grid quantile (int32, a prefix over the window and the points)
        and the window's shares (float64)."""
        p = self.params
        rows = shape.longest + p.window
        cells = rows * (GRID + 2)
        # int32 counts (a prefix, a window difference, its prefix), float64 shares and their
        # gap to the reference (two live at once), the reference sorted (twice: scored, kept)
        reference = 8 * p.reference_points * 4
        return WorkEstimate(
            peak_bytes=4 * cells * 3 + 8 * cells * 3 + reference,
            operations=12 * cells + 40 * p.reference_points,
        )


def reference_grid(reference: F64Array) -> tuple[F64Array, F64Array]:
    """The reference's quantiles at the grid levels and the share of it at or below each."""
    ordered = np.sort(reference)
    grid = np.asarray(np.quantile(ordered, np.linspace(0.0, 1.0, GRID + 1)), dtype=np.float64)
    cdf = np.asarray(np.searchsorted(ordered, grid, side="right") / ordered.shape[0], np.float64)
    return grid, cdf


def reference_for(
    state: DriftState, values: F64Array, size: int
) -> tuple[F64Array, F64Array, int] | None:
    """(grid, shares, first new point scored against it), or None while the reference is still
    incomplete after ``values``."""
    if state.grid.shape[0]:
        return np.asarray(state.grid), np.asarray(state.grid_cdf), 0
    needed = size - state.reference_values.shape[0]
    valid = np.flatnonzero(np.isfinite(values))
    if valid.shape[0] < needed:
        return None
    gathered = np.concatenate([np.asarray(state.reference_values), values[valid[:needed]]])
    grid, cdf = reference_grid(gathered)
    return grid, cdf, int(valid[needed - 1]) + 1


def psi(share: npt.NDArray[np.float64], cdf: F64Array) -> F64Array:
    """Population stability index of each row's distribution (shares at or below the grid
    quantiles) against the reference's, over the reference deciles."""
    deciles = np.arange(PSI_BINS, GRID, PSI_BINS)  # grid levels 0.1 .. 0.9
    rows = share.shape[0]
    expected = np.diff(np.concatenate([[0.0], cdf[deciles], [1.0]]))
    actual = np.diff(
        np.concatenate([np.zeros((rows, 1)), share[:, deciles], np.ones((rows, 1))], axis=1),
        axis=1,
    )
    e = np.maximum(expected, PSI_FLOOR)[None, :]
    a = np.maximum(actual, PSI_FLOOR)
    result: F64Array = ((a - e) * np.log(a / e)).sum(axis=1)
    return result
