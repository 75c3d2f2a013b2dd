"""ensemble: composes registered detectors by name, with weights, votes and a tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from warden_algos.algorithms.ensemble import Ensemble
from warden_algos.algorithms.ksigma import KSigma
from warden_algos.interfaces.errors import InvalidParams

N = 600
TIMES = 1_700_000_000 + 60 * np.arange(N, dtype=np.int64)


def _series() -> np.ndarray:
    values = 100 + np.random.default_rng(3).normal(0, 1, N)
    values[400] += 30.0  # every z-score sees this one
    values[550] += 6.0  # only a sensitive member flags this one
    return values


SENSITIVE = {"algorithm": "ksigma", "params": {"window": 100, "k": 4.0}}
STRICT = {"algorithm": "ksigma", "params": {"window": 100, "k": 8.0}}


def test_a_single_member_ensemble_equals_the_member() -> None:
    values = _series()
    alone = KSigma(window=100, k=4.0).detect([], TIMES, values)
    wrapped = Ensemble(members=[SENSITIVE], tolerance=0).detect([], TIMES, values)
    assert wrapped.timestamps.tolist() == alone.timestamps.tolist()
    assert wrapped.lower is not None and alone.lower is not None
    np.testing.assert_array_equal(wrapped.lower, alone.lower)  # the band is the member's


def test_threshold_moves_between_union_and_intersection() -> None:
    values = _series()
    union = Ensemble(members=[SENSITIVE, STRICT], threshold=0.5).detect([], TIMES, values)
    both = Ensemble(members=[SENSITIVE, STRICT], threshold=1.0).detect([], TIMES, values)
    assert TIMES[550] in union.timestamps and TIMES[400] in union.timestamps
    assert TIMES[550] not in both.timestamps and TIMES[400] in both.timestamps
    assert set(both.timestamps.tolist()) <= set(union.timestamps.tolist())


def test_weights_decide_the_vote() -> None:
    values = _series()
    heavy_sensitive = [SENSITIVE | {"weight": 3.0}, STRICT]
    result = Ensemble(members=heavy_sensitive, threshold=0.7).detect([], TIMES, values)
    assert TIMES[550] in result.timestamps  # 3 of 4 votes


def test_tolerance_lets_members_agree_a_few_points_apart() -> None:
    values = _series()
    lagged = {"algorithm": "ksigma", "params": {"window": 100, "k": 4.0}}
    shifted = values.copy()
    members = [lagged, {"algorithm": "mad", "params": {"window": 100}}]
    tight = Ensemble(members=members, threshold=1.0, tolerance=0).detect([], TIMES, shifted)
    loose = Ensemble(members=members, threshold=1.0, tolerance=5).detect([], TIMES, shifted)
    assert loose.timestamps.size >= tight.timestamps.size >= 1


def test_default_members_run_and_find_a_spike() -> None:
    values = 10 + np.sin(np.arange(3000) * 2 * np.pi / 288)
    values[2500] += 5
    times = 1_700_000_000 + 300 * np.arange(3000, dtype=np.int64)
    result = Ensemble().detect([], times, values)
    assert times[2500] in result.timestamps


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"members": [{"algorithm": "nope"}]}, "no algorithm named 'nope'"),
        ({"members": [{"algorithm": "ensemble"}]}, "cannot contain an ensemble"),
        ({"members": [{"algorithm": "correlation"}]}, "not a detector"),
        ({"members": [{"algorithm": "ksigma", "params": {"k": -1}}]}, "members[0] (ksigma)"),
        ({"members": [{"algorithm": "ksigma", "weight": 0}]}, "weight"),
        ({"members": []}, "members"),
        ({"threshold": 0}, "threshold"),
    ],
)
def test_bad_members_are_refused_with_the_member_named(
    params: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParams) as caught:
        Ensemble.from_params(params)
    assert message in str(caught.value)


def test_members_vote_with_incidents_by_default_or_with_points() -> None:
    values = 100 + np.random.default_rng(4).normal(0, 1, N)
    values[450:462] += 40.0  # one incident of twelve points
    member = {"algorithm": "ksigma", "params": {"window": 100, "k": 6.0}}
    incidents = Ensemble(members=[member], tolerance=0, every_point=True)
    points = Ensemble(members=[member], tolerance=0, every_point=True, member_reports="points")
    by_incident = incidents.detect([], TIMES, values).timestamps
    by_point = points.detect([], TIMES, values).timestamps
    assert TIMES[450] in by_incident and TIMES[450] in by_point
    assert by_point.size > by_incident.size
    assert set(by_incident.tolist()) <= set(by_point.tolist())
