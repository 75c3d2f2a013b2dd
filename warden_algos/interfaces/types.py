"""The data types an algorithm author receives and returns.

The records are immutable named tuples (cheap to define: every one-shot run imports them).
Everything numeric is a numpy array: ``int64`` Unix seconds for times, ``float64`` for values, with
NaN meaning "missing". Arrays handed to an algorithm are read-only views of the request, so an
algorithm that wants to modify one must copy it first (``values.copy()``); this keeps one request
from leaking into another and saves a copy on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from .explaining import explanations_wanted
from .point_capture import offer
from .runs import flag_runs, run_highest

I64Array: TypeAlias = npt.NDArray[np.int64]
F64Array: TypeAlias = npt.NDArray[np.float64]


def render_dimensions(dimensions: Mapping[str, str]) -> str:
    """The key of a metric on the wire: ``k1=v1,k2=v2`` sorted by key (see the conventions)."""
    return ",".join(f"{k}={dimensions[k]}" for k in sorted(dimensions))


class TimeSeries(NamedTuple):
    """One metric: its dimensions and aligned arrays.

    ``sizes`` (sample count behind each point) and ``variances`` (of each point's aggregate) are
    optional; when present they have the length of ``times``.
    """

    dimensions: dict[str, str]
    times: I64Array
    values: F64Array
    sizes: I64Array | None = None
    variances: F64Array | None = None

    @property
    def key(self) -> str:
        return render_dimensions(self.dimensions)


class Explanation(NamedTuple):
    """Why one detection fired: a short structured reason a person (or an alert template) can read.

    Every field is optional: the SDK fills what it can from the detection's run and the band
    (``peak`` .. ``band_units``), a detector adds what only it knows (``members`` of an ensemble
    that voted, ``context`` such as a seasonal model's periods and the peak's phase in them), and a
    multivariate detection names its top ``columns`` with their shares. ``band_units`` is how far
    the peak's value is from ``expected``, in units of the band's half-width on that side: 1 is at
    the band's edge, 3 is three times as far; negative below (with no ``expected``, the band's
    middle is the reference). ``reason`` is the same in one sentence.
    """

    #: The run's most anomalous point (its highest score), its last point, and how many it has.
    peak: int | None = None
    last: int | None = None
    points: int | None = None
    #: The value at the peak and the band there (None: not known or no opinion).
    actual: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    band_units: float | None = None
    #: The members of an ensemble that flagged a point of the run.
    members: tuple[str, ...] = ()
    #: What else the detector knew, as sorted ``(name, value)`` pairs (e.g. ``("periods_s",
    #: "86400,604800")``); ``describe`` documents each detector's names.
    context: tuple[tuple[str, str], ...] = ()
    #: Multivariate: the columns that drove it, largest share first (the top ones only).
    columns: tuple[tuple[str, float], ...] = ()
    reason: str = ""

    @classmethod
    def of_runs(
        cls,
        timestamps: I64Array,
        starts: npt.NDArray[np.intp],
        ends: npt.NDArray[np.intp],
        peaks: npt.NDArray[np.intp],
    ) -> tuple[Explanation, ...]:
        """The start of every detection's explanation: where its run peaks and ends."""
        return tuple(
            cls(peak=int(timestamps[peak]), last=int(timestamps[end]), points=int(end - start + 1))
            for start, end, peak in zip(starts, ends, peaks, strict=True)
        )


def cls_of_one(at: int) -> Explanation:
    """The explanation of a detection that is a single point."""
    return Explanation(peak=at, last=at, points=1)


class DetectResult(NamedTuple):
    """What a detect algorithm returns.

    ``timestamps``/``scores``: the anomalous instants (a subset of the input timestamps, increasing)
    and how anomalous each is (higher is more anomalous, finite). ``expected``/``lower``/``upper``:
    optionally, the algorithm's band for *every* input point (NaN where it has no opinion, e.g.
    during warm-up). Use :meth:`from_mask` to build one from per-point arrays.
    ``explanations``: one per detection, only when the caller asked for them (see
    ``interfaces.explaining``); the SDK completes what the detector leaves out.
    """

    timestamps: I64Array
    scores: F64Array
    expected: F64Array | None = None
    lower: F64Array | None = None
    upper: F64Array | None = None
    explanations: tuple[Explanation, ...] | None = None

    @classmethod
    def from_mask(
        cls,
        timestamps: I64Array,
        is_anomaly: npt.NDArray[np.bool_],
        point_scores: F64Array,
        *,
        expected: F64Array | None = None,
        lower: F64Array | None = None,
        upper: F64Array | None = None,
    ) -> DetectResult:
        """Select the flagged points of per-point arrays: the usual way to finish ``detect``."""
        flagged = np.ascontiguousarray(timestamps[is_anomaly], dtype=np.int64)
        offer(timestamps.shape[0], point_scores, is_anomaly, flagged)
        explanations = None
        if explanations_wanted():  # each point its own detection: its own run
            explanations = tuple(cls_of_one(int(at)) for at in flagged)
        return cls(
            timestamps=flagged,
            scores=np.ascontiguousarray(point_scores[is_anomaly], dtype=np.float64),
            expected=expected,
            lower=lower,
            upper=upper,
            explanations=explanations,
        )

    @classmethod
    def from_flags(
        cls,
        timestamps: I64Array,
        is_anomaly: npt.NDArray[np.bool_],
        point_scores: F64Array,
        *,
        every_point: bool = False,
        expected: F64Array | None = None,
        lower: F64Array | None = None,
        upper: F64Array | None = None,
    ) -> DetectResult:
        """One detection per run of consecutive flagged points (at its first point, scored by the
        run's highest score), or every flagged point with ``every_point``."""
        if every_point:
            return cls.from_mask(
                timestamps, is_anomaly, point_scores, expected=expected, lower=lower, upper=upper
            )
        explanations = None
        if explanations_wanted():
            runs = flag_runs(is_anomaly, point_scores)
            starts, highest = runs.starts, np.asarray(point_scores, dtype=np.float64)[runs.peaks]
            explanations = Explanation.of_runs(timestamps, *runs)
        else:
            starts, highest = run_highest(is_anomaly, point_scores)
        detections = np.ascontiguousarray(timestamps[starts], dtype=np.int64)
        offer(timestamps.shape[0], point_scores, is_anomaly, detections)
        return cls(
            timestamps=detections,
            scores=np.ascontiguousarray(highest, dtype=np.float64),
            expected=expected,
            lower=lower,
            upper=upper,
            explanations=explanations,
        )

    @property
    def has_band(self) -> bool:
        return self.expected is not None or self.lower is not None or self.upper is not None

    def without_band(self) -> DetectResult:
        return DetectResult(self.timestamps, self.scores, explanations=self.explanations)


class RCAResult(NamedTuple):
    """Ranked contributions: ``(metric key, score)`` pairs, highest score first, at most ``k``.

    ``simple_rca`` returns a plain ``{key: score}`` mapping; the SDK ranks it with :meth:`rank` so
    every algorithm orders and truncates the same way (ties broken by key, for determinism).
    """

    contributions: tuple[tuple[str, float], ...] = ()

    @classmethod
    def rank(cls, scores: Mapping[str, float], k: int) -> RCAResult:
        ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return cls(contributions=tuple((key, float(score)) for key, score in ordered[:k]))

    def as_dict(self) -> dict[str, float]:
        return dict(self.contributions)
