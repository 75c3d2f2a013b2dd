"""Trained detectors end to end: fit once, then score new points with the state, in process and
over the wire (JSON and both Thrift protocols, one-shot and serve), by value, by reference to a
serve process's cache, and by a stored model's series key."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.dispatcher import Dispatcher
from warden_algos.interfaces.run_state import run_fit
from warden_algos.models_folder import ModelsFolder
from warden_algos.registry import Registry
from warden_algos.wire import DetectPayload, Request, get_codec
from warden_algos.wire.envelope import FitPayload, FitResult

from .conftest import ServeProcess, cli
from .streaming_equivalence import assert_streams_like_batch, stream

T0 = 1_700_000_000


def spiky(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = 50 + 3 * np.sin(np.arange(n) / 40) + rng.normal(0, 1, n)
    values[rng.choice(n, 12, replace=False)] += rng.choice([-1, 1], 12) * rng.uniform(6, 20, 12)
    values[n // 3 : n // 3 + 4] += 15  # one incident of consecutive points
    values[rng.choice(n, n // 50, replace=False)] = np.nan
    return T0 + 60 * np.arange(n, dtype=np.int64), values


@pytest.mark.parametrize("params", [{}, {"every_point": True}, {"window": 7, "min_periods": 3}])
def test_ksigma_streamed_in_chunks_detects_as_one_batch_call(params: dict[str, Any]) -> None:
    times, values = spiky(3000)
    assert_streams_like_batch(KSigma(params), times, values, prefix=1000)


def test_ksigma_streams_from_nothing_fitted() -> None:
    times, values = spiky(800, seed=4)
    assert_streams_like_batch(KSigma(), times, values, prefix=0, chunks=(1, 37))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 400),
    prefix_share=st.floats(0, 1),
    chunk=st.integers(1, 50),
    window=st.integers(2, 40),
)
def test_ksigma_streams_like_batch_on_random_series(
    seed: int, n: int, prefix_share: float, chunk: int, window: int
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_t(3, n) * rng.uniform(0.1, 100)
    values[rng.random(n) < 0.05] = np.nan
    times = T0 + np.cumsum(rng.integers(1, 600, n)).astype(np.int64)
    algorithm = KSigma(window=window, min_periods=min(window, 5))
    assert_streams_like_batch(algorithm, times, values, int(prefix_share * n), chunks=(chunk,))


def test_the_state_is_as_large_as_the_window_whatever_the_history() -> None:
    sizes = {}
    for n in (2_000, 20_000):
        times, values = spiky(n)
        _, after = stream(KSigma(), times, values, prefix=n - 20, chunk=10)
        sizes[n] = after[-1]
    assert sizes[2_000] == sizes[20_000] < 4_096


# over the wire ------------------------------------------------------------------------------------


def dispatcher(format_name: str, **options: Any) -> Dispatcher:
    return Dispatcher(get_codec(format_name), registry=Registry.of([KSigma]), **options)


def ask(d: Dispatcher, request: Request) -> Any:
    body, _ = d.handle(d.codec.encode_request(request))
    return d.codec.decode_response(body)


@pytest.mark.parametrize("format_name", ["json", "thrift-binary", "thrift-compact"])
def test_fit_then_stream_over_every_wire_format(format_name: str) -> None:
    times, values = spiky(2000)
    d = dispatcher(format_name)
    fitted = ask(d, Request("fit", "ksigma", FitPayload([], times[:1500], values[:1500]), {}))
    assert fitted.ok, fitted.error
    assert isinstance(fitted.result, FitResult)
    assert fitted.result.state == run_fit(KSigma(), times[:1500], values[:1500]).state
    assert (fitted.result.points, fitted.result.seen_end) == (1500, int(times[1499]))
    state, found = fitted.result.state, []
    for start in range(1500, 2000, 100):
        payload = DetectPayload(
            [], times[start : start + 100], values[start : start + 100], state=state,
            return_state=True,
        )  # fmt: skip
        answer = ask(d, Request("detect", "ksigma", payload, {}))
        assert answer.ok, answer.error
        assert answer.state is not None and len(answer.state_sha256) == 64
        state = answer.state
        found.extend(answer.result.timestamps.tolist())
    streamed, _ = stream(KSigma(), times, values, prefix=1500, chunk=100)
    assert found == streamed.timestamps.tolist()


def test_a_serve_process_streams_by_reference_and_a_miss_says_resend() -> None:
    times, values = spiky(1200)
    fit = {"interface": "fit", "algorithm": "ksigma", "fit": {
        "timestamps": times[:1000].tolist(), "values": values[:1000].tolist()}}  # fmt: skip
    server = ServeProcess("--log-level", "error", "--state-cache-mb", "1")
    try:
        answer = server.ask(orjson.dumps(fit, option=orjson.OPT_SERIALIZE_NUMPY))
        sha = answer["fit"]["state_sha256"]
        found = []
        for i in range(1000, 1200):
            detect = {"timestamps": [int(times[i])], "values": [_json(values[i])],
                      "state_sha256": sha, "return_state": True}  # fmt: skip
            answer = server.ask(orjson.dumps({"interface": "detect", "algorithm": "ksigma",
                                              "detect": detect}))  # fmt: skip
            assert answer["status"] == "ok", answer
            sha = answer["detect"]["state_sha256"]
            found.extend(answer["detect"]["timestamps"])
        streamed, _ = stream(KSigma(), times, values, prefix=1000, chunk=1)
        assert found == streamed.timestamps.tolist()
        miss = {"timestamps": [int(times[-1]) + 60], "values": [1.0], "state_sha256": "f" * 64}
        answer = server.ask(orjson.dumps({"interface": "detect", "algorithm": "ksigma",
                                          "detect": miss}))  # fmt: skip
        assert answer["error"]["code"] == "STATE_NOT_FOUND"
        assert "send the state itself" in answer["error"]["message"]
        assert server.close() == 0
    finally:
        server.close()


def test_a_stream_by_sha256_only_gets_no_bytes_back_and_recovers_from_a_miss() -> None:
    """return_state_sha256_only: the serve process keeps each new state and answers only its
    sha256; after a miss (a restarted or evicting worker; here: a sha256 it never had) the caller
    resends the last bytes it holds with every point since, which gives the same detections and
    the same state."""
    times, values = spiky(1300, seed=6)
    fit = {"interface": "fit", "algorithm": "ksigma", "fit": {
        "timestamps": times[:1000].tolist(), "values": values[:1000].tolist()}}  # fmt: skip
    server = ServeProcess("--log-level", "error", "--state-cache-mb", "1")
    try:
        fitted = server.ask(orjson.dumps(fit, option=orjson.OPT_SERIALIZE_NUMPY))["fit"]
        held, since, sha, found = fitted["state"], 1000, fitted["state_sha256"], []
        for i in range(1000, 1300):
            detect = {"timestamps": [int(times[i])], "values": [_json(values[i])],
                      "state_sha256": sha, "return_state": True,
                      "return_state_sha256_only": True}  # fmt: skip
            answer = server.ask(orjson.dumps({"interface": "detect", "algorithm": "ksigma",
                                              "detect": detect}))  # fmt: skip
            assert answer["status"] == "ok", answer
            assert "state" not in answer["detect"]
            sha = answer["detect"]["state_sha256"]
            found.extend(answer["detect"]["timestamps"])
        miss = {"timestamps": [int(times[-1]) + 60], "values": [1.0], "state_sha256": "e" * 64,
                "return_state": True, "return_state_sha256_only": True}  # fmt: skip
        answer = server.ask(orjson.dumps({"interface": "detect", "algorithm": "ksigma",
                                          "detect": miss}))  # fmt: skip
        assert answer["error"]["code"] == "STATE_NOT_FOUND"
        replay = {"timestamps": times[since:].tolist(), "state": held, "return_state": True,
                  "values": [_json(v) for v in values[since:]]}  # fmt: skip
        answer = server.ask(orjson.dumps({"interface": "detect", "algorithm": "ksigma",
                                          "detect": replay}))  # fmt: skip
        assert answer["detect"]["timestamps"] == found  # the same detections, recomputed
        assert answer["detect"]["state_sha256"] == sha  # and the same state they led to
        assert server.close() == 0
    finally:
        server.close()
    streamed, _ = stream(KSigma(), times, values, prefix=1000, chunk=1)
    assert found == streamed.timestamps.tolist()


def _json(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def test_the_cache_is_bounded_in_bytes_and_evicts_the_oldest() -> None:
    from warden_algos.interfaces.run_state import run_fit as fit
    from warden_algos.state_cache import StateCache

    states = [fit(KSigma(), *spiky(200, seed)) for seed in range(5)]
    cache = StateCache(max_bytes=2 * len(states[0].state) + 10)
    for fitted in states:
        cache.put(fitted)
    assert len(cache) == 2 and cache.size <= cache.max_bytes
    assert cache.get(states[-1].sha256) is states[-1]
    with pytest.raises(Exception, match="send the state itself"):
        cache.get(states[0].sha256)


def test_run_scores_with_a_stored_model_named_by_its_series_key(tmp_path: Path) -> None:
    times, values = spiky(1500)
    blob = run_fit(KSigma(), times[:1400], values[:1400]).state
    ModelsFolder(tmp_path).install("ksigma", KSigma().get_params(), "host=web-1", blob)
    request = {"interface": "detect", "algorithm": "ksigma", "detect": {
        "timestamps": times[1400:].tolist(), "values": [_json(v) for v in values[1400:]],
        "model": "host=web-1", "return_state": True}}  # fmt: skip
    done = cli("run", "--models-dir", str(tmp_path), "--log-level", "error",
               stdin=orjson.dumps(request))  # fmt: skip
    answer = orjson.loads(done.stdout)
    assert answer["status"] == "ok", answer
    streamed, _ = stream(KSigma(), times, values, prefix=1400, chunk=100)
    assert answer["detect"]["timestamps"] == streamed.timestamps.tolist()
    assert base64.b64decode(answer["detect"]["state"])  # the state after, for the caller
    request["detect"]["model"] = "host=web-2"
    done = cli("run", "--models-dir", str(tmp_path), stdin=orjson.dumps(request))
    assert orjson.loads(done.stdout)["error"]["code"] == "STATE_NOT_FOUND"


def test_list_and_describe_say_which_algorithms_are_trainable() -> None:
    rows = {row["name"]: row for row in orjson.loads(cli("list", "--json").stdout)}
    assert rows["ksigma"]["trainable"] is True and rows["adtributor"]["trainable"] is False
    info = orjson.loads(cli("describe", "ksigma", "--json").stdout)
    assert info["trainable"] is True
    assert info["state"]["state_version"] == 1
    assert info["state"]["fields"]["times"]["kind"] == "array"
    text = cli("describe", "ksigma").stdout.decode()
    assert "trainable: fit(dimensions, timestamps, values) -> state" in text


def test_a_stateless_detector_answers_fit_with_a_clear_error() -> None:
    request = {"interface": "fit", "algorithm": "spectral_residual",
               "fit": {"timestamps": [1, 2], "values": [1.0, 2.0]}}  # fmt: skip
    answer = orjson.loads(cli("run", stdin=orjson.dumps(request)).stdout)
    assert answer["error"]["code"] == "UNKNOWN_ALGORITHM"
    assert "not trainable" in answer["error"]["message"]
