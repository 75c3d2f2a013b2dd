"""The author-facing contract: params, validation, result checks, and the pandas convenience."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from warden_algos.algorithms.correlation import Correlation
from warden_algos.algorithms.ksigma import KSigma, KSigmaParams
from warden_algos.interfaces import (
    DetectResult,
    InvalidInput,
    InvalidParams,
    RCAResult,
    TimeSeries,
    run_detect,
    run_rca,
)
from warden_algos.interfaces.errors import AlgorithmFailed
from warden_algos.interfaces.pandas_api import detect_series, to_time_series
from warden_algos.interfaces.validation import check_detect_result
from warden_algos.testing import check_algorithm

T0 = 1_700_000_000

#: What an algorithm author imports from ``warden_algos.interfaces``: base classes, data types, the
#: errors an author raises or catches, and the runners for their own unit tests. The SDK's own
#: names come from the submodules; adding one here is a decision, not an accident.
AUTHOR_NAMES = {
    "DependencyGraph",
    "rca_graph",
    "Algorithm",
    "AlgorithmParams",
    "DetectAlgorithm",
    "DetectorParams",
    "NoParams",
    "RCAAlgorithm",
    "DetectResult",
    "RCAResult",
    "TimeSeries",
    "F64Array",
    "I64Array",
    "ErrorCode",
    "InvalidInput",
    "InvalidParams",
    "WardenError",
    "run_detect",
    "run_rca",
    "TrainableDetector",
    "AlgorithmState",
    "StateArray",
    "run_fit",
    "run_detect_next",
    "Explanation",
    "explanations_wanted",
}


def test_the_package_exports_exactly_what_authors_use() -> None:
    import types

    import warden_algos.interfaces as interfaces

    assert sorted(interfaces.__all__) == sorted(AUTHOR_NAMES)  # sorted: no name listed twice
    public = {
        name
        for name, value in vars(interfaces).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == AUTHOR_NAMES  # nothing importable from the package beyond __all__


def test_params_are_declared_up_front_like_sklearn() -> None:
    assert KSigma().params == KSigmaParams()
    algo = KSigma(window=30, k=2.5)
    assert algo.get_params()["window"] == 30
    assert repr(algo) == "KSigma(window=30, k=2.5)"
    assert KSigma({"window": 30}).params.window == 30


@pytest.mark.parametrize(
    ("params", "field"),
    [({"window": 1}, "params.window"), ({"k": "3"}, "params.k"), ({"kk": 3}, "params.kk")],
)
def test_bad_params_raise_invalid_params_naming_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        KSigma(**params)
    assert caught.value.field == field


def test_params_accept_numpy_scalars_from_notebooks() -> None:
    assert KSigma(window=np.int64(12)).params.window == 12


@pytest.mark.parametrize(
    ("timestamps", "values", "field"),
    [
        ([1, 2, 2], [1.0, 2.0, 3.0], "detect.timestamps[2]"),
        ([3, 2, 1], [1.0, 2.0, 3.0], "detect.timestamps[1]"),
        ([1, 2, 3], [1.0, np.inf, 3.0], "detect.values[1]"),
        ([1, 2, 3], [1.0, -np.inf, 3.0], "detect.values[1]"),
        ([1, 2, 3], [1.0, 2.0], "detect.values"),
        ([1.5, 2, 3], [1.0, 2.0, 3.0], "detect.timestamps"),
        ([1, 2, 3], ["a", "b", "c"], "detect.values"),
    ],
)
def test_input_validation_names_field_and_index(timestamps, values, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as caught:
        run_detect(KSigma(), timestamps, values)
    assert caught.value.field == field


def test_nan_is_accepted_as_missing() -> None:
    values = np.r_[np.ones(30), np.nan, np.ones(30)]
    result = run_detect(KSigma(window=10), T0 + np.arange(61), values)
    assert result.timestamps.size == 0


def test_algorithms_receive_read_only_arrays() -> None:
    class Mutating(KSigma):
        def detect(self, dimensions, timestamps, values):  # type: ignore[no-untyped-def]
            values[0] = 1.0
            return super().detect(dimensions, timestamps, values)

    with pytest.raises(ValueError, match="read-only"):
        run_detect(Mutating(), T0 + np.arange(5), np.zeros(5))


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (DetectResult(np.array([T0 + 100]), np.array([1.0])), "not one of the input"),
        (DetectResult(np.array([T0 + 1, T0]), np.array([1.0, 2.0])), "increasing"),
        (DetectResult(np.array([T0]), np.array([np.inf])), "finite"),
        (DetectResult(np.array([T0]), np.array([1.0, 2.0])), "pair up"),
        (DetectResult(np.array([T0]), np.array([1.0]), expected=np.ones(3)), "shape"),
    ],
)
def test_malformed_results_are_algorithm_failures(result: DetectResult, message: str) -> None:
    with pytest.raises(AlgorithmFailed, match=message):
        check_detect_result(result, T0 + np.arange(5))


def test_ksigma_matches_a_naive_reference() -> None:
    rng = np.random.default_rng(5)
    n, window = 2000, 40
    values = 1e6 + rng.normal(0, 1, n)  # large level, small noise: precision matters
    values[rng.choice(n, 100, replace=False)] = np.nan
    values[[500, 1500]] += 15
    result = run_detect(KSigma(window=window, k=4, min_periods=10), T0 + np.arange(n), values)
    expected = np.full(n, np.nan)
    std = np.full(n, np.nan)
    for i in range(n):
        past = values[max(0, i - window) : i]
        past = past[~np.isnan(past)]
        if past.size >= 10:
            expected[i] = past.mean()
            std[i] = past.std(ddof=1)
    assert result.expected is not None and result.upper is not None
    np.testing.assert_allclose(result.expected, expected, rtol=0, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(result.upper, expected + 4 * std, rtol=0, atol=1e-6, equal_nan=True)
    z = np.abs(values - expected) / std
    flagged = np.flatnonzero(np.nan_to_num(z) > 4)
    assert result.timestamps.tolist() == (T0 + flagged).tolist()
    assert {T0 + 500, T0 + 1500} <= set(result.timestamps.tolist())


def test_ksigma_flags_a_step_off_a_constant_series() -> None:
    values = np.r_[np.full(50, 5.0), 6.0, np.full(10, 5.0)]
    result = run_detect(KSigma(window=20), T0 + np.arange(61), values)
    assert result.timestamps.tolist() == [T0 + 50]


def test_correlation_ranks_the_injected_cause_first() -> None:
    rng = np.random.default_rng(2)
    n = 300
    times = T0 + 60 * np.arange(n)
    incident = np.zeros(n)
    incident[200:215] = 1
    causes = {
        "db": 10 + rng.normal(0, 1, n) + 20 * incident,
        "cache": 10 + rng.normal(0, 1, n) - 6 * incident,
        "idle": 10 + rng.normal(0, 1, n),
    }
    moi = TimeSeries({"svc": "api"}, times, 50 + causes["db"] + rng.normal(0, 1, n))
    related = [TimeSeries({"dep": k}, times, v) for k, v in causes.items()]
    result = run_rca(Correlation(window=10), moi, related, 3, times[[203, 210]])
    ranked = [key for key, _ in result.contributions]
    assert ranked[:2] == ["dep=db", "dep=cache"]  # cache moved opposite: |corr| counts
    signed = run_rca(Correlation(window=10, absolute=False), moi, related, 3, times[[203, 210]])
    assert signed.as_dict()["dep=cache"] < 0


def test_rca_truncates_to_k_and_breaks_ties_by_key() -> None:
    assert RCAResult.rank({"b": 1.0, "a": 1.0, "c": 0.5}, 2).contributions == (
        ("a", 1.0),
        ("b", 1.0),
    )


def test_rca_rejects_duplicate_related_keys() -> None:
    times = T0 + np.arange(10)
    series = TimeSeries({"a": "1"}, times, np.ones(10))
    with pytest.raises(InvalidInput, match="repeats"):
        run_rca(Correlation(), series, [series, series], 1, times[:1])


def test_builtins_pass_the_contract_checks() -> None:
    check_algorithm(KSigma)
    check_algorithm(Correlation)


def test_contract_checker_catches_a_stdout_writer_and_a_crash() -> None:
    class Noisy(KSigma):
        name = "noisy"

        def detect(self, dimensions, timestamps, values):  # type: ignore[no-untyped-def]
            print("hello")
            if values.size == 1:
                raise ZeroDivisionError("one point")
            return super().detect(dimensions, timestamps, values)

    with pytest.raises(AssertionError) as caught:
        check_algorithm(Noisy, registered=False)
    assert "check_stdout_untouched: wrote to stdout" in str(caught.value)
    assert "ZeroDivisionError: one point (on 'one point')" in str(caught.value)


def test_pandas_convenience_runs_a_detector_on_a_series() -> None:
    index = pd.date_range("2024-01-01", periods=200, freq="5min")
    values = pd.Series(np.sin(np.arange(200) / 10.0), index=index)
    values.iloc[120] = 9.0
    frame = detect_series(KSigma(window=30, k=5), values)
    assert list(frame.columns) == ["value", "is_anomaly", "score", "expected", "lower", "upper"]
    assert frame.index.equals(index)
    assert frame.index[frame["is_anomaly"]].tolist() == [index[120]]
    series = to_time_series(values, {"host": "a"})
    assert series.times[0] == int(pd.Timestamp("2024-01-01", tz="UTC").timestamp())


def test_pandas_convenience_requires_a_datetime_index() -> None:
    with pytest.raises(InvalidInput, match="DatetimeIndex"):
        detect_series(KSigma(), pd.Series([1.0, 2.0]))


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 100)), max_size=60))
def test_from_flags_reports_each_run_once_at_its_start(points: list[tuple[bool, float]]) -> None:
    flags = np.array([f for f, _ in points], dtype=bool)
    scores = np.array([s for _, s in points], dtype=np.float64)
    times = np.arange(len(points), dtype=np.int64) * 60
    result = DetectResult.from_flags(times, flags, scores)
    expected_times, expected_scores = [], []
    for i, flagged in enumerate(flags):
        if flagged and (i == 0 or not flags[i - 1]):
            expected_times.append(times[i])
            expected_scores.append(scores[i])
        elif flagged:
            expected_scores[-1] = max(expected_scores[-1], scores[i])
    assert result.timestamps.tolist() == expected_times
    assert result.scores.tolist() == expected_scores
    every = DetectResult.from_flags(times, flags, scores, every_point=True)
    assert every.timestamps.tolist() == times[flags].tolist()


def test_validated_params_are_shared_only_when_frozen_and_valid() -> None:
    """A stream sends the same params with every point: their JSON text is validated once per
    class and the frozen instance shared; a refused text is refused every time; an author's
    params model that is not frozen gets a fresh instance each time (one request's change
    could not reach another's)."""
    from pydantic import BaseModel

    from warden_algos.interfaces import DetectAlgorithm, DetectResult
    from warden_algos.interfaces.errors import InvalidParams

    first = KSigma.validate_params({"window": 31})
    assert KSigma.validate_params({"window": 31}) is first
    assert KSigma.validate_params({"window": 32}) is not first
    assert KSigma.validate_params({"window": 32}).window == 32
    for _ in range(2):
        with pytest.raises(InvalidParams, match="valid integer"):
            KSigma.validate_params({"window": "31"})

    class Mutable(BaseModel):
        window: int = 3

    class Loose(DetectAlgorithm[Mutable]):
        name = "loose_params"
        summary = "params that are not frozen"

        def detect(self, dimensions, timestamps, values):  # type: ignore[no-untyped-def]
            return DetectResult.from_flags(timestamps, values > 0, values)

    one, two = Loose.validate_params({"window": 4}), Loose.validate_params({"window": 4})
    assert one == two and one is not two
