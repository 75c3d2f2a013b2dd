"""States are data, never code: a blob is checked (size, container, content hash) and matched to
the algorithm and its params before any of it is used, and every refusal is a structured error
that leaves a serve process answering the next request."""

from __future__ import annotations

import base64
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.interfaces import DetectorParams, DetectResult, InvalidInput
from warden_algos.interfaces.errors import IncompatibleState
from warden_algos.interfaces.run_state import load_state, run_detect_next, run_fit
from warden_algos.interfaces.state import (
    AlgorithmState,
    Seen,
    StateArray,
    decode_state,
    encode_state,
)
from warden_algos.interfaces.trainable import TrainableDetector

from .conftest import ServeProcess

T0 = 1_700_000_000


def history(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return T0 + 60 * np.arange(n, dtype=np.int64), rng.normal(10, 1, n)


@pytest.fixture(scope="module")
def fitted() -> bytes:
    times, values = history()
    return run_fit(KSigma(), times, values).state


class CountState(AlgorithmState):
    count: int
    recent: StateArray


class CountParams(DetectorParams):
    window: int = 5


class Counter(TrainableDetector[CountParams, CountState]):
    """A second trainable detector, so states can be offered to the wrong one."""

    name = "counter"
    summary = "Counts points (a test detector)."

    def detect(self, dimensions: list[str], timestamps: Any, values: Any) -> DetectResult:
        return DetectResult(np.empty(0, np.int64), np.empty(0))

    def fit(self, dimensions: list[str], timestamps: Any, values: Any) -> CountState:
        return CountState(count=len(values), recent=np.array(values[-5:]))

    def detect_next(
        self, dimensions: list[str], timestamps: Any, values: Any, state: CountState
    ) -> tuple[DetectResult, CountState]:
        return self.detect(dimensions, timestamps, values), CountState(
            count=state.count + len(values), recent=np.array(values[-5:])
        )


def next_points(blob: bytes, algorithm: Any = None) -> Any:
    times, values = history(3, seed=9)
    return run_detect_next(algorithm or KSigma(), times + 10**6, values, blob)


def test_a_state_round_trips_and_says_what_it_is(fitted: bytes) -> None:
    decoded = decode_state(fitted)
    info = decoded.info
    assert info.algorithm == "ksigma" and info.state_version == KSigma.state_version
    # The alerting stage is not part of the model: a state's params leave it out.
    params = KSigma().get_params()
    assert params.pop("alerting") is None and info.params == params
    assert (info.seen_start, info.seen_points) == (T0, 500)
    assert info.seen_end == T0 + 60 * 499
    assert len(decoded.blob_sha256) == 64
    again = run_fit(KSigma(), *history()).state
    assert again == fitted  # deterministic: the same history gives the same bytes


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda blob: b"", "truncated"),
        (lambda blob: blob[:40], "truncated"),
        (lambda blob: b"\x00" * 8 + blob[8:], "not JSON"),
        (lambda blob: os.urandom(len(blob)), "not a state"),
        (lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]), "does not match its sha256"),
        (lambda blob: blob[:-8], "cannot be read"),
    ],
    ids=["empty", "truncated", "garbage-header", "random", "tampered", "cut-arrays"],
)
def test_a_damaged_state_is_invalid_input(fitted: bytes, damage: Any, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        next_points(damage(fitted))
    assert caught.value.field == "state"
    assert any(word in caught.value.message for word in words.split("|")), caught.value.message


def test_an_oversized_state_is_refused_before_it_is_read(
    fitted: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_MAX_STATE_MB", "0.001")
    with pytest.raises(InvalidInput, match="WARDEN_MAX_STATE_MB"):
        next_points(fitted)


class Boom:
    """Unpickling this would create a file: proof that nothing unpickles a state."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.path).touch, ())


def test_a_pickle_offered_as_a_state_is_refused_without_being_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    payload = pickle.dumps(Boom(str(marker)))
    for blob in (payload, len(payload).to_bytes(8, "little") + payload):
        with pytest.raises(InvalidInput):
            next_points(blob)
    assert not marker.exists()


def test_a_state_of_another_algorithm_or_other_params_is_incompatible(fitted: bytes) -> None:
    with pytest.raises(IncompatibleState, match="fitted by 'ksigma', not 'counter'"):
        next_points(fitted, Counter())
    with pytest.raises(IncompatibleState, match=r"other params .*k differ"):
        next_points(fitted, KSigma(k=4.0))


def test_newer_state_versions_are_refused_and_older_ones_need_a_migration() -> None:
    state = Counter().fit([], *history(10))
    seen = Seen(T0, T0 + 540, 10)
    newer = encode_state("counter", Counter.state_version + 1, Counter().get_params(), state, seen)
    with pytest.raises(IncompatibleState, match="newer than this installation"):
        load_state(Counter(), newer)
    older = encode_state("counter", 0, Counter().get_params(), state, seen)
    with pytest.raises(IncompatibleState, match="cannot read version 0"):
        load_state(Counter(), older)

    class Migrating(Counter):
        @classmethod
        def migrate_state(cls, from_version: int, fields: dict[str, Any]) -> dict[str, Any]:
            return {**fields, "count": fields["count"] + 1000}

    assert load_state(Migrating(), older).typed.count == 1010


def test_a_state_whose_fields_do_not_fit_the_model_is_incompatible() -> None:
    class Other(AlgorithmState):
        total: float

    blob = encode_state("counter", 1, Counter().get_params(), Other(total=1.0), Seen(None, None, 0))
    with pytest.raises(IncompatibleState, match="does not fit counter's state model"):
        load_state(Counter(), blob)


def test_points_must_follow_the_state(fitted: bytes) -> None:
    times, values = history(3)
    with pytest.raises(InvalidInput, match="only later points") as caught:
        run_detect_next(KSigma(), times, values, fitted)
    assert caught.value.field == "detect.timestamps[0]"


def test_a_state_array_of_an_object_dtype_cannot_be_declared() -> None:
    with pytest.raises(ValueError, match="dtype object"):
        CountState(count=1, recent=np.array([object()]))


# the wire: a serve process refuses bad states and answers the next request ----------------------


def wire_detect(state: str | None = None, **extra: Any) -> bytes:
    times, values = history(2, seed=3)
    detect: dict[str, Any] = {"timestamps": (times + 10**6).tolist(), "values": values.tolist()}
    if state is not None:
        detect["state"] = state
    detect.update(extra)
    return orjson.dumps({"interface": "detect", "algorithm": "ksigma", "detect": detect})


def test_serve_refuses_every_bad_state_and_goes_on(fitted: bytes, tmp_path: Path) -> None:
    good = base64.b64encode(fitted).decode()
    tampered = base64.b64encode(fitted[:-1] + bytes([fitted[-1] ^ 1])).decode()
    marker = tmp_path / "executed"
    pickled = base64.b64encode(pickle.dumps(Boom(str(marker)))).decode()
    server = ServeProcess("--log-level", "error")
    try:
        cases = [
            (wire_detect("!!not base64!!"), "INVALID_INPUT"),
            (wire_detect(tampered), "INVALID_INPUT"),
            (wire_detect(pickled), "INVALID_INPUT"),
            (wire_detect(good, state_sha256="0" * 64), "INVALID_INPUT"),
            (wire_detect(return_state=True), "INVALID_INPUT"),
            (wire_detect(state_sha256="a" * 64), "STATE_NOT_FOUND"),
            (wire_detect(model="host=web-1"), "STATE_NOT_FOUND"),
            (
                orjson.dumps(
                    {
                        "interface": "detect",
                        "algorithm": "ksigma",
                        "params": {"k": 9},
                        "detect": orjson.loads(wire_detect(good))["detect"],
                    }
                ),
                "INCOMPATIBLE_STATE",
            ),
            (wire_detect(good, return_state=True), "ok"),
        ]
        for body, code in cases:
            answer = server.ask(body)
            got = answer["status"] if code == "ok" else answer["error"]["code"]
            assert got == code, answer
        assert server.close() == 0
    finally:
        server.close()
    assert not marker.exists()
