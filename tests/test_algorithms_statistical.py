"""The statistical built-in detectors: mad, ewma and level_shift.

Each must find what it is for at the right timestamp, stay quiet on clean noise, report one
detection per run unless asked for every point, survive missing, empty, constant and huge input,
and reject bad parameters. Property tests pin the window statistics to naive re-implementations.
"""

from __future__ import annotations

import subprocess
import sys
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.ewma import Ewma, decayed_sum
from warden_algos.algorithms.level_shift import LevelShift
from warden_algos.algorithms.mad import Mad
from warden_algos.interfaces import DetectAlgorithm, DetectResult
from warden_algos.interfaces.base import contract_problems
from warden_algos.interfaces.errors import InvalidParams

DETECTORS: list[type[DetectAlgorithm[Any]]] = [Mad, Ewma, LevelShift]
SPIKE_DETECTORS: list[type[DetectAlgorithm[Any]]] = [Mad, Ewma]

pytestmark = pytest.mark.filterwarnings("error")  # no RuntimeWarning may leak from detect()


def minutes(n: int) -> np.ndarray:
    stamps = np.arange(n, dtype=np.int64) * 60 + 1_700_000_000
    stamps.flags.writeable = False
    return stamps


def frozen(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    values.flags.writeable = False
    return values


def noise(n: int, seed: int = 0, level: float = 100.0) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(size=n)


def run(algorithm: DetectAlgorithm[Any], values: np.ndarray) -> DetectResult:
    values = frozen(values)
    return algorithm.detect([], minutes(values.shape[0]), values)


def rows(result: DetectResult) -> list[int]:
    return [int(row) for row in (result.timestamps - 1_700_000_000) // 60]


# --- contract -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", DETECTORS)
def test_detector_meets_the_algorithm_contract(cls: type[DetectAlgorithm[Any]]) -> None:
    assert contract_problems(cls) == []
    assert "every_point" in cls.params_schema()["properties"]
    description = cls.description().lower()
    assert "use it" in description and "missing" in description


def test_importing_the_modules_stays_light() -> None:
    code = (
        "import sys, warden_algos.algorithms.mad, warden_algos.algorithms.ewma, "
        "warden_algos.algorithms.level_shift\n"
        "heavy = sorted(m for m in ('pandas', 'scipy') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- what each detector is for --------------------------------------------------------------------


@pytest.mark.parametrize("cls", SPIKE_DETECTORS)
@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_spike_is_reported_at_its_timestamp(
    cls: type[DetectAlgorithm[Any]], direction: float
) -> None:
    values = noise(3000, seed=3)
    values[2500] += direction * 12.0
    result = run(cls(), values)
    assert 2500 in rows(result)
    assert rows(result)[int(np.argmax(result.scores))] == 2500
    assert result.scores.max() > 8


@pytest.mark.parametrize("window", [30, 200])
@pytest.mark.parametrize("step", [8.0, -8.0])
def test_level_shift_is_reported_at_the_first_point_of_the_new_level(
    window: int, step: float
) -> None:
    values = noise(2000, seed=4)
    values[1200:] += step
    result = run(LevelShift(window=window), values)
    assert len(result.timestamps) == 1
    assert abs(rows(result)[0] - 1200) <= 2
    assert result.scores[0] > 5


def test_level_shift_ignores_spikes_and_short_bursts() -> None:
    values = noise(2000, seed=5)
    values[700] += 1000.0
    values[1300:1310] += 50.0  # a burst shorter than window / 2
    assert rows(run(LevelShift(window=30), values)) == []


def test_level_shift_needs_a_full_right_window() -> None:
    values = noise(1000, seed=6)
    values[980:] += 20.0  # only 20 points of the new level: not yet measurable with window 30
    assert rows(run(LevelShift(window=30), values)) == []
    assert rows(run(LevelShift(window=20), values)) == [980]


@pytest.mark.parametrize("params", [{}, {"window": 100, "tail_rate": 0.0}])
def test_mad_ignores_a_spike_when_setting_the_band(params: dict[str, Any]) -> None:
    clean = noise(3000, seed=7)
    spiked = clean.copy()
    spiked[2500] += 1000.0
    with_spike, without = run(Mad(**params), spiked), run(Mad(**params), clean)
    after = slice(2501, 2600)
    for band in ("expected", "upper"):
        spiked_band, clean_band = getattr(with_spike, band), getattr(without, band)
        np.testing.assert_allclose(spiked_band[after], clean_band[after], rtol=0.02)


def test_ewma_follows_a_slow_drift_without_alarms() -> None:
    n = 5000
    values = noise(n, seed=8) + np.linspace(0, 20, n)  # 20 sigmas of drift, slowly
    assert rows(run(Ewma(), values)) == []


@pytest.mark.parametrize(("cls", "max_rate"), [(Mad, 1e-3), (Ewma, 1e-4), (LevelShift, 0.0)])
def test_clean_gaussian_noise_rarely_alarms(
    cls: type[DetectAlgorithm[Any]], max_rate: float
) -> None:
    n = 20_000
    flagged = sum(
        len(run(cls(every_point=True), noise(n, seed=seed)).timestamps) for seed in range(5)
    )
    assert flagged <= max_rate * 5 * n


# --- reporting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", SPIKE_DETECTORS)
def test_one_detection_per_run_unless_every_point(cls: type[DetectAlgorithm[Any]]) -> None:
    values = noise(3000, seed=1)
    values[2000:2005] += 15.0
    grouped = run(cls(), values)
    every = run(cls(every_point=True), values)
    near = slice(int(np.searchsorted(rows(grouped), 1990)), None)
    assert rows(grouped)[near] == [2000]
    assert [row for row in rows(every) if row >= 1990] == [2000, 2001, 2002, 2003, 2004]
    assert grouped.scores[near][0] == pytest.approx(every.scores[-5:].max())


def test_level_shift_every_point_reports_the_new_level_from_the_change_on() -> None:
    values = noise(2000, seed=2)
    values[1000:] += 10.0
    grouped = rows(run(LevelShift(window=50), values))
    every = rows(run(LevelShift(window=50, every_point=True), values))
    assert grouped == [every[0]] and abs(every[0] - 1000) <= 2
    assert len(every) > 5 and every == list(range(every[0], every[-1] + 1))


@pytest.mark.parametrize("cls", DETECTORS)
def test_band_covers_every_point(cls: type[DetectAlgorithm[Any]]) -> None:
    values = noise(500, seed=9)
    values[::37] = np.nan
    result = run(cls(window=40) if cls is not Ewma else cls(), values)
    for band in (result.expected, result.lower, result.upper):
        assert band is not None and band.shape == values.shape and band.dtype == np.float64
    assert result.lower is not None and result.upper is not None
    known = ~np.isnan(result.lower)
    assert known.sum() > 300
    assert np.all(result.lower[known] <= result.upper[known])
    assert np.isnan(result.lower[:5]).all()  # no opinion during warm-up


# --- missing, empty, constant, huge ---------------------------------------------------------------


@pytest.mark.parametrize("cls", SPIKE_DETECTORS)
def test_missing_values_are_skipped_and_never_reported(cls: type[DetectAlgorithm[Any]]) -> None:
    values = noise(3000, seed=10)
    values[np.random.default_rng(11).random(3000) < 0.1] = np.nan
    values[2500] = 115.0
    values[2400:2420] = np.nan
    values[1000] = np.inf  # non-finite counts as missing too
    result = run(cls(every_point=True), values)
    assert 2500 in rows(result)
    assert all(np.isfinite(values[row]) for row in rows(result))
    assert np.isfinite(result.scores).all()


def test_level_shift_with_missing_values() -> None:
    values = noise(2000, seed=12)
    values[1200:] += 8.0
    values[np.random.default_rng(13).random(2000) < 0.2] = np.nan
    values[1200] = 108.0
    found = rows(run(LevelShift(window=50), values))
    assert len(found) == 1 and abs(found[0] - 1200) <= 3


@pytest.mark.parametrize("cls", DETECTORS)
@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_empty_and_very_short_input(cls: type[DetectAlgorithm[Any]], n: int) -> None:
    result = run(cls(), noise(n))
    assert result.timestamps.shape == (0,) and result.scores.shape == (0,)
    assert result.timestamps.dtype == np.int64
    assert result.expected is not None and result.expected.shape == (n,)


@pytest.mark.parametrize("cls", DETECTORS)
def test_all_missing(cls: type[DetectAlgorithm[Any]]) -> None:
    result = run(cls(), np.full(300, np.nan))
    assert rows(result) == []
    assert result.expected is not None and np.isnan(result.expected).all()


@pytest.mark.parametrize("cls", DETECTORS)
def test_constant_series_is_quiet_and_a_departure_from_it_is_not(
    cls: type[DetectAlgorithm[Any]],
) -> None:
    flat = np.full(600, 42.0)
    result = run(cls(), flat)
    assert rows(result) == []
    assert result.expected is not None
    assert np.nanmax(np.abs(result.expected - 42.0)) < 1e-12
    stepped = flat.copy()
    stepped[400:] = 42.5
    found = rows(run(cls(), stepped))
    assert found and found[0] == 400


@pytest.mark.parametrize("cls", DETECTORS)
@pytest.mark.parametrize("magnitude", [1e300, -1e300, 1e-300])
def test_huge_and_tiny_magnitudes_give_finite_scores(
    cls: type[DetectAlgorithm[Any]], magnitude: float
) -> None:
    values = noise(3000, seed=14, level=0.0) * magnitude
    values[2500] = 30.0 * magnitude
    values[2501:] += 8.0 * magnitude  # a shift for level_shift, on top of the spike
    result = run(cls(window=100) if cls is not Ewma else cls(), values)
    assert len(result.timestamps) > 0
    assert np.isfinite(result.scores).all()
    for band in (result.expected, result.lower, result.upper):
        assert band is not None and not np.isinf(band).any()


@pytest.mark.parametrize("cls", DETECTORS)
def test_detect_prints_nothing(
    cls: type[DetectAlgorithm[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    values = noise(500, seed=15)
    values[::50] = np.nan
    values[400] += 50
    run(cls(), values)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# --- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (Mad, {"window": 2}),
        (Mad, {"k": 0}),
        (Mad, {"k": -1.0}),
        (Mad, {"window": "60"}),
        (Mad, {"tail_rate": 0.5}),
        (Mad, {"min_mad": -1.0}),
        (Mad, {"min_periods": 2}),
        (Mad, {"windows": 60}),
        (Ewma, {"alpha": 0}),
        (Ewma, {"alpha": 1.5}),
        (Ewma, {"span": 0.5}),
        (Ewma, {"alpha": 0.1, "span": 10}),
        (Ewma, {"variance_alpha": 0}),
        (Ewma, {"k": 0}),
        (Ewma, {"min_periods": 1}),
        (LevelShift, {"window": 2}),
        (LevelShift, {"k": 0}),
        (LevelShift, {"min_spread": -0.1}),
        (LevelShift, {"every_point": "yes"}),
    ],
)
def test_bad_params_are_rejected(cls: type[DetectAlgorithm[Any]], params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams):
        cls.from_params(params)


@pytest.mark.parametrize("cls", [Mad, LevelShift])
def test_default_min_periods_fits_any_window(cls: type[DetectAlgorithm[Any]]) -> None:
    values = noise(200, seed=16)
    values[::7] = np.nan
    result = run(cls.from_params({"window": 12}), values)
    assert result.expected is not None and np.isfinite(result.expected[20:]).all()
    with pytest.raises(InvalidParams, match="min_periods"):
        cls.from_params({"window": 12, "min_periods": 13})


def test_ewma_span_is_alpha_in_other_words() -> None:
    values = noise(1000, seed=17)
    values[800] += 10
    by_span = run(Ewma(span=39), values)
    by_alpha = run(Ewma(alpha=0.05), values)
    np.testing.assert_array_equal(by_span.timestamps, by_alpha.timestamps)
    assert by_span.expected is not None and by_alpha.expected is not None
    np.testing.assert_allclose(by_span.expected, by_alpha.expected, rtol=1e-12)


# --- properties -----------------------------------------------------------------------------------

small_series = st.tuples(
    st.integers(0, 80),  # length
    st.integers(0, 2**32 - 1),  # seed
    st.floats(0.0, 0.3),  # share of missing points
)


def _series(length: int, seed: int, missing: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.standard_t(3, size=length) * 10.0 + 5.0
    values[rng.random(length) < missing] = np.nan
    return values


def _trailing(values: np.ndarray, i: int, window: int) -> np.ndarray:
    chunk = values[max(0, i - window) : i]
    return chunk[~np.isnan(chunk)]


@settings(max_examples=80, deadline=None)
@given(series=small_series, window=st.integers(3, 25), min_periods=st.integers(3, 25))
def test_mad_matches_a_naive_trailing_window(
    series: tuple[int, int, float], window: int, min_periods: int
) -> None:
    values = _series(*series)
    warm_up = min_periods = min(min_periods, window)
    k, tail_rate = 3.5, 0.1
    result = run(Mad(window=window, min_periods=min_periods, k=k, tail_rate=tail_rate), values)
    n = values.shape[0]
    median = np.full(n, np.nan)
    for i in range(n):
        chunk = _trailing(values, i, window)
        if chunk.size >= warm_up:
            median[i] = np.median(chunk)
    residual = np.abs(values - median)
    gauss = NormalDist().inv_cdf(1 - tail_rate / 2)
    sigma = np.full(n, np.nan)
    for i in range(n):
        chunk = _trailing(residual, i, window)
        if chunk.size >= warm_up and not np.isnan(median[i]):
            sigma[i] = max(1.4826 * np.median(chunk), np.quantile(chunk, 1 - tail_rate) / gauss)
            if sigma[i] == 0.0:
                sigma[i] = 1.2533 * chunk.mean()
            sigma[i] = max(sigma[i], 1e-9 * float(np.nanmedian(np.abs(values))))
    assert result.expected is not None and result.upper is not None
    np.testing.assert_allclose(result.expected, median, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(
        (result.upper - result.expected) / k, sigma, rtol=1e-9, equal_nan=True
    )
    flagged = np.flatnonzero(residual / sigma > k)
    every = run(
        Mad(window=window, min_periods=min_periods, tail_rate=tail_rate, every_point=True), values
    )
    assert rows(every) == flagged.tolist()


@settings(max_examples=80, deadline=None)
@given(
    series=small_series,
    alpha=st.floats(0.01, 1.0),
    variance_alpha=st.floats(0.01, 1.0),
    min_periods=st.integers(2, 20),
)
def test_ewma_matches_a_naive_recursion(
    series: tuple[int, int, float], alpha: float, variance_alpha: float, min_periods: int
) -> None:
    values = _series(*series)
    result = run(
        Ewma(alpha=alpha, variance_alpha=variance_alpha, min_periods=min_periods, k=3.0), values
    )
    n = values.shape[0]
    expected, sigma = np.full(n, np.nan), np.full(n, np.nan)
    mean_num = mean_den = var_num = var_den = 0.0
    seen = 0
    for i in range(n):
        if seen >= min_periods:
            expected[i] = mean_num / mean_den
            sigma[i] = np.sqrt(var_num / var_den)
        if np.isnan(values[i]):
            continue
        if seen >= 1:
            error = values[i] - mean_num / mean_den
            var_num = var_num * (1 - variance_alpha) + error * error
            var_den = var_den * (1 - variance_alpha) + 1.0
        mean_num = mean_num * (1 - alpha) + values[i]
        mean_den = mean_den * (1 - alpha) + 1.0
        seen += 1
    assert result.expected is not None and result.upper is not None
    np.testing.assert_allclose(result.expected, expected, rtol=1e-9, atol=1e-9, equal_nan=True)
    floor = 1e-9 * float(np.nanmedian(np.abs(values))) if seen else 1e-9
    np.testing.assert_allclose(
        (result.upper - result.expected) / 3.0,
        np.maximum(sigma, floor),
        rtol=1e-7,
        atol=1e-9,
        equal_nan=True,
    )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 3000),
    decay=st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)),
    seed=st.integers(0, 2**32 - 1),
)
def test_decayed_sum_matches_the_recursion(n: int, decay: float, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=n) + 3.0
    want = np.empty(n)
    carry = 0.0
    for i in range(n):
        carry = x[i] + decay * carry
        want[i] = carry
    np.testing.assert_allclose(decayed_sum(x, decay), want, rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    window=st.integers(10, 60),  # below about 10 points an IQR is too noisy to be a spread
    position=st.integers(0, 1000),
    step=st.sampled_from([-15.0, 15.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_level_shift_lands_on_the_step(window: int, position: int, step: float, seed: int) -> None:
    n = 1200
    change = window + position % (n - 2 * window)  # room for a full window on both sides
    values = np.random.default_rng(seed).normal(size=n)
    values[change:] += step
    found = rows(run(LevelShift(window=window, min_periods=3), values))
    assert len(found) == 1 and abs(found[0] - change) <= 2
