"""An author's tests: the SDK's conformance checks (one test id each), then the algorithm's own
behaviour."""

import numpy as np

from warden_algos.interfaces import run_detect
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
