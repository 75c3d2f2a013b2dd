"""An author's tests: the SDK's contract checks plus the algorithm's own behaviour."""

import numpy as np

from warden_algos.interfaces import run_detect
from warden_algos.testing import check_algorithm
from warden_example_tukey.tukey import TukeyFences


def test_meets_the_warden_algos_contract() -> None:
    check_algorithm(TukeyFences)


def test_flags_a_spike_and_nothing_else() -> None:
    rng = np.random.default_rng(3)
    values = 20 + rng.normal(0, 1, 300)
    values[200] = 60
    timestamps = 1_700_000_000 + 60 * np.arange(300)
    result = run_detect(TukeyFences(window=48, fence=3.0), timestamps, values)
    assert result.timestamps.tolist() == [timestamps[200]]
