"""The novelty detector: flags never-seen levels and transitions, once per incident."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.novelty import Novelty, novelty_scores
from warden_algos.interfaces.errors import InvalidParams

STEP = 300


def _times(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * STEP + 1_700_000_000


def _daily(n: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 20 * np.sin(2 * np.pi * t / 288) + noise * rng.standard_normal(n)


def _detected_rows(result_timestamps: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(_times(n), result_timestamps)


def test_spike_is_detected_at_its_point() -> None:
    values = _daily(3000, noise=1.0)
    values[2000] += 60.0
    result = Novelty().detect([], _times(3000), values)
    rows = _detected_rows(result.timestamps, 3000)
    assert 2000 in rows
    # the first cycles are being learnt; afterwards, the spike and hardly anything else
    assert np.count_nonzero(rows > 600) <= 2


def test_level_shift_is_detected_when_it_starts_and_only_once() -> None:
    values = _daily(4000, noise=1.0)
    values[2500:] += 50.0
    result = Novelty().detect([], _times(4000), values)
    rows = _detected_rows(result.timestamps, 4000)
    assert 2500 in rows  # at the start of the incident
    # the shifted cycle keeps reaching new levels for one period, then it is familiar
    assert np.count_nonzero((rows > 2500) & (rows < 2500 + 288)) <= 2
    assert not np.any(rows >= 2500 + 288)
    assert np.count_nonzero((rows > 600) & (rows < 2500)) <= 1


def test_pattern_change_without_new_levels_is_detected() -> None:
    # A square wave that switches between 0 and 10 every 50 points, then starts jumping every
    # point: both levels are familiar, the rapid transitions within the new rhythm are not.
    n = 3000
    values = np.where((np.arange(n) // 50) % 2 == 0, 0.0, 10.0)
    values[2000:2100] = np.where(np.arange(100) % 2 == 0, 0.0, 10.0) + 3.0
    result = Novelty().detect([], _times(n), values)
    rows = _detected_rows(result.timestamps, n)
    assert np.any((rows >= 2000) & (rows < 2005))
    assert not np.any((rows > 100) & (rows < 2000))


def test_clean_periodic_series_gives_no_detection() -> None:
    values = _daily(4000, noise=0.0)
    result = Novelty().detect([], _times(4000), values)
    rows = _detected_rows(result.timestamps, 4000)
    assert not np.any(rows >= 288)  # nothing new once one cycle has been seen


def test_noisy_series_gives_few_detections() -> None:
    rng = np.random.default_rng(3)
    values = 100 + 5 * rng.standard_normal(6000)
    result = Novelty().detect([], _times(6000), values)
    rows = _detected_rows(result.timestamps, 6000)
    # only the rare new extremes, ever rarer: records of iid noise grow like log(n)
    assert rows.size <= 12
    assert np.count_nonzero(rows > 1000) <= 4


def test_every_point_reports_each_novel_point_and_default_one_per_incident() -> None:
    values = _daily(3000, noise=0.5)
    values[2000:2030] = 200.0 + np.arange(30) * 3.0  # a burst of ever-new levels
    ts = _times(3000)
    grouped = Novelty().detect([], ts, values)
    each = Novelty(every_point=True).detect([], ts, values)
    grouped_rows = _detected_rows(grouped.timestamps, 3000)
    each_rows = _detected_rows(each.timestamps, 3000)
    assert np.count_nonzero((grouped_rows >= 2000) & (grouped_rows < 2030)) == 1
    assert np.count_nonzero((each_rows >= 2000) & (each_rows < 2031)) >= 10
    # the incident's detection carries its highest score
    at_start = grouped.scores[grouped_rows == 2000]
    assert at_start.size == 1
    assert at_start[0] == pytest.approx(each.scores[(each_rows >= 2000) & (each_rows < 2031)].max())


def test_refractory_merges_nearby_novel_points() -> None:
    values = _daily(3000, noise=0.5)
    values[2000] = 300.0
    values[2010] = 400.0
    ts = _times(3000)
    merged = _detected_rows(Novelty(refractory=20).detect([], ts, values).timestamps, 3000)
    split = _detected_rows(Novelty(refractory=0).detect([], ts, values).timestamps, 3000)
    assert {2000, 2010} <= set(split.tolist())
    assert 2000 in merged and 2010 not in merged


def test_memory_lets_a_forgotten_level_be_novel_again() -> None:
    x = np.r_[np.zeros(100), np.full(5, 10.0), np.zeros(400), np.full(5, 10.0)]
    x += np.tile([0.0, 0.1], x.size // 2)
    args = dict(levels=5, scales=1, pattern_length=1, min_history=64)
    remembered = novelty_scores(x, memory=10**12, **args)
    forgotten = novelty_scores(x, memory=200, **args)
    assert remembered[100] == 1.0 and remembered[505] == 0.0
    assert forgotten[505] == 1.0


def test_bands_have_input_length_and_hold_the_range_seen_so_far() -> None:
    values = np.array([3.0, 1.0, np.nan, 5.0, 2.0])
    result = Novelty().detect([], _times(5), values)
    assert result.expected is not None and result.lower is not None and result.upper is not None
    assert result.lower.shape == result.upper.shape == result.expected.shape == (5,)
    np.testing.assert_array_equal(result.lower, [np.nan, 3.0, np.nan, 1.0, 1.0])
    np.testing.assert_array_equal(result.upper, [np.nan, 3.0, np.nan, 3.0, 5.0])


def test_missing_values_are_never_flagged_and_skipped() -> None:
    values = _daily(3000, noise=1.0)
    values[1500:1600] = np.nan
    values[2000] = 500.0
    result = Novelty(every_point=True).detect([], _times(3000), values)
    rows = _detected_rows(result.timestamps, 3000)
    assert 2000 in rows
    assert not np.any(np.isnan(values[rows]))


@pytest.mark.parametrize("n", [0, 1, 2, 10, 64])
def test_empty_and_short_inputs_give_no_detection(n: int) -> None:
    values = np.arange(n, dtype=np.float64)
    result = Novelty().detect([], _times(n), values)
    assert result.timestamps.size == 0
    assert result.lower is not None and result.lower.shape == (n,)


def test_all_missing_and_constant_inputs() -> None:
    ts = _times(500)
    assert Novelty().detect([], ts, np.full(500, np.nan)).timestamps.size == 0
    assert Novelty().detect([], ts, np.full(500, 7.0)).timestamps.size == 0
    step = np.r_[np.full(300, 7.0), np.full(200, 8.0)]
    rows = _detected_rows(Novelty().detect([], ts, step).timestamps, 500)
    assert rows.tolist() == [300]


def test_huge_magnitudes_give_finite_scores() -> None:
    values = _daily(1000, noise=1.0) * 1e300
    values[800] = -1.7e308
    result = Novelty().detect([], _times(1000), values)
    assert np.all(np.isfinite(result.scores))
    assert 800 in _detected_rows(result.timestamps, 1000)


@pytest.mark.parametrize(
    "params",
    [
        {"levels": 1},
        {"scales": 0},
        {"pattern_length": 0},
        {"threshold": 0},
        {"threshold": 1.5},
        {"memory": 0},
        {"min_history": 1},
        {"refractory": -1},
        {"levels": "5"},
        {"window": 10},
    ],
)
def test_bad_params_are_rejected(params: dict[str, object]) -> None:
    with pytest.raises(InvalidParams):
        Novelty.from_params(params)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=0, max_size=300))
def test_any_input_gives_well_formed_output(raw: list[float]) -> None:
    values = np.array(raw, dtype=np.float64)
    ts = _times(values.size)
    result = Novelty(min_history=8).detect([], ts, values)
    assert np.all(np.isfinite(result.scores))
    assert np.all((result.scores >= 0) & (result.scores <= 1))
    assert np.all(np.diff(result.timestamps) > 0)
    assert np.all(np.isin(result.timestamps, ts))
    assert not np.any(np.isnan(values[_detected_rows(result.timestamps, values.size)]))
