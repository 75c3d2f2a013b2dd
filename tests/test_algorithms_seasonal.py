"""The seasonal residual and spectral residual detectors: periods found, anomalies found where they
are and nowhere else, missing points and gaps tolerated, the latest point scored, bad params
refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.seasonal import Seasonal, detect_periods
from warden_algos.algorithms.spectral_residual import SpectralResidual
from warden_algos.interfaces import DetectResult, InvalidParams
from warden_algos.testing import check_algorithm

START = 1_700_006_400  # a midnight (UTC)
FIVE_MIN = 300
DAY = 86_400
WEEK = 7 * DAY


def _daily(days: int, seed: int = 0, noise: float = 0.3) -> tuple[Any, Any]:
    """5-minute points of a daily cycle: low at midnight (~2), high at noon (~18)."""
    n = days * DAY // FIVE_MIN
    times = START + FIVE_MIN * np.arange(n, dtype=np.int64)
    phase = 2 * np.pi * ((times - START) % DAY) / DAY
    values = 10 - 8 * np.cos(phase) + np.random.default_rng(seed).normal(0, noise, n)
    return times, values


def _daily_weekly(weeks: int, seed: int = 0) -> tuple[Any, Any]:
    """A daily cycle whose weekend days are much quieter than weekdays."""
    times, values = _daily(7 * weeks, seed)
    day_of_week = ((times - START) // DAY) % 7
    weekend = day_of_week >= 5
    values = np.where(weekend, 10 + (values - 10) * 0.3, values)
    return times, values


def _index(times: Any, result: DetectResult) -> list[int]:
    return [int(i) for i in np.searchsorted(times, result.timestamps)]


# --- seasonal: periods ---------------------------------------------------------------------


def test_finds_the_period_of_a_daily_cycle() -> None:
    times, values = _daily(10)
    assert detect_periods(times, values) == [DAY]


def test_finds_daily_and_weekly_cycles_together() -> None:
    times, values = _daily_weekly(5)
    assert detect_periods(times, values) == [DAY, WEEK]


def test_a_weekly_cycle_needs_three_weeks_of_data() -> None:
    times, values = _daily_weekly(2)
    assert detect_periods(times, values) == [DAY]


def test_finds_a_cycle_that_is_not_a_calendar_period() -> None:
    n = 4000
    times = START + 60 * np.arange(n, dtype=np.int64)
    values = np.sin(2 * np.pi * np.arange(n) / 90) + np.random.default_rng(1).normal(0, 0.2, n)
    (period,) = detect_periods(times, values)
    assert abs(period - 90 * 60) <= 60


def test_finds_no_period_in_noise_or_a_random_walk() -> None:
    rng = np.random.default_rng(2)
    times = START + FIVE_MIN * np.arange(6000, dtype=np.int64)
    assert detect_periods(times, rng.normal(size=6000)) == []
    assert detect_periods(times, np.cumsum(rng.normal(size=6000))) == []


def test_finds_the_daily_period_despite_jittered_sampling_and_gaps() -> None:
    times, values = _daily(10, seed=3)
    rng = np.random.default_rng(3)
    jittered = times + rng.integers(-60, 61, times.size)
    keep = rng.random(times.size) > 0.3  # 30% of the points never arrive
    keep[1000:1400] = False  # and a gap of more than a day
    order = np.argsort(jittered[keep])
    assert detect_periods(jittered[keep][order], values[keep][order]) == [DAY]


# --- seasonal: detection -------------------------------------------------------------------


def test_a_clean_seasonal_series_raises_nothing() -> None:
    for seed in range(3):
        times, values = _daily_weekly(4, seed=seed)
        result = Seasonal(every_point=True).detect([], times, values)
        assert result.timestamps.size == 0, (seed, _index(times, result))


def test_flags_a_value_normal_at_noon_when_it_comes_at_midnight() -> None:
    times, values = _daily(10)
    midnight = 8 * DAY // FIVE_MIN  # day 8, 00:00
    values[midnight] = 17.5  # inside the series' normal range, but a noon value
    assert values.min() < 17.5 < values.max()
    result = Seasonal().detect([], times, values)
    assert _index(times, result) == [midnight]
    assert result.scores[0] > 4.5


def test_a_plain_rolling_z_score_misses_the_off_phase_value() -> None:
    # The same series seen without seasonality: the value is unremarkable, which is the point of
    # removing the profile.
    times, values = _daily(10)
    midnight = 8 * DAY // FIVE_MIN
    values[midnight] = 17.5
    assert midnight not in _index(times, Seasonal(periods=[]).detect([], times, values))


def test_flags_an_anomaly_after_missing_points_and_a_gap() -> None:
    times, values = _daily(12, seed=4)
    rng = np.random.default_rng(4)
    values[rng.random(values.size) < 0.1] = np.nan  # 10% missing values
    keep = np.ones(times.size, dtype=bool)
    keep[5 * 288 : 6 * 288 + 50] = False  # a gap: more than a day with no points at all
    times, values = times[keep], values[keep]
    clean = Seasonal(every_point=True).detect([], times, values)
    assert clean.timestamps.size == 0, _index(times, clean)
    target = int(np.searchsorted(times, START + 10 * DAY + 12 * 3600))  # day 10, noon
    values[target : target + 3] = 3.0  # a midnight value at noon
    found = Seasonal().detect([], times, values)
    assert _index(times, found) == [target]


def test_band_covers_every_point_and_opens_once_a_cycle_is_known() -> None:
    times, values = _daily(6)
    result = Seasonal().detect([], times, values)
    assert result.expected is not None and result.lower is not None and result.upper is not None
    for band in (result.expected, result.lower, result.upper):
        assert band.shape == values.shape
    assert np.isnan(result.expected[:288]).all()  # no cycle seen yet
    later = slice(2 * 288, None)
    assert np.isfinite(result.expected[later]).all()
    assert (result.lower[later] <= result.expected[later]).all()
    assert (result.expected[later] <= result.upper[later]).all()
    inside = (values[later] >= result.lower[later]) & (values[later] <= result.upper[later])
    assert inside.mean() > 0.99
    # The band follows the cycle: around 2 at midnight, around 18 at noon.
    assert abs(result.expected[4 * 288] - 2) < 1 and abs(result.expected[4 * 288 + 144] - 18) < 1


def test_an_incident_is_reported_once_unless_every_point_is_asked() -> None:
    times, values = _daily(10)
    start = 8 * 288 + 10
    values[start : start + 40 : 4] += 12  # a flickering incident: every 4th point for 40 points
    grouped = Seasonal().detect([], times, values)
    every = Seasonal(every_point=True).detect([], times, values)
    assert _index(times, grouped) == [start]
    assert _index(times, every) == list(range(start, start + 40, 4))
    # Without a cooldown each flagged point is its own incident.
    assert len(Seasonal(cooldown=0).detect([], times, values).timestamps) == 10


def test_given_periods_are_used_as_given() -> None:
    times, values = _daily(10)
    midnight = 8 * DAY // FIVE_MIN
    values[midnight] = 17.5
    assert _index(times, Seasonal(periods=[DAY]).detect([], times, values)) == [midnight]


def test_a_point_is_judged_on_the_past_only() -> None:
    times, values = _daily(8, seed=5)
    values[7 * 288 + 100] += 10
    full = Seasonal(periods=[DAY], every_point=True).detect([], times, values)
    cut = 7 * 288 + 101
    prefix = Seasonal(periods=[DAY], every_point=True).detect([], times[:cut], values[:cut])
    assert _index(times, prefix) == [i for i in _index(times, full) if i < cut] == [7 * 288 + 100]
    assert prefix.expected is not None and full.expected is not None
    np.testing.assert_allclose(prefix.expected, full.expected[:cut], rtol=1e-9)


def test_seasonal_handles_short_empty_and_missing_inputs() -> None:
    times, values = _daily(1)
    assert Seasonal().detect([], times[:0], values[:0]).timestamps.size == 0
    assert Seasonal().detect([], times[:5], values[:5]).timestamps.size == 0
    assert Seasonal().detect([], times, np.full(times.size, np.nan)).timestamps.size == 0
    assert Seasonal().detect([], times, np.full(times.size, 3.0)).timestamps.size == 0


def test_seasonal_passes_the_contract_checks() -> None:
    check_algorithm(Seasonal)


@pytest.mark.parametrize(
    "params",
    [
        {"k": 0},
        {"periods": [1]},
        {"periods": [86400, 86400]},
        {"periods": [60, 120, 180, 240, 300]},
        {"cycles": 0},
        {"window": 5},
        {"tail": 0.5},
        {"tail": 1.0},
        {"cooldown": -1},
        {"min_acf": 1.5},
        {"season": 86400},
        {"k": "4"},
    ],
)
def test_seasonal_rejects_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams):
        Seasonal.from_params(params)


# --- spectral residual ---------------------------------------------------------------------


def _sine(n: int = 1500, seed: int = 0, noise: float = 0.05) -> tuple[Any, Any]:
    times = START + 60 * np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return times, 10 + np.sin(np.arange(n) * 2 * np.pi / 144) + rng.normal(0, noise, n)


@pytest.mark.parametrize("seed", range(4))
def test_spectral_residual_flags_a_spike_and_the_latest_point(seed: int) -> None:
    times, values = _sine(seed=seed)
    values[1000] += 2.0
    values[-1] += 2.0  # only the extension past the window's end lets this one be seen
    result = SpectralResidual(cooldown=0).detect([], times, values)
    assert _index(times, result) == [1000, values.size - 1]
    assert (result.scores > 6).all()


@pytest.mark.parametrize("seed", range(4))
def test_spectral_residual_is_quiet_on_a_smooth_sine(seed: int) -> None:
    times, values = _sine(seed=seed)
    assert SpectralResidual(every_point=True).detect([], times, values).timestamps.size == 0


def test_spectral_residual_scores_a_point_from_the_past_only() -> None:
    times, values = _sine(seed=9)
    values[700] += 2.0
    full = SpectralResidual(every_point=True).detect([], times, values)
    for cut in (701, 702, 900):
        prefix = SpectralResidual(every_point=True).detect([], times[:cut], values[:cut])
        kept = full.timestamps < times[cut]
        np.testing.assert_array_equal(prefix.timestamps, full.timestamps[kept])
        np.testing.assert_allclose(prefix.scores, full.scores[kept])


def test_spectral_residual_handles_short_empty_and_missing_inputs() -> None:
    times, values = _sine()
    detector = SpectralResidual()
    for cut in (0, 1, 2, 10, 100):  # too short to have an opinion: nothing, no error
        assert detector.detect([], times[:cut], values[:cut]).timestamps.size == 0
    assert detector.detect([], times, np.full(times.size, np.nan)).timestamps.size == 0
    assert detector.detect([], times, np.full(times.size, 4.0)).timestamps.size == 0
    gappy = values.copy()
    gappy[np.random.default_rng(2).random(gappy.size) < 0.1] = np.nan
    gappy[1200] = 13.0
    found = SpectralResidual(every_point=True).detect([], times, gappy)
    assert 1200 in _index(times, found)
    assert not np.isnan(gappy[_index(times, found)]).any()  # a missing value is never flagged


def test_spectral_residual_scores_points_before_the_first_full_window() -> None:
    times, values = _sine(n=300)
    values[115] += 2.0  # before the first full window of 128 points, scored on the 116 so far
    assert _index(times, SpectralResidual().detect([], times, values)) == [115]


def test_spectral_residual_has_no_band() -> None:
    times, values = _sine()
    assert not SpectralResidual().detect([], times, values).has_band


def test_spectral_residual_passes_the_contract_checks() -> None:
    check_algorithm(SpectralResidual)


@pytest.mark.parametrize(
    "params",
    [
        {"window": 8},
        {"threshold": 0},
        {"mag_window": 0},
        {"score_window": 0},
        {"window": 64, "score_window": 64},
        {"window": 32, "extend_lookback": 40},
        {"extend_points": -1},
        {"cooldown": -5},
        {"tau": 3},
    ],
)
def test_spectral_residual_rejects_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams):
        SpectralResidual.from_params(params)


# --- both ----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 700),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-200, 1e-3, 1.0, 1e6, 1e200]),
    missing=st.floats(0, 0.5),
)
def test_any_series_gets_a_valid_result(n: int, seed: int, scale: float, missing: float) -> None:
    rng = np.random.default_rng(seed)
    times = START + np.cumsum(rng.integers(1, 900, n)).astype(np.int64)
    values = rng.standard_t(3, n) * scale
    values[rng.random(n) < missing] = np.nan
    for detector in (Seasonal(every_point=True), SpectralResidual(every_point=True)):
        result = detector.detect([], times, values)
        assert np.isfinite(result.scores).all() and (result.scores >= 0).all()
        assert np.isin(result.timestamps, times).all()
        assert not np.isnan(values[np.searchsorted(times, result.timestamps)]).any()
        for band in (result.expected, result.lower, result.upper):
            assert band is None or band.shape == (n,)


def test_seasonal_survives_a_series_whose_acf_peaks_are_all_negative() -> None:
    """Regression (found by the shared vectors): two days of a daily cycle with a spike made
    the period search index an empty array."""
    n = 600
    times = 1_700_000_000 + 300 * np.arange(n, dtype=np.int64)
    noise = np.random.default_rng(5).normal(0.0, 0.5, n)
    values = 50.0 + 10.0 * np.sin(2 * np.pi * np.arange(n) / 288) + noise
    values[500] += 25.0
    result = Seasonal().detect([], times, values)
    assert np.isfinite(result.scores).all()
    assert result.expected is not None and result.expected.shape == (n,)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 700),
    seed=st.integers(0, 2**16),
    step=st.sampled_from([60, 300, 3600]),
    scale=st.sampled_from([1e-3, 1.0, 1e6]),
)
def test_seasonal_never_raises_on_random_series(n: int, seed: int, step: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    times = 1_700_000_000 + step * np.cumsum(rng.integers(1, 3, n)).astype(np.int64)
    values = scale * (np.sin(np.arange(n) * rng.uniform(0.01, 1.0)) + rng.normal(0, 1, n))
    values[rng.random(n) < 0.05] = np.nan
    result = Seasonal().detect([], times, values)
    assert np.isfinite(result.scores).all()
