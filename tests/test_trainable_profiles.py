"""The profile detectors trained and streamed: ``seasonal`` (per-phase profiles, periods frozen at
fit) and ``novelty`` (pattern memory). Fitting on a prefix and streaming the rest in chunks gives
the detections of one batch call over the whole series (for seasonal: given the same periods),
the state stays the same size however long the history, and it works over the wire."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.novelty import Novelty
from warden_algos.algorithms.seasonal import Seasonal, detect_periods
from warden_algos.interfaces import InvalidInput, run_detect
from warden_algos.interfaces.run_state import load_state, run_detect_next, run_fit

from .conftest import cli
from .streaming_equivalence import assert_streams_like_batch, stream

START = 1_700_006_400  # a midnight (UTC)
DAY = 86_400


def daily(days: int, step: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A daily cycle with noise, spikes and dips, a level shift two thirds in, missing values."""
    n = days * DAY // step
    rng = np.random.default_rng(seed)
    times = START + step * np.arange(n, dtype=np.int64)
    phase = 2 * np.pi * ((times - START) % DAY) / DAY
    values = 10 - 8 * np.cos(phase) + rng.normal(0, 0.3, n)
    spikes = rng.choice(np.arange(n // 3, n), 12, replace=False)
    values[spikes] += rng.choice([-1, 1], 12) * rng.uniform(3, 8, 12)
    values[2 * n // 3 :] += 6
    values[rng.random(n) < 0.03] = np.nan
    values[n // 2 : n // 2 + n // 50] = np.nan  # an outage
    return times, values


def irregular(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Jittered 5-minute sampling (points a second apart share a grid slot), a three-day gap
    (the profile after it reaches back across it) and a two-hour one."""
    rng = np.random.default_rng(seed)
    times = START + np.cumsum(rng.choice([1, 30, 150, 300, 300, 300, 450], n)).astype(np.int64)
    times[n // 2 :] += 3 * DAY
    times[3 * n // 4 :] += 2 * 3600
    phase = 2 * np.pi * ((times - START) % DAY) / DAY
    values = 10 - 8 * np.cos(phase) + rng.normal(0, 0.3, n)
    values[rng.choice(n, 15, replace=False)] += 6
    values[rng.random(n) < 0.05] = np.nan
    return times, values


def levels_and_transitions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy square wave, then new levels, a faster rhythm, a spike and missing values."""
    rng = np.random.default_rng(seed)
    values = np.where((np.arange(n) // 50) % 2 == 0, 0.0, 10.0) + rng.normal(0, 0.3, n)
    values[n // 2 : n // 2 + 100] = np.where(np.arange(100) % 2 == 0, 0.0, 10.0)  # new rhythm
    values[2 * n // 3 :] += 25  # a new level, learnt after a while
    values[3 * n // 4] = 200
    values[rng.random(n) < 0.04] = np.nan
    return START + 300 * np.arange(n, dtype=np.int64), values


def state_of(algorithm: Any, times: np.ndarray, values: np.ndarray) -> Any:
    return load_state(algorithm, run_fit(algorithm, times, values).state).typed


# seasonal -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "days", "params"),
    [
        (300, 12, {"periods": [DAY]}),
        (300, 12, {"periods": [DAY], "every_point": True}),
        (300, 12, {"periods": [6 * 3600, DAY], "phase_tolerance": 2, "min_scale": 0.2}),
        (60, 5, {"periods": [DAY], "window": 100, "cooldown": 0}),
    ],
)
def test_seasonal_with_given_periods_streams_the_batch_detections(
    step: int, days: int, params: dict[str, Any]
) -> None:
    times, values = daily(days, step)
    prefix = 3 * DAY // step  # three cycles: the periods are decided at fit
    algorithm = Seasonal(params)
    assert state_of(algorithm, times[:prefix], values[:prefix]).decided
    assert run_detect(algorithm, times[prefix:], values[prefix:]).timestamps.size
    assert_streams_like_batch(algorithm, times, values, prefix)


def test_seasonal_fits_the_periods_the_batch_finds_and_streams_its_detections_with_them() -> None:
    times, values = daily(10, 300, seed=3)
    prefix = 4 * DAY // 300
    state = state_of(Seasonal(), times[:prefix], values[:prefix])
    assert state.periods == detect_periods(times[:prefix], values[:prefix]) == [DAY]
    streamed, _ = stream(Seasonal(), times, values, prefix, 10)
    batch = run_detect(Seasonal(periods=state.periods), times, values).timestamps
    np.testing.assert_array_equal(streamed.timestamps, batch[batch >= times[prefix]])


def test_seasonal_places_irregular_points_and_gaps_on_the_batch_grid() -> None:
    times, values = irregular(3000)
    assert_streams_like_batch(Seasonal(periods=[DAY]), times, values, prefix=1200)
    assert_streams_like_batch(Seasonal(periods=[DAY], phase_tolerance=1), times, values, 1200, (7,))


def test_seasonal_fitted_on_nothing_decides_once_it_has_two_cycles() -> None:
    times, values = daily(5, 300, seed=1)
    algorithm = Seasonal(periods=[DAY])
    assert not state_of(algorithm, times[:0], values[:0]).decided
    streamed, _ = stream(algorithm, times, values, prefix=0, chunk=25)
    decided_at = times[0] + 2 * DAY  # the chunk that completes two cycles decides
    batch = run_detect(algorithm, times, values).timestamps
    after = streamed.timestamps[streamed.timestamps >= decided_at + 25 * 300]
    np.testing.assert_array_equal(after, batch[batch >= decided_at + 25 * 300])
    assert after.size
    assert state_of(algorithm, times[:700], values[:700]).decided


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    period_steps=st.integers(4, 24),
    cycles_seen=st.integers(2, 6),
    more=st.integers(1, 200),
    cycles=st.integers(1, 3),
    tolerance=st.integers(0, 2),
    window=st.integers(10, 40),
    every_point=st.booleans(),
    chunk=st.integers(1, 40),
)
def test_seasonal_with_given_periods_streams_like_batch_on_random_series(
    seed: int,
    period_steps: int,
    cycles_seen: int,
    more: int,
    cycles: int,
    tolerance: int,
    window: int,
    every_point: bool,
    chunk: int,
) -> None:
    rng = np.random.default_rng(seed)
    longest = 60 * cycles_seen * period_steps + more  # steps of 1 s or more: enough points
    times = START + np.cumsum(rng.choice([1, 59, 60, 60, 61, 200], longest)).astype(np.int64)
    seen = times[0] + 60 * cycles_seen * period_steps  # at least two cycles: decided at fit
    prefix = max(int(np.searchsorted(times, seen)) + 1, 8)  # and 8 valid values
    n = prefix + more
    times = times[:n]
    phase = 2 * np.pi * (times - START) / (60 * period_steps)
    values = np.sin(phase) * rng.uniform(0.5, 50) + rng.standard_t(3, n)
    values[8:][rng.random(n - 8) < 0.1] = np.nan  # the first 8 valid: two cycles decide
    algorithm = Seasonal(
        periods=[60 * period_steps],
        cycles=cycles,
        phase_tolerance=tolerance,
        window=window,
        k=2.5,
        cooldown=int(rng.integers(0, 600)),
        every_point=every_point,
    )
    assert state_of(algorithm, times[:prefix], values[:prefix]).decided
    assert_streams_like_batch(algorithm, times, values, prefix, chunks=(chunk,))


def test_seasonal_state_is_the_same_size_after_a_long_and_a_short_history() -> None:
    n = 288 * 120
    times = START + 300 * np.arange(3 * n, dtype=np.int64)
    cycle = 10 - 8 * np.cos(2 * np.pi * np.arange(3 * n) / 288)
    values = cycle + np.random.default_rng(0).normal(0, 0.3, 3 * n)
    algorithm = Seasonal()
    assert state_of(algorithm, times[:n], values[:n]).periods == [DAY]
    sizes = [len(run_fit(algorithm, times[:m], values[:m]).state) for m in (n, 3 * n)]
    assert sizes[0] == sizes[1] < 16_000  # three days of 5-minute slots, two windows


def test_seasonal_refuses_points_beyond_what_its_frozen_grid_can_place() -> None:
    times = START + np.arange(600, dtype=np.int64)  # one-second points: one-second slots
    values = np.sin(np.arange(600) / 10)
    algorithm = Seasonal(periods=[60])
    state = run_fit(algorithm, times, values).state
    far = np.array([2**63 - 1], dtype=np.int64)  # 9.2e18 slots on: past what int64 can hold
    with pytest.raises(InvalidInput, match="too far from the fitted history"):
        run_detect_next(algorithm, far, np.array([1.0]), state)
    later = times[-1:] + 10**12
    assert run_detect_next(algorithm, later, np.array([1.0]), state)[1] is not None


# novelty ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{}, {"every_point": True}, {"memory": 300, "pattern_length": 3, "refractory": 0}],
)
def test_novelty_streamed_in_chunks_detects_as_one_batch_call(params: dict[str, Any]) -> None:
    times, values = levels_and_transitions(2500)
    algorithm = Novelty(params)
    assert run_detect(algorithm, times[700:], values[700:]).timestamps.size
    assert_streams_like_batch(algorithm, times, values, prefix=700)


def test_novelty_streams_from_nothing_fitted_across_every_range_re_estimate() -> None:
    times, values = levels_and_transitions(1100, seed=2)
    algorithm = Novelty(min_history=8, memory=200)  # re-estimates at 8, 16, ..., 1024 values
    assert_streams_like_batch(algorithm, times, values, prefix=0, chunks=(1, 37))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 400),
    prefix_share=st.floats(0, 1),
    chunk=st.integers(1, 60),
    pattern_length=st.integers(1, 3),
    scales=st.integers(1, 4),
    memory=st.integers(1, 150),
    min_history=st.integers(2, 40),
    refractory=st.integers(0, 5),
    every_point=st.booleans(),
)
def test_novelty_streams_like_batch_on_random_series(
    seed: int,
    n: int,
    prefix_share: float,
    chunk: int,
    pattern_length: int,
    scales: int,
    memory: int,
    min_history: int,
    refractory: int,
    every_point: bool,
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, n) * rng.uniform(0.1, 1e3) + rng.normal(0, rng.uniform(0, 2), n)
    values[rng.random(n) < 0.1] = np.nan
    times = START + np.cumsum(rng.integers(1, 600, n)).astype(np.int64)
    algorithm = Novelty(
        pattern_length=pattern_length,
        scales=scales,
        memory=memory,
        min_history=min_history,
        refractory=refractory,
        every_point=every_point,
    )
    assert_streams_like_batch(algorithm, times, values, int(prefix_share * n), chunks=(chunk,))


def test_novelty_state_is_the_same_size_after_a_long_and_a_short_history() -> None:
    n = 20_000
    times = START + 300 * np.arange(3 * n, dtype=np.int64)
    cycle = 50 + 20 * np.sin(2 * np.pi * np.arange(288) / 288)
    values = np.tile(cycle + np.random.default_rng(0).normal(0, 1, 288), 3 * n // 288 + 1)
    sizes = [len(run_fit(Novelty(), times[:m], values[:m]).state) for m in (n, 3 * n)]
    assert sizes[0] == sizes[1] < 40_000  # 288 distinct runs of values and their patterns


def test_novelty_forgets_patterns_older_than_its_memory() -> None:
    times, values = levels_and_transitions(3000)
    state = state_of(Novelty(memory=100), times, values)
    assert state.recent_stretches[:, 1].sum() <= 100  # runs of values kept for a re-estimate
    assert state.pattern_last.min() >= 3000 - 100 - np.isnan(values).sum()


# over the wire ------------------------------------------------------------------------------


def _json(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


@pytest.mark.parametrize(
    ("name", "params", "series"),
    [
        ("seasonal", {"periods": [DAY]}, daily(4, 300)),
        ("novelty", {}, levels_and_transitions(1500)),
    ],
)
def test_fit_then_detect_with_the_state_through_run(
    name: str, params: dict[str, Any], series: tuple[np.ndarray, np.ndarray]
) -> None:
    times, values = series
    prefix = 3 * len(times) // 4
    history = {"timestamps": times[:prefix].tolist(), "values": _json(values[:prefix])}
    fit = {"interface": "fit", "algorithm": name, "params": params, "fit": history}
    fitted = orjson.loads(cli("run", "--log-level", "error", stdin=orjson.dumps(fit)).stdout)
    assert fitted["status"] == "ok", fitted
    algorithm = Seasonal(params) if name == "seasonal" else Novelty(params)
    state = base64.b64decode(fitted["fit"]["state"])
    assert state == run_fit(algorithm, times[:prefix], values[:prefix]).state
    detect = {"interface": "detect", "algorithm": name, "params": params,
              "detect": {"timestamps": times[prefix:].tolist(), "values": _json(values[prefix:]),
                         "state": fitted["fit"]["state"], "return_state": True}}  # fmt: skip
    answer = orjson.loads(cli("run", "--log-level", "error", stdin=orjson.dumps(detect)).stdout)
    assert answer["status"] == "ok", answer
    expected, after = run_detect_next(algorithm, times[prefix:], values[prefix:], state)
    assert answer["detect"]["timestamps"] == expected.timestamps.tolist()
    assert after is not None and base64.b64decode(answer["detect"]["state"]) == after.state
    batch = run_detect(algorithm, times, values).timestamps
    assert answer["detect"]["timestamps"] == batch[batch >= times[prefix]].tolist()
