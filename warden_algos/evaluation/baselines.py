"""Reference baselines that run beside any evaluated algorithm, so a score always has context.

They are ordinary detectors (the same contract as an author's), kept out of the registry because
nobody should deploy them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.interfaces import (
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
)


class NullParams(DetectorParams):
    pass


class NullDetector(DetectAlgorithm[NullParams]):
    """Never fires: scores exactly 0 on the NAB scale, by construction."""

    name = "null"
    summary = "Never fires (NAB score 0 by definition)."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        empty = np.empty(0)
        return DetectResult(np.empty(0, dtype=np.int64), empty)


class RandomParams(DetectorParams):
    rate: float = Field(0.002, gt=0, le=1, description="Probability that a point is flagged.")
    seed: int = Field(0, ge=0, description="Base seed; mixed with the series' length and start.")


class RandomDetector(DetectAlgorithm[RandomParams]):
    """Flags points at random at a fixed rate: what a score means when it carries no information.

    Seeded from ``seed``, the series' length and its first timestamp, so a run is reproducible and
    every series gets its own stream.
    """

    name = "random"
    summary = "Flags random points at a fixed rate (seeded)."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        n = values.shape[0]
        start = int(timestamps[0]) if n else 0
        rng = np.random.default_rng([self.params.seed, n, start & 0xFFFFFFFF])
        flagged: npt.NDArray[np.bool_] = np.less(rng.random(n), self.params.rate)
        return DetectResult.from_flags(
            timestamps, flagged, np.ones(n), every_point=self.params.every_point
        )


class WindowedGaussianParams(DetectorParams):
    window: int = Field(6400, ge=2, description="Trailing points (NAB's baseline uses 6400).")
    k: float = Field(7.0, gt=0, description="Flag points further than k standard deviations.")


class WindowedGaussian(DetectAlgorithm[WindowedGaussianParams]):
    """NAB's windowed-Gaussian baseline: a z-score against a long trailing window. ``k`` was
    chosen once on the NAB development set, as NAB tunes its threshold (window 6400 as upstream,
    k over 4..10; best 7: 37.8 standard)."""

    name = "windowed_gaussian"
    summary = "z-score against a long trailing window (NAB's reference baseline)."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        inner = KSigma(
            window=p.window, k=p.k, min_periods=min(p.window, 100), every_point=p.every_point
        )
        return inner.detect(dimensions, timestamps, values)


BASELINES: dict[str, type[DetectAlgorithm[Any]]] = {
    "null": NullDetector,
    "random": RandomDetector,
    "windowed_gaussian": WindowedGaussian,
}
