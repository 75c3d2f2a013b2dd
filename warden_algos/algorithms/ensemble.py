"""Ensemble: a weighted vote of other registered detectors, referenced by name."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from warden_algos.interfaces import (
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
    explanations_wanted,
    point_capture,
)
from warden_algos.interfaces.budget import InputShape, WorkEstimate


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: str = Field(description="Registered name of a detect algorithm.")
    params: dict[str, Any] = Field(
        default={}, description="That algorithm's parameters, as --params takes them."
    )
    weight: float = Field(1.0, gt=0, le=1e6, description="Votes this member casts.")


#: Pattern novelty OR a seasonal residual: each sees what the other misses (novelty: behaviour
#: never seen before, blind to a familiar value at an unusual hour; seasonal: departures from the
#: usual value for this time of day/week). With two equal weights and threshold 0.5 either
#: member's incident is enough.
DEFAULT_MEMBERS = (
    Member(algorithm="novelty", params={}),
    Member(algorithm="seasonal", params={}),
)


class EnsembleParams(DetectorParams):
    members: tuple[Member, ...] = Field(
        DEFAULT_MEMBERS,
        min_length=1,
        max_length=16,
        description="The detectors to combine: name, params and weight of each.",
    )
    threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Flag a point when the members flagging it hold at least this fraction of "
        "the total weight (a small value makes a union, 1 an intersection).",
    )
    member_reports: Literal["incidents", "points"] = Field(
        "incidents",
        description="What each member votes with: the start of each incident it reports (its "
        "own grouping and cool-down apply, so one noisy member cannot flood a union) or every "
        "point it flags.",
    )
    tolerance: int = Field(
        3,
        ge=0,
        le=10_000,
        description="A member's flag also counts for this many following points, so detectors "
        "that see the same incident a few points apart still agree.",
    )

    @model_validator(mode="after")
    def _members_exist(self) -> EnsembleParams:
        for index, member in enumerate(self.members):
            if member.algorithm == "ensemble":
                raise ValueError(f"members[{index}]: an ensemble cannot contain an ensemble")
            try:
                cls = _detector_class(member.algorithm)
            except Exception as error:  # unknown name, RCA algorithm: name the member
                raise ValueError(f"members[{index}]: {error}") from None
            try:
                cls.validate_params({**member.params, "every_point": True})
            except Exception as error:  # InvalidParams: name the member
                raise ValueError(f"members[{index}] ({member.algorithm}): {error}") from None
        return self


def _detector_class(name: str) -> type[DetectAlgorithm[Any]]:
    from warden_algos.registry import Registry, is_detect

    loaded = Registry.discover().load(name)
    if not is_detect(loaded):
        raise ValueError(f"{name!r} is an {loaded.interface} algorithm, not a detector")
    return loaded  # type: ignore[return-value]


class Ensemble(DetectAlgorithm[EnsembleParams]):
    """Runs several registered detectors on the same series and flags the points enough of them
    agree on: each member votes its weight for every point it flags (and for the ``tolerance``
    points after it), and a point is flagged when the votes reach ``threshold`` of the total. By
    default a member votes with the incidents it reports (its own grouping applies), or with every
    flagged point (``member_reports="points"``). The score is the vote share; the band is the
    first member's that has one. The default, ``novelty`` OR ``seasonal``, pairs two detectors
    with complementary blind spots and scores 68.7 on the NAB development set.

    Use it to compose algorithms without copying them: require agreement between detectors with
    different blind spots (a z-score and a seasonal model) to cut false alarms, or take their
    union (a low threshold) to miss less. The members are ordinary registered detectors, so an
    author's own plugin can be a member. Missing values are handled by each member.
    """

    name = "ensemble"
    summary = "Weighted vote of other registered detectors, named in its params."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        n = values.shape[0]
        votes = np.zeros(n)
        band: tuple[F64Array | None, F64Array | None, F64Array | None] | None = None
        voted: list[npt.NDArray[np.bool_]] = []  # per member, its votes: for explanations
        # The alerting stage wants per-point scores: its members', calibrated.
        calibrating = p.alerting is not None and point_capture.active() is not None
        members_scores: list[F64Array] = []
        for member in p.members:
            cls = _detector_class(member.algorithm)
            every_point = p.member_reports == "points"
            detector = cls.from_params({**member.params, "every_point": every_point})
            if not calibrating:
                result = detector.detect(dimensions, timestamps, values)
            else:
                with point_capture.capturing() as own:
                    result = detector.detect(dimensions, timestamps, values)
                members_scores.append(own.scores if own.scores is not None else np.full(n, np.nan))
            flagged = np.zeros(n + 1, dtype=np.int64)
            positions = np.searchsorted(timestamps, result.timestamps)
            np.add.at(flagged, positions, 1)
            np.add.at(flagged, np.minimum(positions + p.tolerance + 1, n), -1)
            member_votes = np.cumsum(flagged[:n]) > 0
            votes += member.weight * member_votes
            if explanations_wanted():
                voted.append(member_votes)
            if band is None and result.has_band:
                band = (result.expected, result.lower, result.upper)
        share = votes / sum(member.weight for member in p.members)
        is_anomaly = share >= p.threshold - 1e-12
        expected, lower, upper = band if band is not None else (None, None, None)
        result = DetectResult.from_flags(
            timestamps,
            is_anomaly,
            share,
            every_point=p.every_point,
            expected=expected,
            lower=lower,
            upper=upper,
        )
        if calibrating:
            combined = self._calibrated(members_scores)
            point_capture.offer(n, combined, is_anomaly, result.timestamps)
        return self._with_members(result, timestamps, voted) if voted else result

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """Its members' work, plus their calibration when the alerting stage is on."""
        total = WorkEstimate(shape.points * 16, shape.points * 20)
        for member in self.params.members:
            cls = _detector_class(member.algorithm)
            own = cls.from_params({**member.params}).estimate(shape)
            if self.params.alerting is not None:
                from warden_algos.interfaces.alerting import with_stage

                own = with_stage(own, shape.points, self.params.alerting)
            total = WorkEstimate(
                max(total.peak_bytes, own.peak_bytes), total.operations + own.operations
            )
        return total

    def _calibrated(self, members_scores: list[F64Array]) -> F64Array:
        """What the alerting stage calibrates for an ensemble: not its vote share (a few levels,
        no tail to speak of) but its members' scores, each put on the one scale (its tail
        probability under its own recent history) and combined by the most surprised member:
        -log10 of the smallest probability, with the request's window and history. A member that
        gave no per-point scores has none."""
        from warden_algos.interfaces.alerting import tail_probabilities

        alerting = self.params.alerting
        assert alerting is not None
        smallest = np.ones(members_scores[0].shape[0])
        for scores in members_scores:
            probabilities = tail_probabilities(scores, alerting.window, alerting.min_history)
            np.minimum(smallest, probabilities, out=smallest)
        return np.asarray(-np.log10(smallest), dtype=np.float64)

    def _with_members(
        self, result: DetectResult, timestamps: I64Array, voted: list[npt.NDArray[np.bool_]]
    ) -> DetectResult:
        """Each detection's explanation names the members that voted for a point of its run
        (``members[i]:algorithm`` when an algorithm is a member twice)."""
        names = [member.algorithm for member in self.params.members]
        labels = [
            f"members[{index}]:{name}" if names.count(name) > 1 else name
            for index, name in enumerate(names)
        ]
        explained = []
        for at, one in zip(result.timestamps, result.explanations or (), strict=True):
            first = int(np.searchsorted(timestamps, at))
            last = int(np.searchsorted(timestamps, at if one.last is None else one.last)) + 1
            members = tuple(
                label for label, votes in zip(labels, voted, strict=True) if votes[first:last].any()
            )
            explained.append(one._replace(members=members))
        return result._replace(explanations=tuple(explained))
