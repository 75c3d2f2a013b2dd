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


class DetectResult(NamedTuple):
    """What a detect algorithm returns.

    ``timestamps``/``scores``: the anomalous instants (a subset of the input timestamps, increasing)
    and how anomalous each is (higher is more anomalous, finite). ``expected``/``lower``/``upper``:
    optionally, the algorithm's band for *every* input point (NaN where it has no opinion, e.g.
    during warm-up). Use :meth:`from_mask` to build one from per-point arrays.
    """

    timestamps: I64Array
    scores: F64Array
    expected: F64Array | None = None
    lower: F64Array | None = None
    upper: F64Array | None = None

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
        return cls(
            timestamps=np.ascontiguousarray(timestamps[is_anomaly], dtype=np.int64),
            scores=np.ascontiguousarray(point_scores[is_anomaly], dtype=np.float64),
            expected=expected,
            lower=lower,
            upper=upper,
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
        flagged = np.flatnonzero(is_anomaly)
        if flagged.size == 0:
            starts = flagged
            scores = np.empty(0, dtype=np.float64)
        else:
            first_of_run = np.empty(flagged.size, dtype=bool)
            first_of_run[0] = True
            np.not_equal(flagged[1:], flagged[:-1] + 1, out=first_of_run[1:])
            run_index = np.flatnonzero(first_of_run)
            starts = flagged[run_index]
            scores = np.fmax.reduceat(
                np.asarray(point_scores, dtype=np.float64)[flagged], run_index
            )
        return cls(
            timestamps=np.ascontiguousarray(timestamps[starts], dtype=np.int64),
            scores=np.ascontiguousarray(scores, dtype=np.float64),
            expected=expected,
            lower=lower,
            upper=upper,
        )

    @property
    def has_band(self) -> bool:
        return self.expected is not None or self.lower is not None or self.upper is not None

    def without_band(self) -> DetectResult:
        return DetectResult(timestamps=self.timestamps, scores=self.scores)


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
