"""The alerting stage (``params.alerting``): one calibrated scale and one sensitivity for every
detector, incidents that alert once (minimum duration, cool-down, re-baselining after a level
shift), refused clearly where it does not apply, and measured by ``evaluate``'s false-alarm rate."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.dispatcher import Dispatcher
from warden_algos.evaluation.corpus import load_corpus
from warden_algos.evaluation.runner import evaluate_algorithm
from warden_algos.interfaces import (
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
    InvalidInput,
    InvalidParams,
    run_detect,
    run_detect_next,
    run_fit,
)
from warden_algos.interfaces.alerting import AlertingState, find_alerts
from warden_algos.interfaces.alerting_params import AlertingParams, tail_probability
from warden_algos.interfaces.run_matrix import run_detect_matrix
from warden_algos.interfaces.run_state import load_state
from warden_algos.interfaces.state import encode_described
from warden_algos.interfaces.validation import check_detect_result
from warden_algos.registry import Registry
from warden_algos.wire import DetectPayload, Request, get_codec

T0 = 1_700_000_000
REGISTRY = Registry.discover()


def noise(n: int, seed: int = 0) -> tuple[I64Array, F64Array]:
    rng = np.random.default_rng(seed)
    return T0 + 60 * np.arange(n, dtype=np.int64), rng.normal(0, 1, n)


def test_the_sensitivity_maps_to_one_tail_probability() -> None:
    assert tail_probability(0.0) == pytest.approx(1e-4)
    assert tail_probability(0.5) == pytest.approx(10**-2.5)
    assert tail_probability(1.0) == pytest.approx(0.1)
    assert AlertingParams().sensitivity == 0.75


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.normal(0, 1, n),
        lambda rng, n: rng.exponential(3.0, n),
        lambda rng, n: np.abs(rng.standard_t(3, n)) * 1000,
        lambda rng, n: rng.uniform(5, 6, n),
    ],
    ids=["normal", "exponential", "heavy_tailed", "uniform"],
)
def test_a_calibrated_score_means_the_same_whatever_the_scores_units(draw: Any) -> None:
    """Scores of four distributions and scales: at sensitivity 1 (1 in 10) the share of points
    that are candidates is about 1 in 10 for each, so a threshold means the same for all."""
    rng = np.random.default_rng(3)
    scores = draw(rng, 40_000)
    params = AlertingParams(
        sensitivity=1.0, only_flagged=False, rebaseline=0, min_history=200, quiet=1
    )
    alerts = find_alerts(scores, None, params)
    # quiet=1: an incident is one run of candidates, and each alerts: count them by its length.
    candidates = int((alerts.ends - alerts.starts + 1).sum())
    rate = candidates / (scores.size - params.min_history)
    assert 0.07 < rate < 0.13, rate
    assert np.all((alerts.calibrated >= 0.9 - 1e-9) & (alerts.calibrated < 1))


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(0.001, 1000),
    shift=st.floats(-1e6, 1e6),
    sensitivity=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_calibration_ignores_the_scores_scale_and_offset(
    scale: float, shift: float, sensitivity: float, seed: int
) -> None:
    """Ranks and the extrapolated tail's excesses over their mean are affine invariant: the same
    alerts, whatever a detector's units."""
    rng = np.random.default_rng(seed)
    scores = rng.gamma(2.0, 1.0, 3000)
    scores[[700, 1500, 2500]] += 15
    params = AlertingParams(sensitivity=sensitivity, only_flagged=False)
    plain = find_alerts(scores, None, params)
    moved = find_alerts(scores * scale + shift, None, params)
    assert np.array_equal(plain.at, moved.at)
    np.testing.assert_allclose(plain.calibrated, moved.calibrated, rtol=1e-6, atol=1e-9)


def shifted(n: int = 4000, at: int = 2500, by: float = 8.0) -> tuple[I64Array, F64Array]:
    times, values = noise(n, seed=11)
    values[at:] += by
    return times, values


def test_a_persistent_level_shift_alerts_once() -> None:
    """A shift of about the detector's threshold: the detector alone flaps on and off the new
    level; the stage alerts once and re-baselines."""
    times, values = shifted(by=4.5)
    values[3500] += 12  # a spike on the new level
    detector = {"window": 5000, "k": 4.0, "min_periods": 200}
    plain = run_detect(KSigma(**detector), times, values)
    assert (plain.timestamps >= times[2500]).sum() > 20
    staged = run_detect(KSigma(**detector, alerting={}), times, values, explain=True)
    late = staged.timestamps[staged.timestamps >= times[2500]]
    assert late.tolist()[-1] == int(times[3500]), staged.timestamps  # the spike, after...
    assert late.size == 2 and late[0] < times[2600]  # ...one alert for the shift
    assert staged.explanations is not None and staged.explanations[-2].points >= 15
    flapping = run_detect(KSigma(**detector, alerting={"rebaseline": 0, "quiet": 1}), times, values)
    assert (flapping.timestamps >= times[2500]).sum() > 5  # flapping, when quiet=1 splits it


def test_re_baselining_lets_the_new_level_alert_again() -> None:
    """Scores that step up for good: without re-baselining the step is one incident to the end,
    which swallows a spike on the new level; with it, the new level becomes the norm."""
    _, scores = noise(5000, seed=12)
    scores[2500:] += 10
    scores[3500] += 12
    params = {"only_flagged": False, "sensitivity": 0.0}
    staged = find_alerts(scores, None, AlertingParams(**params))
    assert staged.at[staged.at >= 2500].tolist() == [2500, 3500]
    assert staged.ends[staged.at == 2500].tolist() == [2500 + 29]  # confirmed at 30 points
    never = find_alerts(scores, None, AlertingParams(**params, rebaseline=0))
    assert never.at[never.at >= 2500].tolist() == [2500]
    assert never.ends[-1] == 4999


def test_an_incident_alerts_once_it_has_lasted_min_duration() -> None:
    times, values = noise(3000, seed=5)
    values[1000:1003] += 12  # three points
    values[2000:2010] += 12  # ten points
    params = {"alerting": {"min_duration": 5, "rebaseline": 0, "sensitivity": 0.5}}
    staged = run_detect(KSigma(window=300, k=4.0, **params), times, values)
    assert staged.timestamps.tolist() == [int(times[2004])]  # at its fifth point, not before
    quick = run_detect(KSigma(window=300, k=4.0, alerting={"rebaseline": 0}), times, values)
    assert int(times[1000]) in quick.timestamps and int(times[2000]) in quick.timestamps


def test_a_cooldown_holds_back_the_next_incident() -> None:
    times, values = noise(3000, seed=6)
    values[[1000, 1020, 1200]] += 15
    spikes = [int(times[i]) for i in (1000, 1020, 1200)]
    open_ = run_detect(KSigma(window=300, k=4.0, alerting={}), times, values)
    assert set(spikes) <= set(open_.timestamps.tolist())
    held = run_detect(KSigma(window=300, k=4.0, alerting={"cooldown": 50}), times, values)
    kept = [t for t in held.timestamps.tolist() if t in spikes]
    assert kept == [spikes[0], spikes[2]]


def test_a_lower_sensitivity_never_adds_alerts_and_scores_are_calibrated() -> None:
    times, values = noise(6000, seed=8)
    values[[1500, 3000, 4500]] += [6, 9, 14]
    counts = []
    for sensitivity in (1.0, 0.75, 0.5, 0.0):
        staged = run_detect(
            KSigma(window=500, k=2.0, alerting={"sensitivity": sensitivity}), times, values
        )
        check_detect_result(staged, times)
        assert np.all(staged.scores >= 1 - tail_probability(sensitivity) - 1e-12)
        assert np.all(staged.scores < 1)
        counts.append(staged.timestamps.size)
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    strongest = run_detect(KSigma(window=500, k=2.0, alerting={"sensitivity": 0.0}), times, values)
    assert int(times[4500]) in strongest.timestamps.tolist()


def test_every_built_in_detector_takes_it_and_explains_its_alerts() -> None:
    times, values = shifted(3000, at=2000, by=10.0)
    values[1000] += 20
    for name in ("ksigma", "mad", "ewma", "seasonal", "novelty", "ensemble", "spectral_residual"):
        cls = REGISTRY.load(name)
        staged = run_detect(cls.from_params({"alerting": {}}), times, values, explain=True)
        check_detect_result(staged, times)
        assert staged.explanations is not None
        assert len(staged.explanations) == staged.timestamps.size
        for at, why in zip(staged.timestamps.tolist(), staged.explanations, strict=True):
            assert at <= why.peak <= why.last and why.points >= 1
        assert int(times[1000]) in staged.timestamps.tolist(), name


class _Banded(DetectAlgorithm[DetectorParams]):
    """Builds its result by hand, with a band and no per-point scores offered."""

    name = "test_banded"
    summary = "test"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> Any:
        n = timestamps.shape[0]
        flagged = np.abs(values) > 3
        return DetectResult(
            timestamps[flagged], np.abs(values[flagged]), np.zeros(n), -np.ones(n), np.ones(n)
        )


class _Bare(_Banded):
    name = "test_bare"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> Any:
        return DetectResult(timestamps[:0], values[:0])


def test_a_result_without_point_scores_is_calibrated_on_its_band_or_refused() -> None:
    times, values = noise(3000, seed=9)
    values[2000] += 30
    banded = run_detect(_Banded(alerting={"sensitivity": 0.0}), times, values)
    assert banded.timestamps.tolist() == [int(times[2000])]
    with pytest.raises(InvalidParams) as refused:
        run_detect(_Bare(alerting={}), times, values)
    assert refused.value.field == "params.alerting" and "no per-point scores" in str(refused.value)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"every_point": True, "alerting": {}}, "params"),
        ({"alerting": {"sensitivity": 2}}, "params.alerting.sensitivity"),
        ({"alerting": {"min_history": 3000, "window": 2000}}, "params.alerting"),
        ({"alerting": {"cooldwn": 5}}, "params.alerting.cooldwn"),
        ({"alerting": {"window": 10**9}}, "params.alerting.window"),
    ],
)
def test_bad_alerting_params_are_invalid_params_and_serve_answers_on(
    params: dict[str, Any], field: str
) -> None:
    times, values = noise(200)
    payload = DetectPayload([], times, values)
    for format_name in ("json", "thrift-binary"):
        d = Dispatcher(get_codec(format_name))
        body, _ = d.handle(d.codec.encode_request(Request("detect", "ksigma", payload, params)))
        answer = d.codec.decode_response(body)
        assert not answer.ok and answer.error.code.value == "INVALID_PARAMS", answer
        assert answer.error.field == field, answer.error
        assert b"Traceback" not in body
        good = Request("detect", "ksigma", payload, {"alerting": {}})
        after, _ = d.handle(d.codec.encode_request(good))
        assert d.codec.decode_response(after).ok


def test_the_wire_answers_alerts_in_every_format() -> None:
    times, values = shifted(3000, at=2000)
    payload = DetectPayload([], times, values)
    request = Request("detect", "ksigma", payload, {"alerting": {}})
    expected = run_detect(KSigma(alerting={}), times, values)
    for format_name in ("json", "thrift-binary", "thrift-compact"):
        d = Dispatcher(get_codec(format_name))
        body, _ = d.handle(d.codec.encode_request(request))
        answer = d.codec.decode_response(body)
        assert answer.ok
        assert answer.result.timestamps.tolist() == expected.timestamps.tolist()
        np.testing.assert_allclose(answer.result.scores, expected.scores)


def test_matrices_refuse_it_clearly() -> None:
    times, values = noise(500)
    matrix = np.column_stack([values, values[::-1]])
    svm = REGISTRY.load("one_class_svm").from_params({"alerting": {}})
    with pytest.raises(InvalidParams) as matrixed:
        run_detect_matrix(svm, times, matrix, ["a", "b"])
    assert matrixed.value.field == "params.alerting" and "matrix" in str(matrixed.value)


def test_its_cost_is_in_the_request_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    times, values = noise(200_000)
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MOPS", "300")
    run_detect(KSigma(), times, values)  # the detector alone fits
    with pytest.raises(InvalidInput) as over:
        run_detect(KSigma(alerting={}), times, values)
    assert "WARDEN_MAX_REQUEST_MOPS" in str(over.value)


def test_evaluate_counts_false_alarms_on_normal_stretches(tmp_path: Path) -> None:
    """One file of 1,000 rows, a window at rows 600-699: the first 150 rows are probation, so
    750 rows are normal; a detection on a normal row is a false alarm."""
    data, labels = tmp_path / "data" / "synthetic", tmp_path / "labels"
    data.mkdir(parents=True)
    labels.mkdir()
    rng = np.random.default_rng(2)
    values = rng.normal(0, 1, 1000)
    values[[300, 500, 650]] += 40
    stamps = [f"2024-01-01 {i // 60:02d}:{i % 60:02d}:00" for i in range(1000)]
    (data / "one.csv").write_text(
        "timestamp,value\n" + "".join(f"{s},{v}\n" for s, v in zip(stamps, values, strict=True))
    )
    (labels / "combined_windows.json").write_text(
        f'{{"synthetic/one.csv": [["{stamps[600]}.000000", "{stamps[699]}.000000"]]}}'
    )
    corpus = load_corpus(tmp_path)
    evaluation = evaluate_algorithm("ksigma", {"window": 100, "k": 8.0}, corpus)
    overall = evaluation.overall
    assert overall.normal_points == 1000 - 150 - 100
    assert overall.false_alarms == 2 and overall.windows_found == 1
    assert overall.false_alarms_per_1000 == pytest.approx(1000 * 2 / 750)
    assert overall.as_dict()["false_alarms_per_1000"] == pytest.approx(1000 * 2 / 750)
    staged = evaluate_algorithm("ksigma", {"window": 100, "k": 8.0, "alerting": {}}, corpus)
    assert staged.overall.detections <= overall.detections


@pytest.mark.parametrize(("sensitivity", "low", "high"), [(0.5, 250, 400), (0.0, 3, 20)])
def test_on_plain_noise_alerts_come_at_the_rate_the_sensitivity_says(
    sensitivity: float, low: int, high: int
) -> None:
    """100,000 Gaussian scores: about 316 alerts at 0.5 (1 in 316), about 10 at 0 (1 in 10,000,
    beyond what 2,000 points of history rank, so the extrapolated tail decides)."""
    _, scores = noise(100_000, seed=21)
    params = AlertingParams(sensitivity=sensitivity, only_flagged=False, quiet=1)
    assert low <= find_alerts(scores, None, params).at.size <= high


# --- streams: the stage's state rides in the detector's state -----------------------------------


def stream(
    name: str,
    times: I64Array,
    values: F64Array,
    cuts: list[int],
    alerting: dict[str, Any] | None,
) -> tuple[list[int], list[float], Any]:
    """Fit on the first 1,000 points without the stage, then score the rest in chunks cut at
    ``cuts`` with it (None: without); the alerts and the last state."""
    fitted = run_fit(REGISTRY.load(name).from_params({}), times[:1000], values[:1000])
    detector = REGISTRY.load(name).from_params({"alerting": alerting})
    state: Any = fitted.state
    alerted: list[int] = []
    scores: list[float] = []
    bounds = [1000, *sorted(set(cuts)), times.size]
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        result, after = run_detect_next(detector, times[lo:hi], values[lo:hi], state)
        check_detect_result(result, times[lo:hi])
        alerted += result.timestamps.tolist()
        scores += result.scores.tolist()
        state = after
    return alerted, scores, state


def streamed_series() -> tuple[I64Array, F64Array]:
    times, values = noise(4000, seed=31)
    values += 3 * np.sin(2 * np.pi * np.arange(4000) / 288)
    values[[1800, 2600]] += 14
    values[3000:] += 9
    return times, values


@settings(max_examples=8, deadline=None)
@given(cuts=st.lists(st.integers(1001, 3999), max_size=6))
def test_a_stream_cut_anywhere_alerts_as_one_call_does(cuts: list[int]) -> None:
    times, values = streamed_series()
    whole, whole_scores, whole_state = stream("ksigma", times, values, [], {})
    parts, part_scores, part_state = stream("ksigma", times, values, cuts, {})
    assert parts == whole and len(whole) >= 3
    # An alert's score is its incident's peak so far: one that a cut splits may have scored
    # higher in the part after the cut, never lower.
    assert all(p <= w + 1e-9 for p, w in zip(part_scores, whole_scores, strict=True))
    if not cuts:
        assert part_scores == whole_scores
    assert whole_state.alerting is not None
    # (ksigma's running sums round differently per chunking, by 1e-12)
    np.testing.assert_allclose(part_state.alerting.history, whole_state.alerting.history)
    assert part_state.alerting.position == whole_state.alerting.position == 3000


def test_a_streamed_level_shift_alerts_once_and_the_stage_rides_in_the_blob() -> None:
    """mad alone streamed in chunks of 50 alerts four times in the shift's first 20 points; with
    the stage, once."""
    times, values = streamed_series()
    cuts = list(range(1050, 4000, 50))
    alone, _, _ = stream("mad", times, values, cuts, None)
    assert sum(t >= times[3000] for t in alone) >= 3
    alerted, _, state = stream("mad", times, values, cuts, {})
    assert [t for t in alerted if t >= times[3000]] == [int(times[3000])]
    assert {int(times[1800]), int(times[2600])} <= set(alerted)
    reloaded = load_state(REGISTRY.load("mad").from_params({}), state.state)
    assert reloaded.alerting is not None and reloaded.alerting.position == 3000
    assert "alerting" not in reloaded.info.params  # the stage is not part of the model


def test_a_state_serves_with_or_without_the_stage() -> None:
    times, values = streamed_series()
    fitted = run_fit(KSigma(alerting={"sensitivity": 0.2}), times[:1000], values[:1000])
    plain = run_fit(KSigma(), times[:1000], values[:1000])
    assert fitted.state == plain.state  # fitting ignores the stage
    _, staged = run_detect_next(KSigma(alerting={}), times[1000:2000], values[1000:2000], plain)
    assert staged is not None and staged.alerting is not None
    _, dropped = run_detect_next(KSigma(), times[2000:3000], values[2000:3000], staged)
    assert dropped is not None and dropped.alerting is None  # its history would be stale
    again, _ = run_detect_next(KSigma(alerting={}), times[3000:], values[3000:], dropped.state)
    check_detect_result(again, times[3000:])


BAD_PARTS = {
    "nan_in_history": {"history": np.array([1.0, np.nan])},
    "history_too_long": {"history": np.zeros(10_001)},
    "int_history": {"history": np.arange(5, dtype=np.int64)},
    "out_of_order": {"open": True, "start": 50, "peak": 10, "last": 60},
    "beyond_position": {"last_alert": 10**9},
    "lowest_zero": {"lowest": 0.0},
}


@pytest.mark.parametrize("damage", sorted(BAD_PARTS))
def test_a_malformed_alerting_part_is_refused(damage: str) -> None:
    """A blob whose stage part does not fit, with a valid content hash (as a careless or
    hostile writer would make it): refused as INVALID_INPUT, never half-used."""
    times, values = streamed_series()
    detector = KSigma(alerting={})
    _, good = run_detect_next(
        detector,
        times[1000:2000],
        values[1000:2000],
        run_fit(KSigma(), times[:1000], values[:1000]),
    )
    assert good is not None and good.alerting is not None
    fields = {**good.alerting.__dict__, **BAD_PARTS[damage]}
    blob, _ = encode_described(
        "ksigma",
        detector.state_version,
        good.info.params,
        good.typed,
        good.info.seen,
        canonical=True,
        alerting=AlertingState.model_construct(**fields),
    )
    with pytest.raises(InvalidInput) as refused:
        run_detect_next(detector, times[2000:], values[2000:], blob)
    assert refused.value.field == "state" and "alerting" in str(refused.value)


def test_a_serve_process_streams_with_the_stage_over_json() -> None:
    """fit, then two detect calls each sending the state the previous returned, through one
    dispatcher (as serve runs them): the alerts a direct stream gives, and the second call
    resumes the stage (its state's position)."""
    times, values = streamed_series()
    d = Dispatcher(get_codec("json"))

    def call(request: dict[str, Any]) -> dict[str, Any]:
        body, _ = d.handle(orjson.dumps(request))
        answer: dict[str, Any] = orjson.loads(body)
        assert answer["status"] == "ok", answer
        return answer

    fit = call({"interface": "fit", "algorithm": "mad", "params": {}, "fit": {
        "timestamps": times[:1000].tolist(), "values": values[:1000].tolist()}})  # fmt: skip
    state, alerted = fit["fit"]["state"], []
    for lo, hi in ((1000, 2700), (2700, 4000)):
        answer = call({"interface": "detect", "algorithm": "mad", "params": {"alerting": {}},
                       "detect": {"timestamps": times[lo:hi].tolist(),
                                  "values": values[lo:hi].tolist(), "state": state,
                                  "return_state": True}})  # fmt: skip
        alerted += answer["detect"]["timestamps"]
        state = answer["detect"]["state"]
    direct, _, _ = stream("mad", times, values, [2700], {})
    assert alerted == direct
    reloaded = load_state(REGISTRY.load("mad").from_params({}), base64.b64decode(state))
    assert reloaded.alerting is not None and reloaded.alerting.position == 3000


def test_an_ensemble_hands_the_stage_its_members_calibrated_scores() -> None:
    """Not its vote share (a few levels): each member's per-point scores on the one scale, the
    most surprised member's -log10 tail probability."""
    from warden_algos.interfaces.alerting import tail_probabilities
    from warden_algos.interfaces.point_capture import capturing

    times, values = shifted(3000, at=2000, by=10.0)
    values[1000] += 20
    ensemble = REGISTRY.load("ensemble").from_params({"alerting": {}})
    with capturing() as slot:
        ensemble.detect([], times, values)
    assert slot.scores is not None and slot.flags is not None
    smallest = np.ones(times.size)
    for name in ("novelty", "seasonal"):
        with capturing() as own:
            REGISTRY.load(name).from_params({}).detect([], times, values)
        assert own.scores is not None
        smallest = np.minimum(smallest, tail_probabilities(own.scores, 2000, 100))
    np.testing.assert_allclose(slot.scores, -np.log10(smallest))
    assert np.unique(slot.scores).size > 100
    plain = run_detect(ensemble, times, values)
    assert slot.flags[np.isin(times, plain.timestamps)].all()  # the votes stay the flags


# --- edges (from review): grouping bounds, resumption everywhere, odd plugins, crafted states ---


def step_scores(n: int = 3000, seed: int = 41) -> F64Array:
    _, scores = noise(n, seed=seed)
    scores[[500, 1200, 1207, 1300]] += 12
    scores[2000:] += 20
    return scores


@pytest.mark.parametrize(
    "params",
    [
        {"min_duration": 50},  # longer than rebaseline: the shift still alerts, at its 50th
        {"cooldown": 100},  # the spike at 1950 holds the shift's alert back; it comes after
    ],
)
def test_an_incident_held_back_still_alerts_before_it_is_re_baselined(
    params: dict[str, Any],
) -> None:
    scores = step_scores()
    scores[1950] += 12
    alerts = find_alerts(scores, None, AlertingParams(only_flagged=False, sensitivity=0, **params))
    shift = alerts.at[(alerts.at >= 2000) & (alerts.at < 2200)].tolist()
    assert shift == [2049 if "min_duration" in params else 2051], alerts.at


def test_candidates_at_most_quiet_apart_are_one_incident() -> None:
    _, base = noise(2000, seed=3)
    for gap, incidents in ((10, 1), (11, 2)):
        scores = base.copy()
        scores[[1500, 1500 + gap]] = 50.0
        params = AlertingParams(only_flagged=False, sensitivity=0, rebaseline=0)
        assert find_alerts(scores, None, params).at.size == incidents, gap


def test_a_change_the_detector_flags_throughout_alerts_once() -> None:
    """Only some of a long flagged stretch's points are rare enough to be candidates, more than
    ``quiet`` apart: the detector's flags keep it one incident (seasonal alerted 601 times on one
    NAB file without this). Once the flags stop, the next flagged rarity is a new incident."""
    _, scores = noise(4000, seed=5)
    flags = np.zeros(scores.size, dtype=bool)
    flags[1500:2500] = True
    scores[1500:2500:25] += 30.0  # 40 candidates, 25 points apart, inside the flagged stretch
    scores[3000] += 300.0  # beyond what the stretch left in the history
    flags[3000] = True
    params = AlertingParams(sensitivity=0, rebaseline=0)
    assert find_alerts(scores, flags, params).at.tolist() == [1500, 3000]
    unflagged = find_alerts(scores, None, params.model_copy(update={"only_flagged": False}))
    assert unflagged.at.size > 5  # without the detector's flags, quiet alone splits it


def test_nan_and_infinite_scores_neither_alert_nor_break_the_history() -> None:
    scores = step_scores()
    scores[[100, 600, 1500]] = np.nan
    scores[[700, 1600]] = np.inf
    scores[[800, 1700]] = -np.inf
    alerts = find_alerts(scores, None, AlertingParams(only_flagged=False, sensitivity=0))
    assert not set(alerts.at.tolist()) & {100, 600, 1500, 800, 1700}
    assert {500, 1200, 2000} <= set(alerts.at.tolist())
    huge = step_scores() * 1e306  # excesses near float64's end: no overflow, still ranked
    huge[2500] = 1.7e308
    assert find_alerts(huge, None, AlertingParams(only_flagged=False)).at.size >= 1


def test_only_flagged_keeps_the_detectors_verdict() -> None:
    scores = step_scores()
    never = np.zeros(scores.size, dtype=bool)
    assert find_alerts(scores, never, AlertingParams(sensitivity=1)).at.size == 0
    some = never.copy()
    some[1200] = True
    assert find_alerts(scores, some, AlertingParams(sensitivity=0)).at.tolist() == [1200]


@pytest.mark.parametrize(
    "params",
    [{}, {"min_duration": 3, "quiet": 4}, {"cooldown": 40, "rebaseline": 5}, {"window": 50}],
    ids=["defaults", "min_duration", "cooldown", "short_window"],
)
def test_resuming_at_every_cut_gives_the_alerts_of_one_call(params: dict[str, Any]) -> None:
    from warden_algos.interfaces.alerting import resume_alerts

    scores = step_scores(2400)
    scores[1204:1215] += 12  # an incident long enough to be cut inside
    settings_ = AlertingParams(only_flagged=False, min_history=50, **params)
    whole = find_alerts(scores, None, settings_).at.tolist()
    for cut in range(1, scores.size, 37):
        first, state = resume_alerts(scores[:cut], None, settings_, None)
        stored = AlertingState.model_validate(state.model_dump())  # as a blob would bring it
        second, _ = resume_alerts(scores[cut:], None, settings_, stored)
        assert first.at.tolist() + (second.at + cut).tolist() == whole, cut


class _Flagger(DetectAlgorithm[DetectorParams]):
    """from_flags given flags built from a plain list, as a careless plugin may."""

    name = "test_flagger"
    summary = "test"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> Any:
        flags = [bool(abs(v) > 4) for v in values.tolist()]
        return DetectResult.from_flags(timestamps, np.asarray(flags), np.abs(values))


class _Delegating(_Banded):
    """Runs another detector on a shifted copy (its from_flags offers those scores), then
    answers with its own band: the stage must calibrate the answer it gives."""

    name = "test_delegating"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> Any:
        KSigma(window=100).detect(dimensions, timestamps, np.roll(values, 100))
        return super().detect(dimensions, timestamps, values)


def test_the_stage_calibrates_the_answer_a_plugin_gives() -> None:
    times, values = noise(3000, seed=9)
    values[2000] += 30
    flagged = run_detect(_Flagger(alerting={"sensitivity": 0}), times, values)
    assert flagged.timestamps.tolist() == [int(times[2000])]
    delegated = run_detect(_Delegating(alerting={"sensitivity": 0}), times, values)
    assert delegated.timestamps.tolist() == [int(times[2000])]  # not the copy's 2100


class _Named(DetectAlgorithm[Any]):
    """A plugin whose own param is called ``alerting`` (a flag, not the stage's block)."""

    name = "test_named"
    summary = "test"

    class Params(DetectorParams.__base__):  # type: ignore[misc,name-defined]
        alerting: bool = True

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> Any:
        return DetectResult.from_flags(timestamps, np.abs(values) > 3, np.abs(values))


def test_a_plugins_own_alerting_param_is_its_own() -> None:
    times, values = noise(500)
    values[300] += 10
    assert int(times[300]) in run_detect(_Named(), times, values).timestamps.tolist()
    fitted_params = _Named().get_params()
    from warden_algos.interfaces.state import canonical_params

    assert canonical_params(fitted_params) == {"alerting": True}


MORE_BAD_PARTS = {
    "alerted_while_closed": {"open": False, "alerted": True},
    "held_while_closed": {"open": False, "held": np.ones(3)},
    "tiny_lowest": {"lowest": 1e-300},
    "huge_position": {"position": 2**63 - 1},
    "f32_history": {"history": np.ones(5, dtype=np.float32)},
    "two_d_history": {"history": np.ones((2, 2))},
    "held_too_long": {"open": True, "held": np.ones(10_001)},
    "more_candidates_than_span": {
        "open": True,
        "start": 10,
        "peak": 10,
        "last": 12,
        "candidates": 9,
        "run": 1,
    },
}


@pytest.mark.parametrize("damage", sorted(MORE_BAD_PARTS))
def test_more_malformed_alerting_parts_are_refused(damage: str) -> None:
    BAD_PARTS[damage] = MORE_BAD_PARTS[damage]
    try:
        test_a_malformed_alerting_part_is_refused(damage)
    finally:
        del BAD_PARTS[damage]


def test_alerting_arrays_without_their_part_and_other_versions() -> None:
    from warden_algos.interfaces.state import decode_state

    times, values = streamed_series()
    detector = KSigma(alerting={})
    fitted = run_fit(KSigma(), times[:1000], values[:1000])
    _, good = run_detect_next(detector, times[1000:2000], values[1000:2000], fitted)
    assert good is not None and good.alerting is not None
    # A future version of the stage's part: set aside, the stage starts afresh (no error).
    future = AlertingState.model_construct(**{**good.alerting.__dict__, "version": 99})
    blob, _ = encode_described(
        "ksigma", detector.state_version, good.info.params, good.typed, good.info.seen,
        canonical=True, alerting=future,
    )  # fmt: skip
    assert load_state(detector, blob).alerting is None
    # Stage arrays with no stage part: refused before anything is used.
    orphan, _ = encode_described(
        "ksigma", detector.state_version, good.info.params, good.typed, good.info.seen,
        canonical=True,
    )  # fmt: skip
    assert decode_state(orphan).alerting is None
    with pytest.raises(InvalidInput):
        decode_state(_with_array(orphan, "alerting.history"))


def _with_array(blob: bytes, name: str) -> bytes:
    """``blob`` with one more float64 array, its content hash recomputed (a careful forger)."""
    import hashlib

    from warden_algos.interfaces import state as state_module

    header_length = int.from_bytes(blob[:8], "little")
    header = orjson.loads(blob[8 : 8 + header_length])
    meta = orjson.loads(header["__metadata__"]["warden"])
    arrays = {
        key: np.frombuffer(blob[8 + header_length :][v["data_offsets"][0] : v["data_offsets"][1]])
        for key, v in header.items()
        if key != "__metadata__"
    }
    arrays[name] = np.ones(3)
    claimed = meta.pop("content_sha256")
    assert claimed
    as_bytes = {key: state_module._array_bytes(value) for key, value in arrays.items()}
    meta["content_sha256"] = state_module._content_sha256(meta, as_bytes)
    text = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS).decode()
    assert hashlib.sha256(text.encode()).hexdigest()
    return state_module._safetensors_bytes(as_bytes, text)
