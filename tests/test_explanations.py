"""Explanations (``include_explanations``): every built-in detector's detections can each say why
they fired, the same way over every wire format; asking for them changes nothing else; what a
plugin attaches is checked like the rest of its answer; and nobody pays for them by default."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.algorithms.one_class_svm import OneClassSVM
from warden_algos.dispatcher import Dispatcher
from warden_algos.interfaces import (
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    Explanation,
    F64Array,
    I64Array,
    explanations_wanted,
    run_detect,
    run_detect_next,
    run_fit,
)
from warden_algos.interfaces.explain import band_units
from warden_algos.interfaces.run_matrix import run_detect_matrix
from warden_algos.registry import BUILTIN_ALGORITHMS, Registry, is_detect
from warden_algos.wire import DetectPayload, Request, get_codec

T0 = 1_700_000_000
REGISTRY = Registry.discover()
DETECTORS = [
    name for name in BUILTIN_ALGORITHMS if name != "prophet" and is_detect(REGISTRY.load(name))
]
FORMATS = ["json", "thrift-binary", "thrift-compact"]
#: Defaults, but a window that leaves level_shift enough points after the shift.
PARAMS = {"level_shift": {"window": 100}}


def daily(n: int = 2016, step: int = 600) -> tuple[I64Array, F64Array]:
    """Two weeks of 10-minute points with a daily cycle, a spike, a dip of three points and a
    level shift near the end."""
    rng = np.random.default_rng(7)
    times = T0 + step * np.arange(n, dtype=np.int64)
    values = 100 + 10 * np.sin(2 * np.pi * times / 86_400) + rng.normal(0, 0.5, n)
    values[1500] += 40
    values[1700:1703] -= 30
    values[1900:] += 60
    return times, values


def build(name: str, params: dict[str, Any] | None = None) -> Any:
    cls = REGISTRY.load(name)
    return cls(cls.validate_params(params or {}))


@pytest.fixture(scope="module")
def series() -> tuple[I64Array, F64Array]:
    return daily()


@pytest.mark.parametrize("name", DETECTORS)
def test_every_detector_explains_each_detection_and_nothing_else_changes(
    name: str, series: tuple[I64Array, F64Array]
) -> None:
    times, values = series
    plain = run_detect(build(name, PARAMS.get(name)), times, values)
    explained = run_detect(build(name, PARAMS.get(name)), times, values, explain=True)
    assert plain.explanations is None
    assert explained.timestamps.tolist() == plain.timestamps.tolist()
    assert explained.scores.tolist() == plain.scores.tolist()
    for band in ("expected", "lower", "upper"):
        a, b = getattr(plain, band), getattr(explained, band)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)
    assert plain.timestamps.size, f"{name} found nothing on a series with a spike"
    assert explained.explanations is not None
    assert len(explained.explanations) == explained.timestamps.size
    for at, one in zip(explained.timestamps.tolist(), explained.explanations, strict=True):
        assert one.peak is not None and one.last is not None and one.points is not None
        assert at <= one.peak <= one.last
        position = int(np.searchsorted(times, one.peak))
        assert times[position] == one.peak
        assert one.actual == pytest.approx(values[position])
        if explained.expected is not None and np.isfinite(explained.expected[position]):
            assert one.expected == explained.expected[position]
        if one.band_units is not None and one.upper is not None and one.actual > one.upper:
            assert one.band_units > 1  # outside the band is more than one half-width away
        assert one.reason and len(one.reason) <= 500


def test_a_spike_is_explained_in_band_units_beyond_the_band(
    series: tuple[I64Array, F64Array],
) -> None:
    times, values = series
    result = run_detect(KSigma({"window": 60, "k": 4.0}), times, values, explain=True)
    spike = [one for one in result.explanations or () if one.peak == int(times[1500])]
    assert len(spike) == 1
    one = spike[0]
    assert one.upper is not None and one.expected is not None
    assert one.band_units == pytest.approx((one.actual - one.expected) / (one.upper - one.expected))
    assert one.band_units > 2  # k = 4: the spike is some 9 sigma away
    assert "above the expected" in one.reason


def test_a_run_peaks_at_its_most_anomalous_point(series: tuple[I64Array, F64Array]) -> None:
    times, values = series
    values = values.copy()
    values[1700:1703] = [70.0, 40.0, 65.0]  # the middle point is the deepest
    result = run_detect(KSigma({"window": 60, "k": 3.0}), times, values, explain=True)
    dips = [one for one in result.explanations or () if one.last == int(times[1702])]
    assert len(dips) == 1 and dips[0].points == 3
    assert dips[0].peak == int(times[1701])
    assert dips[0].band_units is not None and dips[0].band_units < -1


def test_an_ensemble_names_the_members_that_voted(series: tuple[I64Array, F64Array]) -> None:
    times, values = series
    params = {
        "members": [
            {"algorithm": "ksigma", "params": {"window": 60, "k": 4.0}},
            {"algorithm": "level_shift"},
        ],
        "threshold": 0.5,
    }
    result = run_detect(build("ensemble", params), times, values, explain=True)
    assert result.explanations
    by_peak = {one.peak: one for one in result.explanations}
    spike = next(
        one
        for one in result.explanations
        if (one.peak or 0) - 1800 <= times[1500] <= (one.last or 0)
    )
    assert "ksigma" in spike.members
    for one in by_peak.values():
        assert one.members and set(one.members) <= {"ksigma", "level_shift"}
        assert "flagged by" in one.reason


def test_a_seasonal_detection_names_its_periods_and_phase(
    series: tuple[I64Array, F64Array],
) -> None:
    times, values = series
    result = run_detect(build("seasonal"), times, values, explain=True)
    assert result.explanations
    for one in result.explanations:
        context = dict(one.context)
        assert context["periods_s"] == "86400"
        assert int(context["phase_s"]) == (one.peak or 0) % 86_400


def test_a_state_streams_explanations_too(series: tuple[I64Array, F64Array]) -> None:
    times, values = series
    detector = KSigma({"window": 60, "k": 4.0})
    fitted = run_fit(detector, times[:1400], values[:1400])
    streamed, _ = run_detect_next(
        detector, times[1400:], values[1400:], fitted.state, explain=True, return_state=False
    )
    whole = run_detect(detector, times, values, explain=True)
    later = [one for one in whole.explanations or () if (one.peak or 0) >= times[1400]]
    assert streamed.explanations is not None
    assert [one.peak for one in streamed.explanations] == [one.peak for one in later]
    assert [one.band_units for one in streamed.explanations] == pytest.approx(
        [one.band_units for one in later]
    )


def machine(n: int = 1200) -> tuple[I64Array, F64Array]:
    rng = np.random.default_rng(0)
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    cycle = np.sin(np.arange(n) * 2 * np.pi / 288)
    matrix = np.column_stack([10 + cycle, 5 + 2 * cycle, 3 - cycle]) + rng.normal(0, 0.05, (n, 3))
    matrix[1100, 1] += 3.0
    return times, matrix


def test_a_matrix_detection_names_its_top_columns() -> None:
    times, matrix = machine()
    columns = ["inlet", "outlet", "fan"]
    result = run_detect_matrix(OneClassSVM({"sigmas": 6.0}), times, matrix, columns, explain=True)
    assert result.explanations is not None
    assert len(result.explanations) == result.timestamps.size
    spike = next(one for one in result.explanations if one.peak == int(times[1100]))
    assert spike.columns[0][0] == "outlet"
    shares = [share for _, share in spike.columns]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    assert spike.actual == pytest.approx(matrix[1100, 1])
    assert "driven by outlet" in spike.reason


def ask(format_name: str, request: Request, registry: Registry | None = None) -> Any:
    d = Dispatcher(get_codec(format_name), registry=registry)
    body, _ = d.handle(d.codec.encode_request(request))
    return d, d.codec.decode_response(body), body


@pytest.mark.parametrize("packed", [False, True], ids=["lists", "packed"])
def test_every_format_carries_the_same_explanations(
    packed: bool, series: tuple[I64Array, F64Array]
) -> None:
    times, values = series
    payload = DetectPayload(["host=a"], times, values)
    request = Request(
        "detect", "ensemble", payload, {}, packed_arrays=packed, include_explanations=True
    )
    answers = [ask(name, request)[1] for name in FORMATS]
    expected = run_detect(build("ensemble"), times, values, explain=True).explanations
    assert expected
    for answer in answers:
        assert answer.ok, answer.error
        assert answer.result.explanations == expected
    matrix_times, matrix = machine()
    empty = np.empty(0)
    matrix_request = Request(
        "detect", "one_class_svm",
        DetectPayload([], matrix_times, empty, columns=["a", "b", "c"], matrix=matrix),
        {"sigmas": 6.0}, packed_arrays=packed, include_explanations=True,
    )  # fmt: skip
    explained = [ask(name, matrix_request)[1].result.explanations for name in FORMATS]
    assert explained[0] and explained[0] == explained[1] == explained[2]


def test_without_the_option_the_answer_has_no_explanations(
    series: tuple[I64Array, F64Array],
) -> None:
    times, values = series
    request = Request("detect", "ksigma", DetectPayload([], times, values), {"window": 60})
    _, answer, body = ask("json", request)
    assert answer.ok and answer.result.timestamps.size
    assert answer.result.explanations is None
    assert "explanations" not in orjson.loads(body)["detect"]
    _, with_them, body = ask("json", request._replace(include_explanations=True))
    assert len(orjson.loads(body)["detect"]["explanations"]) == with_them.result.timestamps.size


class LiarParams(DetectorParams):
    mode: str = "count"


class _Liar(DetectAlgorithm[LiarParams]):
    """Attaches whatever explanations its params say: the SDK must check them."""

    name = "test_liar"
    summary = "Attaches malformed explanations."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        flagged = timestamps[:2]
        mode = self.params.mode
        if mode == "many":
            many = np.ones(timestamps.shape[0], dtype=bool)
            return DetectResult.from_mask(timestamps, many, np.ones(timestamps.shape[0]))
        if not explanations_wanted():
            attached = None
        elif mode == "count":
            attached = (Explanation(),)  # two detections, one explanation
        elif mode == "members":
            attached = (Explanation(members=("m",) * 100_000),) * 2
        elif mode == "peak":
            attached = (Explanation(peak=int(timestamps[0]) + 1),) * 2
        else:
            attached = (BAD[mode](timestamps),) * 2
        return DetectResult(flagged, np.ones(2), explanations=attached)


#: What a careless plugin might attach, and the SDK must refuse (ALGORITHM_FAILED).
BAD: dict[str, Any] = {
    "number": lambda t: Explanation(actual="big"),
    "text_number": lambda t: Explanation(actual="1.5"),
    "bool": lambda t: Explanation(actual=True),
    "huge": lambda t: Explanation(last=2**70),
    "negative_points": lambda t: Explanation(points=-5),
    "too_many_points": lambda t: Explanation(points=5),
    "peak_after_last": lambda t: Explanation(peak=int(t[1]), last=int(t[0])),
    "surrogate": lambda t: Explanation(members=("\ud800",)),
    "context_dict": lambda t: Explanation(context={"ab": "x"}),
    "context_twice": lambda t: Explanation(context=(("a", "1"), ("a", "2"))),
    "nan_share": lambda t: Explanation(columns=(("a", float("nan")),)),
    "share_above_one": lambda t: Explanation(columns=(("a", 2.0),)),
}


@pytest.mark.parametrize("mode", ["count", "members", "peak", *BAD])
def test_a_plugins_malformed_explanations_are_algorithm_failed_and_the_process_answers_on(
    mode: str,
) -> None:
    registry = Registry.of([_Liar, KSigma])
    times = T0 + 60 * np.arange(10, dtype=np.int64)
    payload = DetectPayload([], times, np.ones(10))
    bad = Request("detect", "test_liar", payload, {"mode": mode}, include_explanations=True)
    for format_name in FORMATS:
        d, answer, body = ask(format_name, bad, registry)
        assert not answer.ok and answer.error.code.value == "ALGORITHM_FAILED", answer.error
        assert b"Traceback" not in body and len(body) < 2_000
    plain, _ = d.handle(d.codec.encode_request(bad._replace(include_explanations=False)))
    assert d.codec.decode_response(plain).ok  # without the option the extras are dropped
    after, _ = d.handle(d.codec.encode_request(Request("detect", "ksigma", payload, {})))
    assert d.codec.decode_response(after).ok


def test_an_answer_explains_at_most_ten_thousand_detections() -> None:
    registry = Registry.of([_Liar])
    times = T0 + 60 * np.arange(10_001, dtype=np.int64)
    payload = DetectPayload([], times, np.ones(times.shape[0]))
    request = Request("detect", "test_liar", payload, {"mode": "many"}, include_explanations=True)
    _, answer, _ = ask("json", request, registry)
    assert answer.error.code.value == "INVALID_INPUT"
    assert answer.error.field == "include_explanations" and "10000" in answer.error.message
    _, answer, _ = ask("json", request._replace(include_explanations=False), registry)
    assert answer.ok and answer.result.timestamps.size == 10_001


def test_millisecond_times_are_explained_too() -> None:
    times = 1_700_000_000_000 + 60_000 * np.arange(300, dtype=np.int64)  # year 55,000 in seconds
    values = np.sin(np.arange(300) / 5.0)
    values[200:203] = [9.0, 12.0, 9.0]
    result = run_detect(KSigma({"window": 60}), times, values, explain=True)
    run = [one for one in result.explanations or () if one.points == 3]
    assert run and times[200] <= (run[0].peak or 0) <= times[202] == run[0].last
    assert "a run of 3 points" in run[0].reason


def test_a_grid_step_of_fractional_seconds_gives_whole_periods_and_true_phases() -> None:
    step = 537  # 86,400 / 537 is no whole number of slots: the grid step is a fraction
    times = T0 + step * np.arange(2_400, dtype=np.int64)
    rng = np.random.default_rng(2)
    values = 10 * np.sin(2 * np.pi * times / 86_400) + rng.normal(0, 0.3, times.shape[0])
    values[2_000] += 25
    detector = build("seasonal", {"periods": [86_400]})
    batch = run_detect(detector, times, values, explain=True)
    spike = next(one for one in batch.explanations or () if one.peak == int(times[2_000]))
    assert dict(spike.context) == {"periods_s": "86400", "phase_s": str(int(times[2_000]) % 86_400)}
    fitted = run_fit(detector, times[:1_500], values[:1_500])
    streamed, _ = run_detect_next(
        detector, times[1_500:], values[1_500:], fitted.state, explain=True, return_state=False
    )
    again = next(one for one in streamed.explanations or () if one.peak == int(times[2_000]))
    assert again.context == spike.context


def test_a_warming_seasonal_stream_says_which_periods_it_used() -> None:
    times = T0 + 600 * np.arange(600, dtype=np.int64)  # four days: too few to decide periods
    values = 100 + 10 * np.sin(2 * np.pi * times / 86_400)
    values[500] += 60
    detector = build("seasonal")
    fitted = run_fit(detector, times[:100], values[:100])
    streamed, _ = run_detect_next(
        detector, times[100:], values[100:], fitted.state, explain=True, return_state=False
    )
    assert streamed.explanations
    assert all("periods_s" in dict(one.context) for one in streamed.explanations)


@settings(max_examples=200, deadline=None)
@given(
    expected=st.floats(-1e6, 1e6),
    below=st.floats(1e-3, 1e3),
    above=st.floats(1e-3, 1e3),
    t=st.floats(-5, 5),
)
def test_band_units_are_one_at_the_edges_and_signed(
    expected: float, below: float, above: float, t: float
) -> None:
    lower, upper = expected - below, expected + above
    assert band_units(upper, expected, lower, upper) == pytest.approx(1.0)
    assert band_units(lower, expected, lower, upper) == pytest.approx(-1.0)
    actual = expected + t * (above if t >= 0 else below)
    got = band_units(actual, expected, lower, upper)
    assert got is not None and got == pytest.approx(t, abs=1e-6 * max(1, abs(expected)))
    assert band_units(actual, None, None, None) is None


def test_the_hot_path_never_loads_the_explanation_code() -> None:
    code = (
        "import sys, numpy as np\n"
        "from warden_algos.algorithms.ksigma import KSigma\n"
        "from warden_algos.interfaces import run_detect\n"
        "t = np.arange(100, dtype=np.int64); v = np.sin(t / 5.0); v[50] = 9\n"
        "assert run_detect(KSigma(), t, v).timestamps.size\n"
        "print('warden_algos.interfaces.explain' in sys.modules)\n"
        "run_detect(KSigma(), t, v, explain=True)\n"
        "print('warden_algos.interfaces.explain' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["False", "True"]


def _runs_by_hand(flags: list[bool], scores: list[float]) -> tuple[list[int], ...]:
    starts, ends, peaks = [], [], []
    i = 0
    while i < len(flags):
        if not flags[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(flags) and flags[j + 1]:
            j += 1
        run = np.array(scores[i : j + 1])
        peak = i if np.isnan(run).all() else i + int(np.nanargmax(run))  # first of ties
        starts.append(i), ends.append(j), peaks.append(peak)
        i = j + 1
    return starts, ends, peaks


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.one_of(st.floats(allow_infinity=False, width=16), st.sampled_from([1.0, 2.0])),
        ),
        max_size=40,
    )
)
def test_runs_start_end_and_peak_where_a_hand_count_says(pairs: list[tuple[bool, float]]) -> None:
    from warden_algos.interfaces.runs import flag_runs

    flags, scores = [flag for flag, _ in pairs], [score for _, score in pairs]
    runs = flag_runs(np.array(flags, dtype=bool), np.array(scores, dtype=np.float64))
    assert (runs.starts.tolist(), runs.ends.tolist(), runs.peaks.tolist()) == _runs_by_hand(
        flags, scores
    )
