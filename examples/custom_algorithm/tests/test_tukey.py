"""An author's tests: the SDK's conformance checks (one test id each), then the algorithm's own
behaviour."""

import numpy as np

from warden_algos.interfaces import run_detect, run_detect_next, run_fit
from warden_algos.testing import parametrize_with_checks
from warden_example_tukey.tukey import TukeyFences


@parametrize_with_checks(TukeyFences)
def test_meets_the_warden_algos_contract(algorithm, check) -> None:  # type: ignore[no-untyped-def]
    check(algorithm)


def test_flags_a_spike_and_nothing_else() -> None:
    rng = np.random.default_rng(3)
    values = 20 + rng.normal(0, 1, 300)
    values[200] = 60
    timestamps = 1_700_000_000 + 60 * np.arange(300)
    result = run_detect(TukeyFences(window=48, fence=3.0), timestamps, values)
    assert result.timestamps.tolist() == [timestamps[200]]


def test_an_incident_is_one_detection_unless_every_point() -> None:
    rng = np.random.default_rng(4)
    values = 20 + rng.normal(0, 1, 300)
    values[200:205] += 40
    timestamps = 1_700_000_000 + 60 * np.arange(300)
    once = run_detect(TukeyFences(), timestamps, values)
    every = run_detect(TukeyFences(every_point=True), timestamps, values)
    assert once.timestamps.tolist() == [timestamps[200]]
    assert every.timestamps.tolist() == timestamps[200:205].tolist()


def test_streaming_one_point_at_a_time_finds_what_one_call_finds() -> None:
    """Fit on a day, then score each new point with the state the previous call returned."""
    rng = np.random.default_rng(5)
    values = 20 + rng.normal(0, 1, 600)
    values[[320, 450]] += 30
    values[500:504] -= 25
    timestamps = 1_700_000_000 + 60 * np.arange(600)
    batch = run_detect(TukeyFences(), timestamps, values)
    state = run_fit(TukeyFences(), timestamps[:300], values[:300]).state
    found = []
    for i in range(300, 600):
        result, after = run_detect_next(
            TukeyFences(), timestamps[i : i + 1], values[i : i + 1], state
        )
        state = after.state
        found.extend(result.timestamps.tolist())
    assert found == batch.timestamps[batch.timestamps >= timestamps[300]].tolist()
    assert found == [timestamps[320], timestamps[450], timestamps[500]]
