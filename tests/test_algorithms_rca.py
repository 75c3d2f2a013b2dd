"""RCA algorithms (adtributor, deviation) and the synthetic root-cause cases that score them."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from warden_algos.algorithms.adtributor import (
    Adtributor,
    deviations,
    distribution,
    js_surprise,
)
from warden_algos.algorithms.correlation import Correlation
from warden_algos.algorithms.deviation import Deviation
from warden_algos.evaluation.rca_synthetic import (
    Difficulty,
    describe_cases,
    evaluate_rca,
    generate_cases,
)
from warden_algos.interfaces import (
    InvalidParams,
    RCAResult,
    TimeSeries,
    run_rca,
)
from warden_algos.interfaces.base import contract_problems
from warden_algos.registry import AlgorithmEntry

HOUR = 3600
T0 = 1_700_006_400  # a day boundary


@pytest.fixture(autouse=True)
def _warnings_are_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def hourly(days: int) -> np.ndarray:
    return T0 + HOUR * np.arange(24 * days, dtype=np.int64)


def cube_case(
    change: dict[str, float], *, days: int = 3, seed: int = 0, wobble: float = 1.0
) -> tuple[TimeSeries, list[TimeSeries], np.ndarray]:
    """A 3 countries x 2 devices cube with a daily cycle and 2 % noise; the leaves of the countries
    in ``change`` are multiplied by its factor at the last two points, and every leaf by
    ``wobble`` (a forecast miss of the whole total)."""
    rng = np.random.default_rng(seed)
    times = hourly(days)
    countries = {"US": 600.0, "DE": 250.0, "FR": 150.0}
    devices = {"ios": 0.3, "android": 0.7}
    cycle = 1 + 0.3 * np.sin(2 * np.pi * (times - T0) / 86_400)
    leaves = {}
    for country, level in countries.items():
        for device, share in devices.items():
            noise = np.exp(0.02 * rng.standard_normal(times.shape[0]))
            values = level * share * cycle * noise
            values[-2:] *= change.get(country, 1.0) * wobble
            leaves[country, device] = values
    related = [
        TimeSeries({"country": c}, times, sum(leaves[c, d] for d in devices)) for c in countries
    ] + [TimeSeries({"device": d}, times, sum(leaves[c, d] for c in countries)) for d in devices]
    total = TimeSeries({}, times, sum(leaves.values()))
    return total, related, times[-2:]


def keys(result: RCAResult) -> list[str]:
    return [key for key, _ in result.contributions]


# --- adtributor -----------------------------------------------------------------------------------


def test_adtributor_names_the_country_that_collapsed() -> None:
    total, related, anomalies = cube_case({"FR": 0.2})
    result = run_rca(Adtributor(), total, related, 5, anomalies)
    assert keys(result)[0] == "country=FR"
    # The device dimension changed in proportion: no surprise there, so it ranks below.
    assert all(score < 2 for key, score in result.contributions if key.startswith("device"))


def test_adtributor_fills_the_top_k_from_the_next_dimensions() -> None:
    """FR alone explains the country dimension; the rest of the top 3 is the device dimension's
    candidates, one tier below, so the top 3 can hold what the top 1 missed."""
    total, related, anomalies = cube_case({"FR": 0.2})
    result = run_rca(Adtributor(), total, related, 3, anomalies)
    ranked = keys(result)
    assert ranked[0] == "country=FR"
    assert len(ranked) == 3 and all(key.startswith("device=") for key in ranked[1:])
    scores = result.as_dict()
    assert 2 <= scores["country=FR"] <= 2.5
    assert all(1 <= scores[key] <= 1.5 for key in ranked[1:])
    # With one dimension reported, only its candidates are left.
    assert keys(run_rca(Adtributor(max_dimensions=1), total, related, 3, anomalies)) == [
        "country=FR"
    ]


def explains(related: list[TimeSeries], key: str, at: np.ndarray) -> float:
    """Share of the total's change (last points against the same time a day earlier) that the
    slice ``key`` accounts for: the paper's explanatory power."""
    now = np.isin(related[0].times, at)
    before = np.roll(now, -24)
    countries = [s for s in related if "country" in s.dimensions]
    change = sum(float(s.values[now].sum() - s.values[before].sum()) for s in countries)
    (root,) = [s for s in countries if s.key == key]
    return float(root.values[now].sum() - root.values[before].sum()) / change


@pytest.mark.parametrize(
    ("change", "wobble"),
    [(0.5, 1.25), (1.8, 1.3)],
    ids=["against-the-total", "less-than-half-with-it"],
)
def test_adtributor_finds_a_root_cause_that_explains_less_than_half_the_change(
    change: float, wobble: float
) -> None:
    """Every leaf also moves by a common factor: FR halves while the total rises (it explains a
    negative share), or FR rises by 80 % but the wobble of the big US and DE carries more of the
    total's change than FR does. FR is still the element that moved against its dimension."""
    total, related, anomalies = cube_case({"FR": change}, wobble=wobble)
    assert explains(related, "country=FR", anomalies) < 0.5
    assert keys(run_rca(Adtributor(), total, related, 3, anomalies))[0] == "country=FR"


def test_adtributor_reports_two_elements_of_one_dimension_together() -> None:
    total, related, anomalies = cube_case({"DE": 2.0, "FR": 2.5})
    ranked = keys(run_rca(Adtributor(), total, related, 5, anomalies))
    assert set(ranked[:2]) == {"country=DE", "country=FR"}


def test_adtributor_without_anomaly_times_explains_the_last_point() -> None:
    total, related, _ = cube_case({"DE": 0.1})
    assert keys(run_rca(Adtributor(), total, related, 3, []))[0] == "country=DE"
    median = Adtributor(forecast="median")
    assert keys(run_rca(median, total, related, 3, []))[0] == "country=DE"


def test_surprise_and_deviation_match_a_hand_calculation() -> None:
    # Forecast 60/40, actual 30/40: p = (0.6, 0.4), q = (3/7, 4/7).
    p, q = (0.6, 0.4), (3 / 7, 4 / 7)

    def term(a: float, b: float) -> float:
        return 0.5 * (a * math.log(2 * a / (a + b)) + b * math.log(2 * b / (a + b)))

    surprise = js_surprise(np.array(p), np.array(q))
    assert surprise == pytest.approx([term(p[0], q[0]), term(p[1], q[1])], rel=1e-12)
    # By hand: m = 0.6 + 3/7 = 1.028571; 0.6 ln(1.2/m) = 0.6 * 0.154151 = 0.092491;
    # (3/7) ln((6/7)/m) = 0.428571 * -0.182322 = -0.078138; half the sum = 0.0071763.
    assert surprise[0] == pytest.approx(0.0071763, abs=1e-6)
    # 0 log 0 = 0: an element that appears from nothing.
    assert js_surprise(np.array([0.0, 1.0]), np.array([0.5, 0.5]))[0] == pytest.approx(
        0.25 * math.log(2)
    )
    # Weights are the mean shares, changes the log ratios: w = (0.514286, 0.485714),
    # l = (ln 0.5, 0).
    measured = deviations(np.array([60.0, 40.0]), np.array([30.0, 40.0]))
    assert measured is not None
    assert measured.weight.tolist() == pytest.approx([(0.6 + 3 / 7) / 2, (0.4 + 4 / 7) / 2])
    assert measured.change.tolist() == pytest.approx([math.log(0.5), 0.0], abs=1e-8)
    # D(all) = w1 l1^2 - (w1 l1)^2 / (1 + 0.5) = 0.247087 - 0.127075 / 1.5 = 0.162370; without
    # US nothing deviates (US removes all of it), without DE 0.247087 - 0.127075 / 1.514286...
    # so US alone explains the dimension and is its one candidate: tier 1 + 1.0 / 2.
    times = hourly(2)
    us = np.full(times.shape[0], 60.0)
    us[-1] = 30.0
    related = [
        TimeSeries({"country": "US"}, times, us),
        TimeSeries({"country": "DE"}, times, np.full(times.shape[0], 40.0)),
    ]
    result = run_rca(Adtributor(), TimeSeries({}, times, us + 40), related, 3, times[-1:])
    assert result.contributions == (("country=US", pytest.approx(1.5)),)


def test_the_deviation_is_eight_times_the_surprise_for_small_changes() -> None:
    """Why the element measure is the paper's surprise in another guise: for a small change, the
    JS term is w * d**2 / 8, d the element's log change less the dimension's."""
    forecast = np.array([50.0, 30.0, 20.0])
    actual = forecast * np.array([1.002, 0.999, 1.001])
    measured = deviations(forecast, actual)
    assert measured is not None
    total_change = math.log(actual.sum() / forecast.sum())
    quadratic = measured.weight * (measured.change - total_change) ** 2
    surprise = js_surprise(distribution(forecast), distribution(actual))
    assert surprise == pytest.approx(quadratic / 8, rel=0.01)


def test_adtributor_without_change_returns_nothing() -> None:
    times = hourly(3)
    flat = np.full(times.shape[0], 100.0)
    related = [TimeSeries({"country": c}, times, flat) for c in ("US", "DE", "FR")]
    total = TimeSeries({}, times, 3 * flat)
    for algorithm in (Adtributor(), Adtributor(forecast="median")):
        assert algorithm.simple_rca(total, related, 3, times[-2:], algorithm.params) == {}
    # A change that cancels out across a dimension is no change of the total either.
    up, down = flat.copy(), flat.copy()
    up[-1], down[-1] = 150.0, 50.0
    moved = [related[0]._replace(values=up), related[1]._replace(values=down), related[2]]
    assert run_rca(Adtributor(), total, moved, 3, times[-1:]).contributions == ()


def test_adtributor_copes_with_missing_negative_and_empty_slices() -> None:
    total, related, anomalies = cube_case({"US": 0.3})
    gappy = related[2].values.copy()
    gappy[-1] = np.nan  # FR misses one anomaly point
    odd = [
        related[0],
        related[1],
        TimeSeries({"country": "FR"}, related[2].times, gappy),
        TimeSeries({"country": "XX"}, related[0].times, np.full(related[0].times.shape[0], np.nan)),
        TimeSeries({"country": "YY"}, related[0].times[:0], related[0].values[:0]),
        TimeSeries({"country": "NEG"}, related[0].times, -np.ones(related[0].times.shape[0])),
        TimeSeries({"browser": "only_one"}, related[0].times, related[0].values),
        TimeSeries({}, related[0].times, total.values),
        *related[3:],
    ]
    result = run_rca(Adtributor(), total, odd, 10, anomalies)
    assert keys(result)[0] == "country=US"
    assert all(np.isfinite(score) for _, score in result.contributions)
    assert not {"country=XX", "country=YY", "browser=only_one", ""} & set(keys(result))


def test_adtributor_with_huge_magnitudes_stays_finite() -> None:
    total, related, anomalies = cube_case({"FR": 0.2})
    scaled = [s._replace(values=s.values * 1e305) for s in related]
    result = run_rca(Adtributor(), total, scaled, 5, anomalies)
    assert all(np.isfinite(score) for _, score in result.contributions)
    tiny = [s._replace(values=s.values * 1e-300) for s in related]
    assert keys(run_rca(Adtributor(), total, tiny, 5, anomalies))[0] == "country=FR"


def test_slices_with_several_keys_form_their_own_dimension() -> None:
    total, related, anomalies = cube_case({"FR": 0.2})
    combined = [
        TimeSeries({"country": "FR", "device": "all"}, s.times, s.values)
        if s.key == "country=FR"
        else s
        for s in related
    ]
    # FR is now the only element of ("country", "device"): a single-element dimension says nothing.
    ranked = keys(run_rca(Adtributor(), total, combined, 5, anomalies))
    assert "country=FR,device=all" not in ranked


def test_adtributor_on_empty_inputs() -> None:
    empty = TimeSeries({}, np.empty(0, dtype=np.int64), np.empty(0))
    assert run_rca(Adtributor(), empty, [], 3, []).contributions == ()
    one = empty._replace(dimensions={"a": "b"})
    assert run_rca(Adtributor(), empty, [one], 3, []).contributions == ()
    assert run_rca(Deviation(), empty, [one], 3, [5]).contributions == ()


# --- deviation ------------------------------------------------------------------------------------


def deviation_case(seed: int = 1) -> tuple[TimeSeries, list[TimeSeries], np.ndarray]:
    rng = np.random.default_rng(seed)
    times = T0 + 60 * np.arange(300, dtype=np.int64)
    quiet = 1000 + 50 * rng.standard_normal(300)  # big scale, moves 3 sigma
    quiet[-3:] += 150
    loud = 5 + 0.1 * rng.standard_normal(300)  # small scale, leaves its band by 12 sigma
    loud[-3:] += 1.2
    noise = 50 + 5 * rng.standard_normal(300)  # does nothing
    related = [
        TimeSeries({"host": "quiet"}, times, quiet),
        TimeSeries({"host": "loud"}, times, loud),
        TimeSeries({"host": "noise"}, times, noise),
    ]
    return TimeSeries({}, times, quiet + loud), related, times[-3:]


def test_deviation_ranks_the_metric_that_leaves_its_band_first() -> None:
    total, related, anomalies = deviation_case()
    result = run_rca(Deviation(aggregate="max"), total, related, 3, anomalies)
    assert keys(result) == ["host=loud", "host=quiet", "host=noise"]
    assert result.contributions[0][1] == pytest.approx(12, rel=0.2)
    mean = run_rca(Deviation(), total, related, 3, anomalies)  # the default: the mean
    assert keys(mean)[0] == "host=loud"
    assert mean.contributions[0][1] <= result.contributions[0][1]


def test_deviation_matches_nearby_timestamps_within_the_tolerance() -> None:
    total, related, anomalies = deviation_case()
    shifted = anomalies + 20  # 20 s off a 60 s grid
    assert run_rca(Deviation(), total, related, 3, shifted).contributions == ()
    result = run_rca(Deviation(tolerance_s=30), total, related, 3, shifted)
    assert keys(result)[0] == "host=loud"


def test_deviation_on_flat_missing_and_short_metrics() -> None:
    times = T0 + 60 * np.arange(20, dtype=np.int64)
    flat = np.full(20, 7.0)
    step = flat.copy()
    step[-1] = 8.0
    zeros = np.zeros(20)
    zeros[-1] = 1.0
    related = [
        TimeSeries({"m": "flat"}, times, flat),
        TimeSeries({"m": "step"}, times, step),
        TimeSeries({"m": "zeros"}, times, zeros),
        TimeSeries({"m": "nan"}, times, np.full(20, np.nan)),
        TimeSeries({"m": "short"}, times[-2:], step[-2:]),
        TimeSeries({"m": "huge"}, times, np.where(np.arange(20) == 19, 1e300, -1e300)),
    ]
    result = run_rca(Deviation(), TimeSeries({}, times, step), related, 10, [])
    scores = result.as_dict()
    assert set(scores) == {"m=flat", "m=step", "m=zeros", "m=huge"}
    assert scores["m=flat"] == 0
    assert scores["m=step"] == pytest.approx(1 / 7e-3)
    assert all(np.isfinite(list(scores.values())))


# --- both -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "target", "cls"),
    [
        ("adtributor", "warden_algos.algorithms.adtributor:Adtributor", Adtributor),
        ("deviation", "warden_algos.algorithms.deviation:Deviation", Deviation),
    ],
)
def test_registry_entries_load_and_keep_the_contract(name: str, target: str, cls: type) -> None:
    assert AlgorithmEntry(name, target, "built-in").load() is cls
    assert contract_problems(cls) == []
    assert "Use it" in cls.description() and "Do not use it" in cls.description()


def test_correlation_says_plainly_that_it_is_a_weak_baseline() -> None:
    """What ``describe correlation`` shows (summary and docstring): nobody should pick it to name
    a root cause without reading why it cannot."""
    assert Correlation.summary.startswith("Weak baseline")
    text = Correlation.description()
    assert "weak baseline" in text and "cannot tell a cause from" in text
    assert "Use it only as a baseline" in text and "Do not use it" in text


def test_algorithm_modules_stay_light() -> None:
    code = (
        "import sys, warden_algos.algorithms.adtributor, warden_algos.algorithms.deviation, "
        "warden_algos.evaluation.rca_synthetic\n"
        "print(sorted({'scipy', 'pandas', 'prophet', 'matplotlib'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (Adtributor, {"t_eep": -0.1}),
        (Adtributor, {"t_ep": 0}),
        (Adtributor, {"t_eep": 0.7, "t_ep": 0.6}),
        (Adtributor, {"forecast": "arima"}),
        (Adtributor, {"seasons": 0}),
        (Adtributor, {"season_s": "86400"}),
        (Adtributor, {"max_dimensions": 0}),
        (Adtributor, {"threshold": 1}),
        (Deviation, {"aggregate": "median"}),
        (Deviation, {"tolerance_s": -1}),
        (Deviation, {"min_baseline_points": 0}),
        (Deviation, {"min_relative_scale": 2}),
    ],
)
def test_bad_params_are_rejected(
    cls: type[Adtributor | Deviation], params: dict[str, object]
) -> None:
    with pytest.raises(InvalidParams):
        cls.from_params(params)


slices = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(["x", "y", "z"]),
        st.lists(
            st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")), st.just(0.0)),
            min_size=0,
            max_size=12,
        ),
    ),
    max_size=6,
    unique_by=lambda item: (item[0], item[1]),
)


@settings(max_examples=60, deadline=None)
@given(related=slices, anomalies=st.lists(st.integers(0, 14), max_size=4), pick=st.booleans())
def test_any_input_gives_finite_scores_for_known_keys(
    related: Sequence[tuple[str, str, list[float]]], anomalies: list[int], pick: bool
) -> None:
    series = [
        TimeSeries({dim: element}, T0 + HOUR * np.arange(len(values)), np.array(values))
        for dim, element, values in related
    ]
    moi = TimeSeries({}, T0 + HOUR * np.arange(5), np.ones(5))
    algorithm = Adtributor(forecast="median", season_s=HOUR) if pick else Deviation()
    result = run_rca(algorithm, moi, series, 5, T0 + HOUR * np.array(anomalies, dtype=np.int64))
    assert set(keys(result)) <= {s.key for s in series}
    assert all(np.isfinite(score) for _, score in result.contributions)


# --- the synthetic generator and the quality bar --------------------------------------------------


def test_generator_is_deterministic() -> None:
    first = generate_cases(Difficulty(), 3, seed=7)
    again = generate_cases(Difficulty(), 3, seed=7)
    other = generate_cases(Difficulty(), 3, seed=8)
    for a, b in zip(first, again, strict=True):
        assert a.root_causes == b.root_causes and a.factor == b.factor
        assert np.array_equal(a.anomalies, b.anomalies)
        assert np.array_equal(a.metric_of_interest.values, b.metric_of_interest.values)
        for sa, sb in zip(a.related_metrics, b.related_metrics, strict=True):
            assert sa.key == sb.key and np.array_equal(sa.values, sb.values)
    assert not np.array_equal(
        first[0].metric_of_interest.values, other[0].metric_of_interest.values
    )


def test_generated_slices_add_up_and_the_truth_is_consistent() -> None:
    difficulty = Difficulty()
    for case in generate_cases(difficulty, 5, seed=3):
        total = case.metric_of_interest.values
        assert total.shape == (difficulty.n_points,) and np.all(total > 0)
        by_dimension: dict[str, np.ndarray] = {}
        for series in case.related_metrics:
            (dimension,) = series.dimensions
            by_dimension[dimension] = by_dimension.get(dimension, 0) + series.values
        assert len(by_dimension) == difficulty.n_dimensions
        for summed in by_dimension.values():
            np.testing.assert_allclose(summed, total, rtol=1e-9)
        keys_ = {series.key for series in case.related_metrics}
        assert set(case.root_causes) <= keys_ and 1 <= len(case.root_causes) <= 2
        assert {key.split("=")[0] for key in case.root_causes} == {case.root_dimension}
        assert np.isin(case.anomalies, case.metric_of_interest.times).all()
        assert abs(case.total_effect) >= difficulty.min_total_effect
        # The root cause really moved at the anomaly times.
        root = sum(s.values for s in case.related_metrics if s.key in case.root_causes)
        at = np.isin(case.metric_of_interest.times, case.anomalies)
        day = 86_400 // difficulty.interval_s
        before = root[np.flatnonzero(at) - day]
        assert np.sign(np.mean(root[at] - before)) == np.sign(case.factor - 1)


def test_difficulty_rejects_inconsistent_settings() -> None:
    with pytest.raises(ValidationError):
        Difficulty(values_per_dimension=(5, 3))
    with pytest.raises(ValidationError):
        Difficulty(drop_range=(0.5, 1.2))
    with pytest.raises(ValidationError):
        Difficulty(n_points=100)  # less than a day at 10 minutes
    with pytest.raises(ValidationError):
        Difficulty.model_validate({"noise": 0.1})


def test_adtributor_meets_the_quality_bar_on_generated_cases() -> None:
    cases = generate_cases(Difficulty(), 60, seed=0)
    shape = describe_cases(cases)
    assert 0.02 < shape["total_forecast_error"] < 0.06  # the documented noise level holds
    score = evaluate_rca(Adtributor, {}, cases)
    assert score.n_cases == 60
    assert score.top1 >= 0.9
    assert score.top3 >= 0.97
    assert score.complete_top3 <= score.top3 and score.wall_s > 0
