"""The prophet detector trained: fit once on a history, then score new points with the stored
model (no refit), in process and over the wire, with refusals for damaged models.

Prophet fits are slow (a cmdstan process each), so the series are three weeks of hourly points and
most tests share one fitted state (``fitted``); scoring with a state is milliseconds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from prophet.serialize import model_from_json, model_to_json

from warden_algos.algorithms.prophet_forecast import (
    ProphetDetector,
    _fit_points,
    _predict,
    _robust_model,
)
from warden_algos.algorithms.prophet_state import (
    MAX_MODEL_JSON_CHARS,
    ProphetState,
    compact_model_json,
    holiday_calendar,
    read_model,
)
from warden_algos.dispatcher import Dispatcher
from warden_algos.extras import EXTRAS
from warden_algos.interfaces import DetectResult, WardenError
from warden_algos.interfaces.run_state import Fitted, load_state, run_detect_next, run_fit
from warden_algos.interfaces.state import Seen, encode_state
from warden_algos.registry import Registry
from warden_algos.wire import DetectPayload, Request, get_codec
from warden_algos.wire.envelope import FitPayload

from .conftest import cli

HOUR = 3600
START = 1_600_000_000 - 1_600_000_000 % 86_400  # a midnight, UTC
NOVEMBER_10_2020 = 1_604_966_400
HISTORY_HOURS = 21 * 24
NEW_HOURS = 120
SPIKE = 30  # index in the new points of an injected spike
RUN = slice(70, 73)  # three consecutive anomalous new points: one incident


def cycle(hours: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    timestamps = START + HOUR * hours.astype(np.int64)
    noise = np.random.default_rng(seed).normal(0, 1.0, timestamps.size)
    return timestamps, 50 + 20 * np.sin(2 * np.pi * timestamps / 86_400) + noise


@pytest.fixture(scope="module")
def history() -> tuple[np.ndarray, np.ndarray]:
    return cycle(np.arange(HISTORY_HOURS), seed=0)


@pytest.fixture(scope="module")
def following() -> tuple[np.ndarray, np.ndarray]:
    """The 120 hours after the history, clean, on the same cycle."""
    return cycle(HISTORY_HOURS + np.arange(NEW_HOURS), seed=1)


@pytest.fixture(scope="module")
def anomalous(following: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The following hours with a spike and a three-hour incident, both within the cycle's range
    (30..70), so only the fitted model can see them."""
    timestamps, values = following
    values = values.copy()
    values[SPIKE] += 15
    values[RUN] -= 18
    return timestamps, values


@pytest.fixture(scope="module")
def fitted(history: tuple[np.ndarray, np.ndarray]) -> Fitted:
    return run_fit(ProphetDetector(), *history)


def stream(state: bytes, timestamps: np.ndarray, values: np.ndarray, chunk: int) -> DetectResult:
    """Score the points chunk by chunk, each call with the state the previous one returned."""
    parts = []
    for start in range(0, timestamps.shape[0], chunk):
        part = slice(start, start + chunk)
        result, after = run_detect_next(ProphetDetector(), timestamps[part], values[part], state)
        assert after is not None
        state = after.state
        parts.append(result)
    arrays = ("timestamps", "scores", "expected", "lower", "upper")  # not the explanations
    return DetectResult(*(np.concatenate([getattr(r, name) for r in parts]) for name in arrays))


# scoring new points ---------------------------------------------------------------------------


def test_a_fitted_model_flags_a_spike_in_new_points_and_not_the_normal_ones(
    fitted: Fitted, following: tuple[np.ndarray, np.ndarray]
) -> None:
    timestamps, clean = following
    values = clean.copy()
    values[SPIKE] += 15
    result, _ = run_detect_next(ProphetDetector(), timestamps, values, fitted.state)
    assert result.timestamps.tolist() == [int(timestamps[SPIKE])]
    assert result.expected is not None and result.lower is not None and result.upper is not None
    # The band follows the cycle: it holds the clean value there, not the spike.
    assert result.lower[SPIKE] < clean[SPIKE] < result.upper[SPIKE]
    # Scored as detect scores: distance outside the band, in half-widths, above the margin 0.7.
    half_width = result.upper[SPIKE] - result.expected[SPIKE]
    outside = abs(values[SPIKE] - result.expected[SPIKE]) - half_width
    assert result.scores[0] == pytest.approx(outside / half_width) and result.scores[0] > 0.7
    none, _ = run_detect_next(ProphetDetector(), timestamps, clean, fitted.state)
    assert none.timestamps.size == 0


def test_the_band_is_drawn_with_the_noise_detect_measures_on_the_same_history(
    fitted: Fitted, history: tuple[np.ndarray, np.ndarray]
) -> None:
    """fit fits as a stateless detect does: same model, so the same sigma for the band."""
    batch = ProphetDetector().detect([], *history)
    assert batch.upper is not None and batch.expected is not None
    state = fitted.typed
    assert isinstance(state, ProphetState) and state.sigma is not None
    z = NormalDist().inv_cdf((1 + 0.99) / 2)
    np.testing.assert_allclose(batch.upper - batch.expected, z * state.sigma, rtol=1e-9)


def test_scoring_with_a_state_is_deterministic_to_the_byte(
    fitted: Fitted,
    history: tuple[np.ndarray, np.ndarray],
    anomalous: tuple[np.ndarray, np.ndarray],
) -> None:
    assert run_fit(ProphetDetector(), *history).state == fitted.state
    first, first_after = run_detect_next(ProphetDetector(), *anomalous, fitted.state)
    second, second_after = run_detect_next(ProphetDetector(), *anomalous, fitted.state)
    assert first.explanations is None and second.explanations is None  # none asked for
    for a, b in zip(first[:5], second[:5], strict=True):  # the arrays
        assert a is not None and b is not None
        assert a.tobytes() == b.tobytes()
    assert first_after is not None and second_after is not None
    assert first_after.state == second_after.state


@pytest.mark.parametrize("chunk", [1, 10, 100])
def test_new_points_get_the_same_band_and_incidents_however_they_are_chunked(
    fitted: Fitted, anomalous: tuple[np.ndarray, np.ndarray], chunk: int
) -> None:
    """The model does not change while scoring: each point's band is the same whether it comes
    alone or with others, and an incident spanning chunks is reported once, at its start."""
    whole, _ = run_detect_next(ProphetDetector(), *anomalous, fitted.state)
    timestamps = anomalous[0]
    assert whole.timestamps.tolist() == [int(timestamps[SPIKE]), int(timestamps[RUN.start])]
    chunked = stream(fitted.state, *anomalous, chunk)
    for band in ("expected", "lower", "upper"):
        assert getattr(chunked, band).tobytes() == getattr(whole, band).tobytes(), band
    assert chunked.timestamps.tolist() == whole.timestamps.tolist()


def test_a_long_request_is_forecast_in_blocks_without_changing_a_point(fitted: Fitted) -> None:
    """Over ~100,000 points the forecast is computed block by block (bounded memory): every
    point still gets the bytes it gets alone."""
    state = fitted.typed
    assert isinstance(state, ProphetState) and state.model is not None
    times = START + HOUR * (HISTORY_HOURS + np.arange(250_000, dtype=np.int64))
    whole = state.model.predict(times)
    picks = np.array([0, 1, 99_999, 100_000, 123_456, 249_999])
    alone = np.concatenate([state.model.predict(times[i : i + 1]) for i in picks])
    assert whole[picks].tobytes() == alone.tobytes()


def test_a_history_too_short_to_fit_gives_new_points_no_opinion() -> None:
    timestamps, values = cycle(np.arange(5), seed=0)
    fitted = run_fit(ProphetDetector(), timestamps, values)
    assert load_state(ProphetDetector(), fitted.state).typed == ProphetState()
    later, more = cycle(np.arange(5, 50), seed=1)
    more[10] += 100
    result, _ = run_detect_next(ProphetDetector(), later, more, fitted.state)
    assert result.timestamps.size == 0
    for band in (result.expected, result.lower, result.upper):
        assert band is not None and band.shape == (45,) and np.all(np.isnan(band))


# the state ------------------------------------------------------------------------------------


def test_the_state_round_trips_and_prophet_itself_can_open_the_model(
    fitted: Fitted, following: tuple[np.ndarray, np.ndarray]
) -> None:
    loaded = load_state(ProphetDetector(), fitted.state)
    assert loaded.typed == fitted.typed
    assert isinstance(loaded.typed, ProphetState)
    again = encode_state(
        "prophet", 1, ProphetDetector().get_params(), loaded.typed, loaded.info.seen
    )
    assert again == fitted.state
    assert loaded.typed.model_json is not None
    model = model_from_json(loaded.typed.model_json)  # Prophet's own loader: JSON, no pickle
    reference = _predict(pd, model, following[0].astype(np.float64))
    result, _ = run_detect_next(ProphetDetector(), *following, fitted.state)
    np.testing.assert_allclose(result.expected, reference, rtol=1e-12)


def test_the_state_is_small_and_keeps_no_training_rows(fitted: Fitted) -> None:
    assert len(fitted.state) < 16_384
    state = fitted.typed
    assert isinstance(state, ProphetState) and state.model_json is not None
    stored = json.loads(state.model_json)
    assert len(json.loads(stored["history"])["data"]) == 2  # the first and last fit points
    assert len(stored["params"]["trend"][0]) == 2


@pytest.mark.parametrize(
    "params",
    [{}, {"seasonality_mode": "multiplicative"}, {"country_holidays": "US"}],
    ids=["additive", "multiplicative", "us-holidays"],
)
def test_the_direct_forecast_reproduces_prophets_predict(params: dict[str, Any]) -> None:
    """The stored (trimmed) JSON forecasts exactly as the full model does, and the forecast the
    detector computes from it matches Prophet's predict to 1e-9, over the history and 120 days
    past it: a history from 10 November 2020 (Veterans Day, Thanksgiving: US holiday effects
    are fitted), a horizon across the year's end."""
    detector = ProphetDetector(**params)
    timestamps, values = cycle(np.arange(HISTORY_HOURS), seed=2)
    timestamps = timestamps - START + NOVEMBER_10_2020
    fit_times, fit_values = _fit_points(timestamps, values, detector.params.max_fit_points)
    model = _robust_model(pd, detector.params, fit_times, fit_values)
    full = model_to_json(model)
    compact = compact_model_json(model)
    times = (timestamps[0] + HOUR * np.arange((21 + 120) * 24)).astype(np.int64)
    ds = pd.DataFrame({"ds": pd.to_datetime(times * 10**9, unit="ns")})
    reference = model_from_json(full).predict(ds)
    from_compact = model_from_json(compact).predict(ds)
    assert from_compact["yhat"].to_numpy().tobytes() == reference["yhat"].to_numpy().tobytes()
    if params.get("country_holidays"):
        assert np.count_nonzero(reference["holidays"].to_numpy()) >= 48  # two holidays' hours
    direct = read_model(compact).predict(times)
    np.testing.assert_allclose(direct, reference["yhat"].to_numpy(), rtol=1e-9, atol=1e-9)


def test_holidays_come_from_the_calendar_prophet_builds() -> None:
    from prophet.make_holidays import make_holidays_df

    for country, year in (("US", 2021), ("GB", 2024), ("FRA", 2022)):
        table = make_holidays_df(year_list=[year], country=country)
        epoch_days = (table["ds"] - pd.Timestamp("1970-01-01")).dt.days
        expected: dict[str, list[int]] = {}
        for name, day in zip(table["holiday"], epoch_days, strict=True):
            expected.setdefault(name, []).append(int(day))
        calendar = holiday_calendar(country, year)
        assert {name: sorted(days) for name, days in expected.items()} == {
            name: days.tolist() for name, days in calendar.items()
        }


# damaged and foreign models -------------------------------------------------------------------


def _edited(edit: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    def change(text: str) -> str:
        document = json.loads(text)
        edit(document)
        return json.dumps(document)

    return change


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda document: document.__setitem__(key, value)


def _params(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda document: edit(document["params"])


GARBLED: dict[str, tuple[Callable[[str], str], str, str]] = {
    # name: (how the stored model JSON is changed, the error code, a part of the message)
    "not-json": (lambda text: "{not json", "INVALID_INPUT", "not a fitted Prophet model"),
    "truncated": (lambda text: text[: len(text) // 2], "INVALID_INPUT", "not a fitted Prophet"),
    "an-array": (lambda text: "[1, 2, 3]", "INVALID_INPUT", "not a fitted Prophet model"),
    "deeply-nested": (
        lambda text: "[" * 100_000 + "]" * 100_000,
        "INVALID_INPUT",
        "not a fitted Prophet model",
    ),
    "no-params": (
        _edited(lambda document: document.pop("params")),
        "INVALID_INPUT",
        "params",
    ),
    "no-trend-rate": (
        _edited(_params(lambda params: params.pop("k"))),
        "INVALID_INPUT",
        "'k'",
    ),
    "nan-rate": (
        _edited(_params(lambda params: params.__setitem__("k", [[float("nan")]]))),
        "INVALID_INPUT",
        "not finite",
    ),
    "extra-coefficient": (
        _edited(_params(lambda params: params["beta"][0].append(0.5))),
        "INVALID_INPUT",
        "coefficients",
    ),
    "garbled-component-table": (
        _edited(_set("train_component_cols", "{oops")),
        "INVALID_INPUT",
        "train_component_cols",
    ),
    "negative-time-scale": (
        _edited(_set("t_scale", -5.0)),
        "INVALID_INPUT",
        "scales",
    ),
    "another-prophet-major": (
        _edited(_set("__prophet_version", "2.0.0")),
        "INCOMPATIBLE_STATE",
        "written by prophet 2.0.0, another major version",
    ),
    "logistic-growth": (
        _edited(_set("growth", "logistic")),
        "INCOMPATIBLE_STATE",
        "'logistic' growth",
    ),
    "other-country-than-params": (
        _edited(_set("country_holidays", "GB")),
        "INCOMPATIBLE_STATE",
        "not fitted with the params it records",
    ),
    "too-many-features": (
        _edited(lambda document: document["seasonalities"][1]["daily"].update(fourier_order=3000)),
        "INCOMPATIBLE_STATE",
        "over 5,000 features",
    ),
    "oversized": (
        lambda text: " " * (MAX_MODEL_JSON_CHARS + 1),
        "INCOMPATIBLE_STATE",
        "model_json",
    ),
}


def _reencoded(fitted: Fitted, change: Callable[[str], str], **fields: Any) -> bytes:
    """The fitted state with its model JSON changed (and any other ``fields``), re-encoded as a
    valid blob (its sha256 matches): only the content is wrong."""
    state = fitted.typed
    assert isinstance(state, ProphetState) and state.model_json is not None
    content = {"model_json": change(state.model_json), "sigma": state.sigma, **fields}
    damaged = ProphetState.model_construct(**content)
    seen = fitted.info.seen
    return encode_state("prophet", 1, ProphetDetector().get_params(), damaged, seen)


@pytest.mark.parametrize("case", GARBLED, ids=list(GARBLED))
def test_a_damaged_or_foreign_model_in_a_valid_state_is_refused_with_a_structured_error(
    fitted: Fitted, following: tuple[np.ndarray, np.ndarray], case: str
) -> None:
    change, code, message = GARBLED[case]
    blob = _reencoded(fitted, change)
    with pytest.raises(WardenError) as error:
        run_detect_next(ProphetDetector(), *following, blob)
    assert error.value.code.value == code
    assert error.value.field == "state"
    assert message in error.value.message


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"sigma": 0.0}, "INCOMPATIBLE_STATE"),
        ({"sigma": -1.0}, "INCOMPATIBLE_STATE"),
        ({"sigma": float("nan")}, "INVALID_INPUT"),  # JSON has no NaN: it arrives as null
        ({"sigma": None}, "INVALID_INPUT"),
        ({"model_json": None}, "INVALID_INPUT"),
    ],
    ids=["zero-sigma", "negative-sigma", "nan-sigma", "model-without-sigma", "sigma-no-model"],
)
def test_a_state_without_a_usable_noise_scale_is_refused(
    fitted: Fitted, following: tuple[np.ndarray, np.ndarray], fields: dict[str, Any], code: str
) -> None:
    blob = _reencoded(fitted, lambda text: text, **fields)
    with pytest.raises(WardenError) as error:
        run_detect_next(ProphetDetector(), *following, blob)
    assert (error.value.code.value, error.value.field) == (code, "state")


def test_over_the_wire_a_damaged_model_is_an_error_answer_not_a_traceback(
    fitted: Fitted, following: tuple[np.ndarray, np.ndarray]
) -> None:
    blob = _reencoded(fitted, lambda text: text.replace('"params"', '"paramz"'))
    dispatcher = Dispatcher(get_codec("json"), registry=Registry.of([ProphetDetector]))
    payload = DetectPayload([], *following, state=blob, return_state=True)
    request = dispatcher.codec.encode_request(Request("detect", "prophet", payload, {}))
    body, _ = dispatcher.handle(request)
    answer = orjson.loads(body)
    assert answer["status"] == "error"
    assert answer["error"]["code"] == "INVALID_INPUT"
    assert answer["error"]["field"] == "state"
    assert "params" in answer["error"]["message"]


# without the prophet extra --------------------------------------------------------------------


def test_without_the_extra_fit_and_detect_with_a_state_name_it_as_detect_does(
    fitted: Fitted,
    history: tuple[np.ndarray, np.ndarray],
    following: tuple[np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(EXTRAS, "prophet", ("prophet_is_not_installed",))
    dispatcher = Dispatcher(get_codec("json"), registry=Registry.of([ProphetDetector]))
    requests = {
        "detect": Request("detect", "prophet", DetectPayload([], *history), {}),
        "fit": Request("fit", "prophet", FitPayload([], *history), {}),
        "detect with a state": Request(
            "detect", "prophet", DetectPayload([], *following, state=fitted.state), {}
        ),
    }
    errors = {}
    for name, request in requests.items():
        body, _ = dispatcher.handle(dispatcher.codec.encode_request(request))
        answer = orjson.loads(body)
        assert answer["status"] == "error", (name, answer)
        errors[name] = answer["error"]
    assert {error["code"] for error in errors.values()} == {"ALGORITHM_FAILED"}
    messages = {error["message"] for error in errors.values()}
    assert len(messages) == 1, messages
    message = messages.pop()
    assert "pip install 'warden-algos[prophet]'" in message and "\n" not in message


# the wire -------------------------------------------------------------------------------------


def _json(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(value) else float(value) for value in values]


def test_fit_then_detect_with_the_state_through_the_run_command(
    fitted: Fitted,
    history: tuple[np.ndarray, np.ndarray],
    anomalous: tuple[np.ndarray, np.ndarray],
) -> None:
    fit = {"interface": "fit", "algorithm": "prophet",
           "fit": {"timestamps": history[0].tolist(), "values": _json(history[1])}}  # fmt: skip
    done = cli("run", "--log-level", "error", stdin=orjson.dumps(fit), timeout=120)
    answer = orjson.loads(done.stdout)
    assert answer["status"] == "ok", answer
    state = base64.b64decode(answer["fit"]["state"])
    assert state == fitted.state  # the same bytes in another process: the fit is seeded
    assert answer["fit"]["points"] == HISTORY_HOURS
    assert done.stderr == b""  # prophet's and cmdstan's chatter stays silenced when fitting
    detect = {"interface": "detect", "algorithm": "prophet",
              "detect": {"timestamps": anomalous[0].tolist(), "values": _json(anomalous[1]),
                         "state": answer["fit"]["state"], "return_state": True}}  # fmt: skip
    done = cli("run", "--log-level", "error", stdin=orjson.dumps(detect), timeout=120)
    answer = orjson.loads(done.stdout)
    assert answer["status"] == "ok", answer
    expected, after = run_detect_next(ProphetDetector(), *anomalous, fitted.state)
    assert answer["detect"]["timestamps"] == expected.timestamps.tolist()
    assert answer["detect"]["timestamps"] == [
        int(anomalous[0][SPIKE]),
        int(anomalous[0][RUN.start]),
    ]
    assert after is not None and base64.b64decode(answer["detect"]["state"]) == after.state
    assert done.stderr == b""


def test_a_state_records_the_span_it_was_fitted_on(
    fitted: Fitted, history: tuple[np.ndarray, np.ndarray]
) -> None:
    assert fitted.info.seen == Seen(int(history[0][0]), int(history[0][-1]), HISTORY_HOURS)
    assert fitted.info.algorithm == "prophet" and fitted.info.state_version == 1
