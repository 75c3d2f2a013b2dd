"""The running-statistics detectors (mad, ewma) trained and streamed: fitting on a prefix and
streaming the rest in chunks gives one batch call's detections and bands, whatever the chunking,
from an empty history too, with a state whose size does not grow with the history; over the wire
as in process.

mad reproduces the batch window statistics to the bit (the tests compare its bands exactly except
where a flat window falls back to a mean); ewma continues its recursions, so its bands agree to
rounding, bounded here by a relative 1e-9 (``Ewma``'s docstring).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.ewma import Ewma, EwmaState
from warden_algos.algorithms.mad import DIRECT_POINTS, Mad, MadState
from warden_algos.interfaces.errors import IncompatibleState
from warden_algos.interfaces.run_state import load_state, run_fit

from .conftest import cli
from .streaming_equivalence import assert_streams_like_batch, stream

T0 = 1_700_000_000
EXACT = {"band_rtol": 0.0, "band_scale_atol": 0.0}
ROUNDING = {"band_rtol": 1e-9, "band_scale_atol": 1e-12}


def spiky(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A wavy noisy metric with spikes and dips, one incident of consecutive points in its second
    half, and missing values."""
    rng = np.random.default_rng(seed)
    values = 50 + 3 * np.sin(np.arange(n) / 40) + rng.normal(0, 1, n)
    values[rng.choice(n, 12, replace=False)] += rng.choice([-1, 1], 12) * rng.uniform(8, 20, 12)
    values[n // 2 : n // 2 + 5] += 30
    values[rng.choice(n, n // 50, replace=False)] = np.nan
    return T0 + 60 * np.arange(n, dtype=np.int64), values


def counts(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mostly-zero event counts with bursts: windows whose MAD is 0 (mad's mean fallback)."""
    rng = np.random.default_rng(seed)
    values = rng.poisson(0.3, n).astype(np.float64)
    values[rng.choice(n, 8, replace=False)] += 12
    values[rng.choice(n, n // 40, replace=False)] = np.nan
    return T0 + 60 * np.arange(n, dtype=np.int64), values


# mad: the same window contents, the same order statistics -----------------------------------------


@pytest.mark.parametrize(
    "params",
    [{}, {"every_point": True}, {"window": 30, "tail_rate": 0.05, "k": 3.0}, {"min_mad": 0.3}],
)
def test_mad_streamed_in_chunks_detects_and_bands_as_one_batch_call(
    params: dict[str, Any],
) -> None:
    times, values = spiky(5000)
    assert_streams_like_batch(Mad(params), times, values, prefix=2500, **EXACT)


def test_mad_streams_from_nothing_fitted() -> None:
    times, values = spiky(900, seed=3)
    assert_streams_like_batch(Mad(window=200), times, values, prefix=0, chunks=(1, 37), **EXACT)


def test_mad_streams_flat_count_windows_like_batch() -> None:
    times, values = counts(2000, seed=5)
    for params in ({"window": 60, "tail_rate": 0.0}, {"window": 60}):
        assert_streams_like_batch(Mad(params), times, values, prefix=700, **ROUNDING)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 400),
    prefix_share=st.floats(0, 1),
    chunk=st.integers(1, 3 * DIRECT_POINTS),  # both ways of scoring a chunk
    window=st.integers(3, 40),
    warm_up=st.integers(3, 40),
    tail_rate=st.sampled_from([0.0, 0.01, 0.2]),
    whole=st.booleans(),
)
def test_mad_streams_like_batch_on_random_series(
    seed: int,
    n: int,
    prefix_share: float,
    chunk: int,
    window: int,
    warm_up: int,
    tail_rate: float,
    whole: bool,
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_t(3, n) * rng.uniform(0.1, 100)
    if whole:  # ties, flat windows
        values = np.round(values / 10)
    values[rng.random(n) < 0.05] = np.nan
    times = T0 + np.cumsum(rng.integers(1, 600, n)).astype(np.int64)
    algorithm = Mad(window=window, min_periods=min(window, warm_up), tail_rate=tail_rate)
    prefix = int(prefix_share * n)
    # A flat window's band is the automatic floor, which a stream learns from its history and a
    # batch call from the whole series: the documented exception, so whole-number series (flat
    # windows) compare only the detections.
    options = {**ROUNDING, "compare_band": False} if whole else ROUNDING
    assert_streams_like_batch(algorithm, times, values, prefix, chunks=(chunk,), **options)


# ewma: the recursions continued ------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"every_point": True},
        {"alpha": 0.2, "variance_alpha": 0.05, "min_periods": 5},
        {"span": 9, "k": 3.0, "min_std": 0.5},
    ],
)
def test_ewma_streamed_in_chunks_detects_and_bands_as_one_batch_call(
    params: dict[str, Any],
) -> None:
    times, values = spiky(5000)
    assert_streams_like_batch(Ewma(params), times, values, prefix=2500, **ROUNDING)


def test_ewma_streams_from_nothing_fitted() -> None:
    times, values = spiky(900, seed=3)
    assert_streams_like_batch(Ewma(alpha=0.05), times, values, prefix=0, chunks=(1, 37))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 400),
    prefix_share=st.floats(0, 1),
    chunk=st.integers(1, 50),
    alpha=st.floats(0.01, 1.0),
    variance_alpha=st.floats(0.01, 1.0),
    min_periods=st.integers(2, 20),
)
def test_ewma_streams_like_batch_on_random_series(
    seed: int,
    n: int,
    prefix_share: float,
    chunk: int,
    alpha: float,
    variance_alpha: float,
    min_periods: int,
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_t(3, n) * rng.uniform(0.1, 100) + rng.uniform(-1e4, 1e4)
    values[rng.random(n) < 0.05] = np.nan
    times = T0 + np.cumsum(rng.integers(1, 600, n)).astype(np.int64)
    algorithm = Ewma(alpha=alpha, variance_alpha=variance_alpha, min_periods=min_periods)
    prefix = int(prefix_share * n)
    assert_streams_like_batch(algorithm, times, values, prefix, chunks=(chunk,), **ROUNDING)


# both ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [Mad(window=100), Ewma(alpha=0.05)])
def test_a_history_with_nothing_valid_is_learnt_from_the_first_valid_points(
    algorithm: Any,
) -> None:
    times, values = spiky(1500, seed=7)
    values[:300] = np.nan
    assert_streams_like_batch(algorithm, times, values, prefix=200, **ROUNDING)


@pytest.mark.parametrize("algorithm", [Mad(), Ewma()])
def test_huge_magnitudes_stream_like_batch(algorithm: Any) -> None:
    times, values = spiky(3000, seed=8)
    assert_streams_like_batch(algorithm, times, values * 1e200, prefix=2000, **ROUNDING)


def kept_bytes(state: Any) -> int:
    """What a state keeps: its arrays' bytes and its plain fields' JSON. (The blob adds the SDK's
    description of it, whose numbers, such as the points seen, print longer as a history grows.)"""
    fields = dict(state)
    arrays = {name: value for name, value in fields.items() if isinstance(value, np.ndarray)}
    plain = {name: value for name, value in fields.items() if name not in arrays}
    return sum(array.nbytes for array in arrays.values()) + len(orjson.dumps(plain))


@pytest.mark.parametrize(("cls", "most"), [(Mad, 2 * 2000 * 8 + 2048), (Ewma, 2048)])
def test_the_state_size_does_not_grow_with_the_history(cls: type[Any], most: int) -> None:
    kept, blobs = {}, {}
    for n in (2_000, 20_000):
        times, values = spiky(n)
        fitted = run_fit(cls(), times[: n - 20], values[: n - 20])
        streamed = cls().detect_next([], times[n - 20 :], values[n - 20 :], fitted.typed)[1]
        kept[n] = (kept_bytes(fitted.typed), kept_bytes(streamed))
        blobs[n] = len(fitted.state)
    assert kept[2_000] == kept[20_000]
    assert len(set(kept[2_000])) == 1
    assert max(blobs.values()) <= most


def test_a_state_not_shaped_as_the_detector_writes_it_is_refused() -> None:
    times, values = spiky(100)
    short = Mad(window=50).fit([], times, values)
    wrong = MadState(**{**dict(short), "values": short.values[:10]})
    with pytest.raises(IncompatibleState, match="not 50 points long"):
        Mad(window=50).detect_next([], times[-1:] + 60, values[-1:], wrong)
    zero_scale = MadState(**{**dict(short), "scale": np.zeros(1)})
    with pytest.raises(IncompatibleState, match="scale and floor are not ones a fit writes"):
        Mad(window=50).detect_next([], times[-1:] + 60, values[-1:], zero_scale)
    fitted = Ewma().fit([], times, values)
    bent = EwmaState(**{**dict(fitted), "mean_sums": np.zeros(3)})
    with pytest.raises(IncompatibleState, match="not shaped as ewma's"):
        Ewma().detect_next([], times[-1:] + 60, values[-1:], bent)
    endless = EwmaState(**{**dict(fitted), "floor": np.array([np.inf])})
    with pytest.raises(IncompatibleState, match="not ones a fit writes"):
        Ewma().detect_next([], times[-1:] + 60, values[-1:], endless)


@pytest.mark.parametrize(
    ("name", "params"), [("mad", {"window": 300}), ("ewma", {"alpha": 0.05, "every_point": True})]
)
def test_fit_then_detect_with_the_state_through_run_json(name: str, params: dict[str, Any]) -> None:
    times, values = spiky(1600, seed=11)
    json_values = [None if np.isnan(v) else float(v) for v in values]
    fit = {"interface": "fit", "algorithm": name, "params": params,
           "fit": {"timestamps": times[:600].tolist(), "values": json_values[:600]}}  # fmt: skip
    fitted = orjson.loads(cli("run", "--log-level", "error", stdin=orjson.dumps(fit)).stdout)
    assert fitted["status"] == "ok", fitted
    detect = {"interface": "detect", "algorithm": name, "params": params, "detect": {
        "timestamps": times[600:].tolist(), "values": json_values[600:],
        "state": fitted["fit"]["state"], "return_state": True}}  # fmt: skip
    answer = orjson.loads(cli("run", "--log-level", "error", stdin=orjson.dumps(detect)).stdout)
    assert answer["status"] == "ok", answer
    algorithm = Mad(params) if name == "mad" else Ewma(params)
    streamed, _ = stream(algorithm, times, values, prefix=600, chunk=1000)
    assert answer["detect"]["timestamps"] == streamed.timestamps.tolist()
    assert times[800] in answer["detect"]["timestamps"]  # the incident, found after the fit
    after = load_state(algorithm, base64.b64decode(answer["detect"]["state"]))
    assert after.info.seen_points == 1600 and after.info.seen_end == int(times[-1])
