"""The prophet detector: finds what breaks a daily cycle, returns its band, and stays quiet.

Prophet fits are slow (a cmdstan process per fit), so the series here are small: three weeks of
hourly points, fitted once per test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import pytest

from warden_algos.algorithms.prophet_forecast import MIN_FIT_POINTS, ProphetDetector
from warden_algos.interfaces import DetectResult, InvalidInput, InvalidParams
from warden_algos.testing import check_algorithm

HOUR = 3600
START = 1_600_000_000 - 1_600_000_000 % 86_400  # a midnight, UTC


def daily_series(days: int = 21, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    timestamps = START + HOUR * np.arange(days * 24, dtype=np.int64)
    rng = np.random.default_rng(seed)
    values = 50 + 20 * np.sin(2 * np.pi * timestamps / 86_400) + rng.normal(0, 1.0, timestamps.size)
    return timestamps, values


def readonly(*arrays: np.ndarray) -> list[np.ndarray]:
    for array in arrays:
        array.flags.writeable = False
    return list(arrays)


def assert_band(result: DetectResult, n: int) -> None:
    assert result.expected is not None and result.lower is not None and result.upper is not None
    for band in (result.expected, result.lower, result.upper):
        assert band.shape == (n,)
    assert np.all(result.lower <= result.expected)
    assert np.all(result.expected <= result.upper)


def test_detects_a_spike_at_its_timestamp_on_a_daily_cycle() -> None:
    timestamps, values = daily_series()
    values[300] += 15  # within the cycle's range (30..70), so only the model can see it
    result = ProphetDetector().detect([], *readonly(timestamps, values))
    assert list(result.timestamps) == [timestamps[300]]
    assert result.scores[0] > 0.7
    assert_band(result, timestamps.size)
    # The forecast follows the cycle: the band holds the clean points, not the spike.
    assert result.lower is not None and result.upper is not None
    assert result.lower[300] < values[300] - 15 < result.upper[300]
    assert not result.lower[300] <= values[300] <= result.upper[300]


def test_clean_seasonal_data_raises_no_detection() -> None:
    timestamps, values = daily_series(seed=3)
    result = ProphetDetector().detect([], *readonly(timestamps, values))
    assert result.timestamps.size == 0
    assert_band(result, timestamps.size)
    # The band's width matches the noise (std 1): z(0.99) ≈ 2.58 half-widths, not the cycle's 20.
    assert result.upper is not None and result.lower is not None
    half_width = float(np.median(result.upper - result.lower)) / 2
    assert 2.2 < half_width < 3.0


def test_missing_points_are_never_flagged_but_still_get_a_band() -> None:
    timestamps, values = daily_series()
    values[[50, 51, 200]] = np.nan
    values[120] += 15
    result = ProphetDetector().detect([], *readonly(timestamps, values))
    assert list(result.timestamps) == [timestamps[120]]
    for band in (result.expected, result.lower, result.upper):
        assert band is not None
        assert np.all(np.isfinite(band[[50, 51, 200]]))
    # The forecast at a missing point is the cycle's value there.
    assert result.expected is not None
    assert abs(result.expected[200] - (50 + 20 * np.sin(2 * np.pi * timestamps[200] / 86_400))) < 1


def test_every_point_reports_each_flagged_point_of_a_run() -> None:
    timestamps, values = daily_series()
    values[300:303] += 20
    runs = ProphetDetector().detect([], *readonly(timestamps, values))
    points = ProphetDetector(every_point=True).detect([], *readonly(timestamps, values))
    assert list(runs.timestamps) == [timestamps[300]]
    assert list(points.timestamps) == list(timestamps[300:303])
    assert runs.scores[0] == pytest.approx(points.scores.max())


def test_long_series_are_fitted_on_bin_averages_and_still_forecast_every_point() -> None:
    timestamps, values = daily_series()
    values[400] -= 15
    result = ProphetDetector(max_fit_points=100).detect([], *readonly(timestamps, values))
    assert list(result.timestamps) == [timestamps[400]]
    assert_band(result, timestamps.size)


def test_two_runs_give_identical_results() -> None:
    timestamps, values = daily_series(seed=5)
    values[100] += 12
    first = ProphetDetector().detect([], *readonly(timestamps, values))
    second = ProphetDetector().detect([], *readonly(timestamps, values))
    assert first.explanations is None and second.explanations is None  # none asked for
    for a, b in zip(first[:5], second[:5], strict=True):  # the arrays
        assert a is not None and b is not None
        np.testing.assert_array_equal(a, b)


def test_country_holidays_are_accepted_and_fitted() -> None:
    timestamps, values = daily_series()
    detector = ProphetDetector.from_params({"country_holidays": "us"})
    assert detector.params.country_holidays == "US"
    result = detector.detect([], *readonly(timestamps, values))
    assert_band(result, timestamps.size)


def test_unknown_country_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(InvalidParams) as error:
        ProphetDetector.from_params({"country_holidays": "XX"})
    assert error.value.field == "params.country_holidays"
    assert "XX" in error.value.message and "ISO 3166" in error.value.message


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"interval_width": 1.0}, "params.interval_width"),
        ({"interval_width": 0}, "params.interval_width"),
        ({"margin": -1}, "params.margin"),
        ({"daily_seasonality": "yes"}, "params.daily_seasonality"),
        ({"weekly_seasonality": 3}, "params.weekly_seasonality"),
        ({"yearly_seasonality": 1}, "params.yearly_seasonality"),
        ({"seasonality_mode": "linear"}, "params.seasonality_mode"),
        ({"changepoint_prior_scale": 0}, "params.changepoint_prior_scale"),
        ({"max_fit_points": 5}, "params.max_fit_points"),
        ({"outlier_sigmas": 0.5}, "params.outlier_sigmas"),
        ({"country_holidays": 1}, "params.country_holidays"),
        ({"growth": "logistic"}, "params.growth"),
    ],
)
def test_bad_params_are_rejected(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams) as error:
        ProphetDetector.from_params(params)
    assert error.value.field == field


def test_seasonality_switches_take_auto_or_a_boolean() -> None:
    params = ProphetDetector.from_params(
        {"daily_seasonality": True, "weekly_seasonality": False, "yearly_seasonality": "auto"}
    ).params
    assert (params.daily_seasonality, params.weekly_seasonality) == (True, False)
    assert params.yearly_seasonality == "auto"


@pytest.mark.parametrize(
    "values",
    [
        np.array([]),
        np.arange(MIN_FIT_POINTS - 1, dtype=np.float64),
        np.full(48, np.nan),
    ],
    ids=["empty", "too-short", "all-missing"],
)
def test_too_little_data_gives_no_detection_and_no_opinion(values: np.ndarray) -> None:
    timestamps = START + HOUR * np.arange(values.size, dtype=np.int64)
    result = ProphetDetector().detect([], *readonly(timestamps, values))
    assert result.timestamps.size == 0 and result.scores.size == 0
    for band in (result.expected, result.lower, result.upper):
        assert band is not None and band.shape == values.shape and np.all(np.isnan(band))


def test_a_constant_series_is_not_anomalous_but_a_departure_from_it_is() -> None:
    timestamps = START + HOUR * np.arange(96, dtype=np.int64)
    values = np.full(96, 7.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division-by-zero warning may leak
        flat = ProphetDetector().detect([], *readonly(timestamps, values.copy()))
        values[50] = 8.0
        bumped = ProphetDetector().detect([], *readonly(timestamps, values))
    assert flat.timestamps.size == 0
    assert flat.expected is not None and np.allclose(flat.expected, 7.0)
    assert list(bumped.timestamps) == [timestamps[50]]


def test_huge_values_give_finite_scores() -> None:
    timestamps, values = daily_series(days=4)
    values = values * 1e300
    values[50] = -1.7e308
    result = ProphetDetector().detect([], *readonly(timestamps, values))
    assert np.all(np.isfinite(result.scores))
    assert timestamps[50] in result.timestamps
    for band in (result.expected, result.lower, result.upper):
        assert band is not None and not np.any(np.isinf(band))


def test_nothing_reaches_stdout_not_even_from_cmdstan() -> None:
    """Run in a child whose fd 1 is a pipe: cmdstan, a grandchild process, would inherit it if it
    wrote there. Logging is configured as the CLI does (stderr, INFO)."""
    script = textwrap.dedent(
        """
        import numpy as np
        from warden_algos import logs
        from warden_algos.algorithms.prophet_forecast import ProphetDetector
        logs.configure("info")
        t = 1_600_000_000 + 3600 * np.arange(24 * 14, dtype=np.int64)
        v = 10 + np.sin(2 * np.pi * t / 86400) + np.random.default_rng(0).normal(0, 0.1, t.size)
        v[100] += 5
        r = ProphetDetector(country_holidays="US").detect([], t, v)
        assert r.timestamps.tolist() == [int(t[100])], r.timestamps
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""
    # Prophet's and cmdstanpy's INFO chatter and the missing-plotly error are silenced too.
    assert done.stderr == b"", done.stderr.decode()


def test_passes_the_algorithm_contract_checks() -> None:
    check_algorithm(ProphetDetector)


def test_timestamps_pandas_cannot_represent_are_refused_clearly() -> None:
    timestamps = 10_000_000_000 + HOUR * np.arange(48, dtype=np.int64)  # year 2286
    with pytest.raises(InvalidInput) as error:
        ProphetDetector().detect([], *readonly(timestamps, np.ones(48)))
    assert error.value.field == "detect.timestamps" and "2262" in error.value.message
