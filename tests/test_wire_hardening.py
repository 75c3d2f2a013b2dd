"""Wire hardening (issue 15): oversized frame headers answered at once, duplicate JSON keys refused,
formatted payload-mismatch messages, and detectors safe at the int64 extremes of time."""

from __future__ import annotations

import os
import select
import struct
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from thrift.protocol.TBinaryProtocol import TBinaryProtocol
from thrift.protocol.TCompactProtocol import TCompactProtocol
from thrift.transport.TTransport import TMemoryBuffer

from warden_algos.algorithms.ensemble import Ensemble
from warden_algos.algorithms.seasonal import Seasonal
from warden_algos.dispatcher import Dispatcher
from warden_algos.interfaces import run_detect
from warden_algos.registry import Registry, is_detect
from warden_algos.wire import FrameReader, FrameTooLarge, get_codec
from warden_algos.wire.warden_wire import ttypes

from .conftest import cli, detect_request, dumps, frame, rca_request

MIB = 1024 * 1024
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


# --- 1. an oversized frame header is answered at once -------------------------------------------


def receive_within(server: Any, seconds: float) -> dict[str, Any]:
    """The next response frame, failing (instead of hanging) when none starts within ``seconds``."""
    stdout = server.proc.stdout
    ready, _, _ = select.select([stdout], [], [], seconds)
    assert ready, f"no answer within {seconds} s; stderr: {server.stderr_tail()}"
    response: dict[str, Any] = server.receive()
    return response


def write(server: Any, data: bytes) -> None:
    server.proc.stdin.write(data)
    server.proc.stdin.flush()


def test_oversized_header_is_answered_before_its_body_and_later_frames_keep_order(
    serve_factory: Any,
) -> None:
    server = serve_factory("--max-request-mb", "1")
    claimed = 3 * MIB
    write(server, struct.pack(">I", claimed) + b"x" * MIB)  # a third of the announced body
    refused = receive_within(server, 30)
    assert refused["status"] == "error"
    assert refused["error"]["code"] == "INVALID_INPUT"
    message = refused["error"]["message"]
    assert f"frame of {claimed} bytes exceeds the limit of {MIB} bytes" in message
    assert "--max-request-mb 1" in message
    # the rest of the refused body, then two frames that must be answered, in order
    write(
        server,
        b"y" * (claimed - MIB)
        + frame(dumps(detect_request(request_id="after-1")))
        + frame(dumps(rca_request(request_id="after-2"))),
    )
    first, second = server.receive(), server.receive()
    assert (first["request_id"], first["status"]) == ("after-1", "ok")
    assert (second["request_id"], second["status"]) == ("after-2", "ok")
    assert server.close() == 0


def test_a_4_gib_header_is_answered_at_once_and_the_stream_ends_at_eof(serve_factory: Any) -> None:
    """A client that announced more than it sends cannot get back in step: what it sends next is
    skipped as body, and the stream ends at end of input with the refusal already answered."""
    server = serve_factory("--max-request-mb", "1")
    write(server, struct.pack(">I", 2**32 - 1) + b"z" * 4096)
    refused = receive_within(server, 30)
    assert refused["error"]["code"] == "INVALID_INPUT"
    message = refused["error"]["message"]
    assert "frame of 4294967295 bytes exceeds the limit of 1048576 bytes" in message
    write(server, frame(dumps(detect_request(request_id="swallowed"))))
    assert server.close() == 0
    assert server.proc.stdout.read() == b""  # nothing more: no answer for the swallowed bytes
    assert "input ended inside a refused oversized frame" in server.stderr_text()


def test_frame_reader_refuses_a_header_without_waiting_for_its_body() -> None:
    read_end, write_end = os.pipe()
    reader = FrameReader(read_end, max_frame_bytes=100)
    outcome: list[BaseException | bytearray | None] = []

    def read() -> None:
        try:
            outcome.append(reader.read_frame())
        except Exception as error:  # handed to the test thread
            outcome.append(error)

    try:
        os.write(write_end, struct.pack(">I", 2**32 - 1))  # no body byte has been sent
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        thread.join(10)
        waited = thread.is_alive()
        os.write(write_end, b"a" * 1000)
        os.close(write_end)
        write_end = -1
        thread.join(10)
        assert not waited, "read_frame waited for the body of a frame it refuses"
        assert len(outcome) == 1 and isinstance(outcome[0], FrameTooLarge)
        assert (outcome[0].size, outcome[0].limit) == (2**32 - 1, 100)
        assert reader.pending_skip == 2**32 - 1
        assert reader.read_frame() is None  # skips what came, then input ends inside the body
        assert reader.ended_inside_refused_frame == 2**32 - 1 - 1000
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


# --- 2. duplicate JSON keys are refused ---------------------------------------------------------


def json_answer(raw: bytes) -> dict[str, Any]:
    body, _ = Dispatcher(get_codec("json")).handle(raw)
    answer: dict[str, Any] = orjson.loads(body)
    return answer


def with_duplicate(request: dict[str, Any], path: str, key: str, value: Any) -> bytes:
    """``request`` as JSON with ``"key": value`` added (again) at the end of the object at
    ``path`` (dotted; "" for the top level)."""
    marker = "__marker__"
    target = request
    for part in filter(None, path.split(".")):
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[marker] = 0
    raw = dumps(request)
    return raw.replace(b'"__marker__":0', f'"{key}":'.encode() + orjson.dumps(value))


@pytest.mark.parametrize(
    ("request_", "path", "key", "value", "field"),
    [
        (detect_request(), "", "algorithm", "mad", "algorithm"),
        (detect_request(), "", "interface", "detect", "interface"),
        (detect_request(params={"k": 4, "window": 30}), "params", "k", 1, "params.k"),
        (detect_request(), "detect", "values", [1.0], "detect.values"),
        (
            rca_request(),
            "rca.related_metrics.1.dimensions",
            "dep",
            "other",
            "rca.related_metrics[1].dimensions.dep",
        ),
        (
            detect_request(params={"nested": [{"a": 1}]}),
            "params.nested.0",
            "a",
            2,
            "params.nested[0].a",
        ),
    ],
)
def test_duplicate_json_keys_are_refused_naming_key_and_path(
    request_: dict[str, Any], path: str, key: str, value: Any, field: str
) -> None:
    raw = with_duplicate(request_, path, key, value)
    assert orjson.loads(raw)  # valid JSON, where the last value would silently win
    answer = json_answer(raw)
    assert answer["status"] == "error"
    assert answer["error"]["code"] == "INVALID_INPUT"
    assert answer["error"]["field"] == field
    assert f"duplicate key {key!r}" in answer["error"]["message"]
    assert answer["request_id"] == request_["request_id"]


def test_a_duplicate_algorithm_is_refused_by_run() -> None:
    raw = with_duplicate(detect_request(), "", "algorithm", "no_such_algorithm")
    done = cli("run", stdin=raw)
    assert done.returncode == 0
    answer = orjson.loads(done.stdout)
    assert answer["error"]["code"] == "INVALID_INPUT"  # not UNKNOWN_ALGORITHM: no key wins
    assert answer["error"]["field"] == "algorithm"


def test_duplicate_key_hidden_by_an_escaped_colon_is_still_found() -> None:
    """``\\u003a`` is a colon the text does not show: the fast count must not be fooled by it."""
    request = detect_request(params={"k": 4})
    request["request_id"] = "a:b"
    raw = with_duplicate(request, "params", "k", 5).replace(b'"a:b"', b'"a\\u003a"')
    answer = json_answer(raw)
    assert answer["error"]["field"] == "params.k"


def test_colons_and_escapes_without_duplicates_are_accepted() -> None:
    request = detect_request(request_id="id:with:colons")
    request["detect"]["dimensions"] = ["host:a", "zone=b:c"]
    raw = dumps(request).replace(b'"zone=b:c"', b'"zone=b\\u003ac\\""')
    answer = json_answer(raw)
    assert answer["status"] == "ok", answer
    rca = rca_request()
    rca["rca"]["related_metrics"][0]["dimensions"] = {"dep:x": "a:b", "dep": "c"}
    assert json_answer(dumps(rca))["status"] == "ok"


def test_a_colon_inside_a_numeric_array_does_not_hide_a_duplicate() -> None:
    """A string (with colons) where a number belongs is not counted by the fast path; the exact
    check runs instead, and the duplicate is still reported first."""
    request = detect_request(n=20)
    request["detect"]["values"][3] = "x:y:z"
    raw = with_duplicate(request, "", "algorithm", "mad")
    assert json_answer(raw)["error"]["field"] == "algorithm"


def thrift_request(format_name: str, params_json: str) -> bytes:
    """A Thrift request (``format_name``) whose params travel as exactly ``params_json``."""
    codec = get_codec(format_name)
    decoded = get_codec("json").decode_request(dumps(detect_request(params={"k": 4})))
    protocol = TBinaryProtocol if format_name == "thrift-binary" else TCompactProtocol
    message = ttypes.Request()
    message.read(protocol(TMemoryBuffer(codec.encode_request(decoded))))
    message.params_json = params_json
    out = TMemoryBuffer()
    message.write(protocol(out))
    data: bytes = out.getvalue()
    return data


@pytest.mark.parametrize("format_name", ["thrift-binary", "thrift-compact"])
def test_duplicate_keys_in_thrift_params_json_are_refused(format_name: str) -> None:
    codec = get_codec(format_name)
    dispatcher = Dispatcher(codec)
    body, _ = dispatcher.handle(thrift_request(format_name, '{"k": 4, "window": 30, "k": 1}'))
    error = codec.decode_response(body).error
    assert error is not None
    assert error.code.value == "INVALID_INPUT"
    assert error.field == "params.k"
    assert "duplicate key 'k'" in error.message
    body, _ = dispatcher.handle(thrift_request(format_name, '{"k": 4, "window": 30}'))
    assert codec.decode_response(body).ok


# --- 3. the payload-mismatch message is formatted -----------------------------------------------


def test_json_payload_mismatch_message_names_the_interface() -> None:
    request = detect_request()
    request["interface"] = "rca"
    message = json_answer(dumps(request))["error"]["message"]
    assert message == "interface 'rca' needs exactly one payload object, 'rca'; got: detect"
    both = dict(detect_request(), rca=rca_request()["rca"])
    message = json_answer(dumps(both))["error"]["message"]
    assert message == (
        "interface 'detect' needs exactly one payload object, 'detect'; got: detect, rca"
    )


@pytest.mark.parametrize("format_name", ["thrift-binary", "thrift-compact"])
def test_thrift_payload_mismatch_message_names_the_interface(format_name: str) -> None:
    codec = get_codec(format_name)
    protocol = TBinaryProtocol if format_name == "thrift-binary" else TCompactProtocol
    decoded = get_codec("json").decode_request(dumps(detect_request()))
    message = ttypes.Request()
    message.read(protocol(TMemoryBuffer(codec.encode_request(decoded))))
    message.interface_name = "rca"
    out = TMemoryBuffer()
    message.write(protocol(out))
    body, _ = Dispatcher(codec).handle(out.getvalue())
    error = codec.decode_response(body).error
    assert error is not None
    assert "{" not in error.message
    assert error.message == "interface 'rca' needs exactly one payload struct, 'rca'; got: detect"


# --- 4. detectors at the int64 extremes of time -------------------------------------------------


def hourly_series(n: int = 24 * 14, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(n)
    values = 100 + 20 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, n)
    values[n - 30] += 60
    return values


EXTREME_TIMES: dict[str, Callable[[int], np.ndarray]] = {
    "near the top": lambda n: INT64_MAX - 3600 * np.arange(n, dtype=np.int64)[::-1],
    "near the bottom": lambda n: INT64_MIN + 3600 * np.arange(n, dtype=np.int64),
    "across the whole range": lambda n: np.concatenate(
        ([INT64_MIN], 1_700_000_000 + 3600 * np.arange(n - 2, dtype=np.int64), [INT64_MAX])
    ),
    "evenly over the whole range": lambda n: (
        INT64_MIN + (np.arange(n, dtype=np.uint64) * np.uint64(2**64 // n)).view(np.int64)
    ),
}


@pytest.mark.parametrize("where", ["near the top", "near the bottom"])
def test_seasonal_near_the_int64_extremes_answers_as_for_ordinary_times(where: str) -> None:
    """Only differences of time matter: shifted to the extremes, the same series gets the same
    scores and band."""
    values = hourly_series()
    extreme = EXTREME_TIMES[where](values.shape[0])
    ordinary = 1_700_000_000 + 3600 * np.arange(values.shape[0], dtype=np.int64)
    for params in ({}, {"periods": [86400]}, {"every_point": True}):
        at_extreme = run_detect(Seasonal(**params), extreme, values)
        at_ordinary = run_detect(Seasonal(**params), ordinary, values)
        np.testing.assert_array_equal(at_extreme.scores, at_ordinary.scores)
        np.testing.assert_array_equal(at_extreme.expected, at_ordinary.expected)
        assert at_ordinary.timestamps.size  # the spike is found...
        positions = np.searchsorted(ordinary, at_ordinary.timestamps)
        np.testing.assert_array_equal(at_extreme.timestamps, extreme[positions])  # ...at both


@pytest.mark.parametrize("where", list(EXTREME_TIMES))
@pytest.mark.parametrize("algorithm", [Seasonal, Ensemble])
def test_seasonal_and_ensemble_anywhere_in_the_int64_range(algorithm: Any, where: str) -> None:
    values = hourly_series()
    times = EXTREME_TIMES[where](values.shape[0])
    result = run_detect(algorithm(), times, values)  # used to raise (negative grid slots)
    assert result.scores.shape == result.timestamps.shape
    assert result.expected is not None and result.expected.shape == values.shape
    assert np.isin(result.timestamps, times).all()


def test_no_builtin_detector_fails_on_extreme_timestamps() -> None:
    """Through the dispatcher, as a host sees it: a result, or INVALID_INPUT for times a detector
    cannot represent (prophet's pandas range), never ALGORITHM_FAILED."""
    registry = Registry.discover()
    dispatcher = Dispatcher(get_codec("json"))
    values = hourly_series(n=120)
    answers = {}
    for name in registry.names():
        if not is_detect(registry.load(name)):
            continue
        for where, make in EXTREME_TIMES.items():
            request = detect_request(algorithm=name, request_id=f"{name} {where}")
            request["detect"]["timestamps"] = make(values.shape[0]).tolist()
            request["detect"]["values"] = values.tolist()
            answer = orjson.loads(dispatcher.handle(dumps(request))[0])
            answers[answer["request_id"]] = answer.get("error", {}).get("code", "ok")
    assert "seasonal near the top" in answers
    assert "ensemble across the whole range" in answers
    failed = {key: code for key, code in answers.items() if code not in ("ok", "INVALID_INPUT")}
    assert failed == {}


def test_incidents_far_apart_at_the_int64_extremes_stay_apart() -> None:
    """incident_mask merged flagged points 2^63 s apart: their signed gap wrapped negative."""
    from warden_algos.algorithms.common import incident_mask

    times = np.array([-(2**63), -(2**63) + 5, 2**63 - 10, 2**63 - 1], dtype=np.int64)
    flagged = np.array([True, False, True, False])
    assert incident_mask(times, flagged, 3600).tolist() == [True, False, True, False]
    close = np.array([0, 5, 10, 20], dtype=np.int64)
    assert incident_mask(close, flagged, 3600).tolist() == [True, True, True, False]


def test_an_rca_request_to_a_detector_names_both_interfaces() -> None:
    request = rca_request()
    request["algorithm"] = "ksigma"
    done = cli("run", stdin=dumps(request))
    message = orjson.loads(done.stdout)["error"]["message"]
    assert message == "'ksigma' implements the detect interface, not rca"
