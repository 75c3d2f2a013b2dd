"""The alerting stage: per-point scores to calibrated, grouped, re-baselined alerts.

Any detector gets it by declaring nothing: a request sets ``params.alerting``
(``alerting_params.AlertingParams``) and the runner applies this stage to the per-point scores the
detector computed (``point_capture``), or, for a detector that builds its result another way, to
its distance from its own band. What it does, point by point, in time order (so that a stream
would reach the same alerts):

1. **Calibrate.** A score's tail probability under the trailing history of the series' points:
   the share of the history scoring at least as high (plus one, over the history plus one, so it
   is never 0); beyond the history's top 2 % (at least 20 points) an exponential tail fitted to
   those points' excesses extrapolates, since a few thousand points cannot tell 1 in 10,000 from
   1 in a million. An incident's points join the history only once it is over, so it never makes
   itself look normal while it lasts; they do join it then, since a history that kept out every
   high score would keep lowering its own threshold until every point alerted.
2. **Threshold.** A point is a candidate when its tail probability is at most
   ``tail_probability(sensitivity)`` (and, with ``only_flagged``, the detector flags it).
3. **Group.** Candidates at most ``quiet`` points apart are one incident (a flapping change is
   one incident, not one per crossing), and so are the points the detector goes on flagging
   after a candidate (with ``only_flagged``): a change the detector flags for its whole length is
   one incident even where only some of its points are rare enough to be candidates, so it alerts
   once, not once per cluster of candidates (seasonal's shifts alerted 601 times on one NAB file
   before this rule). It alerts once, at the first point where ``min_duration`` consecutive
   candidates have been seen and the ``cooldown`` since the previous alert is over.
4. **Re-baseline.** An incident that has alerted and spanned ``rebaseline`` points, at least
   half of them candidates, is a level shift: the history restarts from its points, so the new
   level is the norm and alerts resume when it has enough history of its own. (One that has not
   alerted yet, held by ``min_duration`` or the cool-down, goes on until it does.)

On a stream (``run_detect_next``) the stage's state (``AlertingState``: the history, the
incident going on, the last alert) rides in the detector's state blob, so a stream cut anywhere
alerts at the points one call on the whole would (an alert's score is its incident's peak so
far, so a cut may lower it).

The alert's score is the calibrated one, 1 - tail probability (0.999: one point in a thousand of
the recent history scores as high). Cost: about 5 µs a point (``estimate``).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from .alerting_params import MAX_WINDOW, AlertingParams, tail_probability
from .budget import WorkEstimate
from .errors import InvalidParams
from .point_capture import PointScores
from .state import AlgorithmState, StateArray
from .types import DetectResult, Explanation, F64Array, I64Array

#: The share of the history whose excesses fit the extrapolated tail, and its least size.
TAIL_SHARE = 0.02
TAIL_MIN_POINTS = 20
#: The smallest tail probability reported (its calibrated score stays below 1).
SMALLEST_TAIL = 1e-12
#: The stage state's own version: a stored one of another version is not read; the stage starts
#: afresh on that stream instead (it is a cache of recent history, not a model).
STATE_VERSION = 1
#: Positions (points scored on a stream) stay far below int64's end.
MAX_POSITION = 1 << 62


class Alerts(NamedTuple):
    """Per alert, positions into the input: where it was raised, its incident's first point, its
    lowest tail probability (the peak) and last point; and its calibrated score."""

    at: npt.NDArray[np.intp]
    starts: npt.NDArray[np.intp]
    peaks: npt.NDArray[np.intp]
    ends: npt.NDArray[np.intp]
    calibrated: F64Array


def with_stage(own: WorkEstimate, points: int, params: AlertingParams) -> WorkEstimate:
    """A detector's estimate with the stage's added: what a request with ``alerting`` costs."""
    stage = estimate(points, params)
    return WorkEstimate(own.peak_bytes + stage.peak_bytes, own.operations + stage.operations)


def estimate(points: int, params: AlertingParams) -> WorkEstimate:
    """About 5-6 µs a point in the loop (measured: ``benchmarks/alerting.py``), plus the sorted
    history's insertions (a memmove of up to ``window`` pointers), and five arrays of the input's
    length."""
    return WorkEstimate(
        peak_bytes=points * 40 + params.window * 64,
        operations=points * (7_000 + params.window // 4),
    )


class AlertingState(AlgorithmState):
    """The stage between two calls on a stream, stored beside the detector's own state (the
    blob's ``alerting`` part, ``state.py``): the history, the incident going on, the last alert.
    Positions count the points the stage has scored on this stream."""

    version: int
    history: StateArray  # float64 scores, oldest first
    held: StateArray  # float64 scores of the incident going on, oldest first
    position: int = Field(ge=0, le=MAX_POSITION)
    open: bool
    start: int = Field(ge=0, le=MAX_POSITION)
    peak: int = Field(ge=0, le=MAX_POSITION)
    last: int = Field(ge=0, le=MAX_POSITION)
    run: int = Field(ge=0, le=MAX_POSITION)
    candidates: int = Field(ge=0, le=MAX_POSITION)
    lowest: float = Field(ge=SMALLEST_TAIL, le=1)
    alerted: bool
    last_alert: int = Field(ge=-(10**18), le=MAX_POSITION)

    @model_validator(mode="after")
    def _consistent(self) -> AlertingState:
        for name in ("history", "held"):
            array = getattr(self, name)
            if array.dtype != np.float64 or array.ndim != 1 or array.size > MAX_WINDOW:
                raise ValueError(f"{name} must be at most {MAX_WINDOW} float64 values")
            if not np.isfinite(array).all():
                raise ValueError(f"{name} must hold finite numbers")
        if self.version != STATE_VERSION:
            raise ValueError(f"version {self.version} is not this stage's {STATE_VERSION}")
        if self.last_alert > self.position:
            raise ValueError("an alert beyond the points the stage has scored")
        if self.open:
            if not self.start <= self.peak <= self.last < self.position:
                raise ValueError("the incident's start, peak and last point are out of order")
            if not self.run <= self.candidates <= self.last - self.start + 1:
                raise ValueError("the incident's candidates do not fit its span")
        elif self.alerted or self.held.size:
            raise ValueError("no incident is going on, yet one is alerted or held")
        return self


class _History:
    """The trailing history of the series' scores, kept sorted for ranks."""

    def __init__(self, size: int, scores: Iterable[float] = ()) -> None:
        self.order: deque[float] = deque()
        self.sorted: list[float] = []
        self.size = size
        for score in scores:
            self.add(score)

    def add(self, score: float) -> None:
        self.order.append(score)
        bisect.insort(self.sorted, score)
        if len(self.order) > self.size:
            old = self.order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def restart(self, scores: Iterable[float]) -> None:
        self.order.clear()
        self.sorted.clear()
        for score in scores:
            self.add(score)

    def tail(self, score: float) -> float:
        """The estimated probability that a history point scores at least ``score``."""
        ranked = self.sorted
        m = len(ranked)
        k = min(m, max(TAIL_MIN_POINTS, math.ceil(TAIL_SHARE * m)))
        threshold = ranked[m - k]
        if score > threshold:
            try:  # scores near float64's end overflow the excesses: rank them instead
                mean_excess = math.fsum(x - threshold for x in ranked[m - k :]) / k
                scaled = (score - threshold) / mean_excess if mean_excess > 0 else math.nan
            except OverflowError:
                scaled = math.nan
            if math.isfinite(scaled):
                probability = k / (m + 1) * math.exp(-scaled)
                return max(probability, SMALLEST_TAIL)
        at_least = m - bisect.bisect_left(ranked, score)
        return (at_least + 1) / (m + 1)


def tail_probabilities(scores: F64Array, window: int, min_history: int) -> F64Array:
    """Each score's tail probability under the trailing ``window`` scores before it (every
    point joins the history; 1 while fewer than ``min_history`` are there, or for NaN): how an
    ensemble puts its members on one scale before it combines them."""
    history = _History(window)
    out = np.ones(scores.shape[0])
    for index, score in enumerate(scores.tolist()):
        if score != score or math.isinf(score):
            continue
        if len(history.order) >= min_history:
            out[index] = history.tail(score)
        history.add(score)
    return out


class _Stage:
    """The stage's loop, resumable: ``feed`` chunk after chunk gives the alerts one call on
    the whole series would (positions absolute, from the stream's first point)."""

    def __init__(self, params: AlertingParams, state: AlertingState | None = None) -> None:
        self.params = params
        self.alpha = tail_probability(params.sensitivity)
        window = params.window
        self.history = _History(window, [] if state is None else state.history[-window:].tolist())
        self.held: deque[float] = deque(
            [] if state is None else state.held[-window:].tolist(), maxlen=window
        )
        self.position = 0 if state is None else state.position
        self.open = False if state is None else state.open
        self.start = self.peak = self.last = 0
        self.run = self.candidates = 0
        self.lowest = 1.0
        self.alerted = False
        self.last_alert = -(10**18)
        if state is not None:
            self.start, self.peak, self.last = state.start, state.peak, state.last
            self.run, self.candidates, self.lowest = state.run, state.candidates, state.lowest
            self.alerted, self.last_alert = state.alerted, state.last_alert

    def state(self) -> AlertingState:
        return AlertingState(
            version=STATE_VERSION,
            history=np.asarray(self.history.order, dtype=np.float64),
            held=np.asarray(self.held, dtype=np.float64),
            position=self.position,
            open=self.open,
            start=self.start,
            peak=self.peak,
            last=self.last,
            run=self.run,
            candidates=self.candidates,
            lowest=self.lowest,
            alerted=self.alerted,
            last_alert=self.last_alert,
        )

    def feed(self, scores: F64Array, flags: npt.NDArray[np.bool_] | None) -> Alerts:
        """This chunk's alerts, as positions into it (an incident begun in an earlier chunk has
        its start clipped to this one's first point)."""
        params, history, held = self.params, self.history, self.held
        offset = self.position
        flagged = flags.tolist() if params.only_flagged and flags is not None else None
        at: list[int] = []
        starts: list[int] = []
        peaks: list[int] = []
        ends: list[int] = []
        calibrated: list[float] = []
        here = -1  # the going incident's alert among this chunk's, if it was raised here

        def close(restart: bool) -> None:
            nonlocal here
            if here >= 0:
                ends[here] = self.last - offset
            if restart:  # a confirmed level shift: its points are the new norm
                history.restart(held)
            else:
                for one in held:
                    history.add(one)
            held.clear()
            self.open = self.alerted = False
            here = -1

        for index, score in enumerate(scores.tolist()):
            t = offset + index
            finite = score == score and not math.isinf(score)
            probability = 1.0
            if score == score and len(history.order) >= params.min_history:  # not NaN
                probability = history.tail(score)
            candidate = probability <= self.alpha and (flagged is None or flagged[index])
            if not candidate:
                self.run = 0
                if not self.open:
                    if finite:
                        history.add(score)
                    continue
                if finite:
                    held.append(score)
                if flagged is not None and flagged[index]:
                    self.last = t  # the detector still flags it: the incident goes on
                elif t - self.last >= params.quiet:
                    close(restart=False)
                continue
            if not self.open:
                self.open, self.start, self.peak = True, t, t
                self.lowest, self.candidates, self.run = probability, 0, 0
            elif probability < self.lowest:
                self.peak, self.lowest = t, probability
            self.last = t
            self.run += 1
            self.candidates += 1
            if finite:
                held.append(score)
            if here >= 0:
                peaks[here] = max(self.peak - offset, 0)
                calibrated[here] = 1.0 - self.lowest
            elif (
                not self.alerted
                and self.run >= params.min_duration
                and t - self.last_alert > params.cooldown
            ):
                here = len(at)
                at.append(index)
                starts.append(max(self.start - offset, 0))
                peaks.append(max(self.peak - offset, 0))
                ends.append(index)
                calibrated.append(1.0 - self.lowest)
                self.alerted, self.last_alert = True, t
            span = t - self.start + 1
            if (
                params.rebaseline
                and self.alerted
                and span >= params.rebaseline
                and 2 * self.candidates >= span
            ):
                close(restart=True)
        self.position = offset + scores.shape[0]
        if here >= 0:
            ends[here] = self.last - offset
        return Alerts(
            np.asarray(at, dtype=np.intp),
            np.asarray(starts, dtype=np.intp),
            np.asarray(peaks, dtype=np.intp),
            np.asarray(ends, dtype=np.intp),
            np.asarray(calibrated, dtype=np.float64),
        )


def find_alerts(
    scores: F64Array,
    flags: npt.NDArray[np.bool_] | None,
    params: AlertingParams,
    state: AlertingState | None = None,
) -> Alerts:
    """The stage on one series' per-point scores (NaN: no opinion, never a candidate)."""
    return _Stage(params, state).feed(scores, flags)


def resume_alerts(
    scores: F64Array,
    flags: npt.NDArray[np.bool_] | None,
    params: AlertingParams,
    state: AlertingState | None,
) -> tuple[Alerts, AlertingState]:
    """``find_alerts`` on a stream's next chunk, from the stage's state after the previous ones
    (None: the stream's first), and its state after this chunk."""
    stage = _Stage(params, state)
    alerts = stage.feed(scores, flags)
    return alerts, stage.state()


def _band_distance(result: DetectResult, values: F64Array) -> F64Array | None:
    """A detector that offered no per-point scores: how far each value is from its band, in
    half-widths of the band on that side (1 = the band's edge), when it gives one."""
    if result.expected is None or result.lower is None or result.upper is None:
        return None
    expected, lower, upper = result.expected, result.lower, result.upper
    with np.errstate(divide="ignore", invalid="ignore"):
        above = (values - expected) / (upper - expected)
        below = (expected - values) / (expected - lower)
    distance = np.where(values >= expected, above, below)
    return np.where(np.isfinite(distance), distance, np.nan)


def apply_alerting(
    algorithm: str,
    result: DetectResult,
    timestamps: I64Array,
    values: F64Array,
    captured: PointScores,
    params: AlertingParams,
    explain: bool,
    state: AlertingState | None = None,
) -> tuple[DetectResult, AlertingState]:
    """``result`` with its detections replaced by the stage's alerts (band kept), and the
    stage's state after it (from ``state``: a stream's stage after its earlier chunks)."""
    scores, flags = captured.scores, captured.flags
    if captured.detections is None or not np.array_equal(captured.detections, result.timestamps):
        # Not offered, or offered by some other call (a helper detector the algorithm ran):
        # the detector's own answer is its band and its detections.
        scores = _band_distance(result, values)
        flags = np.isin(timestamps, result.timestamps)
    if scores is None:
        raise InvalidParams(
            f"{algorithm} gives no per-point scores and no band, which alerting calibrates: "
            "drop params.alerting, or build the result with DetectResult.from_flags/from_mask",
            field="params.alerting",
        )
    alerts, after = resume_alerts(scores, flags, params, state)
    explanations = None
    if explain:  # each explained from its alert on (a peak before it is folded into it)
        peaks = np.maximum(alerts.peaks, alerts.at)
        explanations = Explanation.of_runs(timestamps, alerts.at, alerts.ends, peaks)
    alerted = result._replace(
        timestamps=np.ascontiguousarray(timestamps[alerts.at], dtype=np.int64),
        scores=alerts.calibrated,
        explanations=explanations,
    )
    return alerted, after


def load_alerting_state(fields: dict[str, object]) -> AlertingState | None:
    """A stored stage state, checked (it comes from a request or a bucket like the rest of the
    blob): one that does not fit is refused, never half-used; one of another version is set
    aside (None: the stage starts afresh on this stream)."""
    from pydantic import ValidationError

    from .errors import InvalidInput

    if fields.get("version") != STATE_VERSION:
        return None
    try:
        return AlertingState.model_validate(fields)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "alerting"
        raise InvalidInput(
            f"the state's alerting part is malformed: {where}: {first['msg']}", field="state"
        ) from None
