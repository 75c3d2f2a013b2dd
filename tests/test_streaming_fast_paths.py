"""The one-point paths a streamed call takes (``ksigma._score_of_last``, ``Ewma._next_point``)
against the general chunk paths they shortcut, on random windows and states, odd ones included
(flat, gappy, huge, a crafted state whose sums divide by zero): the same answers, never an
exception where the general path gives NaN or inf."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.ewma import Ewma, EwmaState, _checked
from warden_algos.algorithms.ksigma import KSigma
from warden_algos.interfaces.run_state import run_fit

T0 = 1_700_000_000


def same(a: np.ndarray, b: np.ndarray, rtol: float = 0.0) -> None:
    """Equal where finite (to ``rtol``), NaN and inf in the same places."""
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b)), (a, b)
    assert np.array_equal(np.isinf(a), np.isinf(b)), (a, b)
    finite = np.isfinite(a)
    np.testing.assert_allclose(a[finite], b[finite], rtol=rtol, atol=0.0)


def window_values(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    values = rng.standard_t(3, n) * rng.uniform(0.1, 100) + rng.uniform(-1e3, 1e3)
    if kind == "flat":
        values[:] = 7.0
        values[-1] = rng.choice([7.0, 7.5])
    elif kind == "huge":
        values *= 1e298
    elif kind == "gappy":
        values[rng.random(n) < 0.4] = np.nan
    return values


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 120),
    window=st.integers(2, 60),
    kind=st.sampled_from(["plain", "flat", "huge", "gappy"]),
    level=st.sampled_from([None, 0.0, 50.0, float("nan")]),
    min_std=st.sampled_from([0.0, 0.5]),
)
def test_ksigma_scores_one_point_as_its_chunk_path_does(
    seed: int, n: int, window: int, kind: str, level: float | None, min_std: float
) -> None:
    rng = np.random.default_rng(seed)
    values = window_values(rng, n, kind)
    algorithm = KSigma(window=window, min_periods=min(window, 5), min_std=min_std)
    one = algorithm._score_of_last(values, level)
    chunk = algorithm._scores_of_last(values, 1, level)
    for mine, theirs in zip(one[1:], chunk[1:], strict=True):  # z and the band
        same(mine, theirs, rtol=1e-12)
    z = chunk.z[0]
    if not np.isfinite(z) or abs(z - algorithm.params.k) > 1e-9 * max(1.0, abs(z)):
        assert one.is_anomaly[0] == chunk.is_anomaly[0]


def ewma_state(seed: int, n: int, params: dict[str, Any]) -> EwmaState:
    rng = np.random.default_rng(seed)
    values = rng.standard_t(3, n) * rng.uniform(0.1, 100) + rng.uniform(-1e4, 1e4)
    values[rng.random(n) < 0.1] = np.nan
    times = T0 + 60 * np.arange(n, dtype=np.int64)
    state = run_fit(Ewma(params), times, values).typed
    assert isinstance(state, EwmaState)
    return state


def assert_same_step(algorithm: Ewma, state: EwmaState, value: float) -> None:
    times = np.array([T0 + 10**8], dtype=np.int64)
    values = np.array([value])
    scale, centre = float(state.scale[0]), float(state.centre[0])
    result, after = algorithm._next_point(times, value, state, scale, centre)
    general, general_after = algorithm._next_chunk(times, values, state, _checked(state))
    for name in ("timestamps", "scores", "expected", "lower", "upper"):
        same(getattr(result, name), getattr(general, name))
    for name in EwmaState.model_fields:
        mine, theirs = getattr(after, name), getattr(general_after, name)
        if isinstance(mine, np.ndarray):
            same(mine, theirs)
            assert mine.dtype == theirs.dtype
        else:
            assert mine == theirs, name


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(3, 300),
    alpha=st.floats(0.01, 1.0),
    variance_alpha=st.floats(0.01, 1.0),
    min_periods=st.integers(2, 40),
    jump=st.sampled_from([0.0, 3.0, 1e3, -1e6]),
    every_point=st.booleans(),
)
def test_ewma_steps_one_point_as_its_chunk_path_does_to_the_bit(
    seed: int,
    n: int,
    alpha: float,
    variance_alpha: float,
    min_periods: int,
    jump: float,
    every_point: bool,
) -> None:
    params = {"alpha": alpha, "variance_alpha": variance_alpha, "min_periods": min_periods,
              "every_point": every_point}  # fmt: skip
    state = ewma_state(seed, n, params)
    assume(state.count >= 2)  # the one-point path needs two valid points seen
    algorithm = Ewma(params)
    value = float(np.random.default_rng(seed).normal(0, 10)) + jump
    assert_same_step(algorithm, state, value)


@pytest.mark.parametrize(
    "sums",
    [
        {"mean_sums": np.array([3.0, 0.0])},  # zero weight: the mean divides by zero
        {"variance_sums": np.array([-4.0, 1.0])},  # negative variance: sqrt of < 0
        {"variance_sums": np.array([0.0, 0.0])},  # 0 / 0
        {"mean_sums": np.array([1e308, 1e-308])},  # overflow
    ],
)
def test_a_crafted_states_odd_sums_give_what_the_chunk_path_gives(sums: dict[str, Any]) -> None:
    state = ewma_state(1, 200, {}).model_copy(update=sums)
    assert_same_step(Ewma(), state, 12.5)


def test_huge_values_step_as_the_chunk_path_does() -> None:
    params = {"alpha": 0.1}
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, 500) * 1e200
    state = run_fit(Ewma(params), T0 + 60 * np.arange(500, dtype=np.int64), values).typed
    assert isinstance(state, EwmaState) and float(state.scale[0]) != 1.0
    assert_same_step(Ewma(params), state, 3e200)
