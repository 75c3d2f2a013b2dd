"""``run`` and ``serve`` speak Thrift binary and compact through a real process."""

from __future__ import annotations

import pytest

from warden_algos.interfaces import DetectResult, ErrorCode, RCAResult
from warden_algos.wire import get_codec

from .conftest import cli, detect_request, dumps, frame, rca_request, read_frames

THRIFT = ["thrift-binary", "thrift-compact"]
json_codec = get_codec("json")


def as_format(format_name: str, request: dict[str, object]) -> bytes:
    return get_codec(format_name).encode_request(json_codec.decode_request(dumps(request)))


@pytest.mark.parametrize("format_name", THRIFT)
@pytest.mark.parametrize("packed", [False, True])
def test_run_answers_in_the_request_format(format_name: str, packed: bool) -> None:
    fmt = get_codec(format_name)
    body = as_format(
        format_name, detect_request(params={"window": 50, "k": 4}, packed_arrays=packed)
    )
    done = cli("run", "--format", format_name, stdin=body)
    assert done.returncode == 0, done.stderr.decode()
    response = fmt.decode_response(done.stdout)
    assert response.error is None and response.request_id == "r1"
    assert isinstance(response.result, DetectResult)
    assert response.packed_arrays == packed
    # Same answer as the JSON form of the same request.
    json_done = cli("run", stdin=dumps(detect_request(params={"window": 50, "k": 4})))
    json_result = json_codec.decode_response(json_done.stdout).result
    assert isinstance(json_result, DetectResult)
    assert response.result.timestamps.tolist() == json_result.timestamps.tolist()
    assert response.result.scores.tolist() == json_result.scores.tolist()


@pytest.mark.parametrize("format_name", THRIFT)
def test_garbage_in_thrift_gets_a_thrift_error(format_name: str) -> None:
    done = cli("run", "--format", format_name, stdin=b"\xde\xad\xbe\xef")
    assert done.returncode == 0
    response = get_codec(format_name).decode_response(done.stdout)
    assert response.error is not None and response.error.code == ErrorCode.INVALID_INPUT


@pytest.mark.parametrize("format_name", THRIFT)
def test_serve_speaks_thrift_frames(format_name: str) -> None:
    fmt = get_codec(format_name)
    bodies = [
        as_format(format_name, detect_request(request_id="a")),
        b"not thrift at all",
        as_format(format_name, rca_request(request_id="b")),
        as_format(format_name, detect_request(algorithm="nope", request_id="c")),
    ]
    done = cli("serve", "--format", format_name, stdin=b"".join(frame(b) for b in bodies))
    assert done.returncode == 0
    responses = [fmt.decode_response(body) for body in read_frames(done.stdout)]
    assert [r.request_id for r in responses] == ["a", None, "b", "c"]
    assert isinstance(responses[0].result, DetectResult)
    assert responses[1].error is not None and responses[1].error.code == ErrorCode.INVALID_INPUT
    assert isinstance(responses[2].result, RCAResult)
    assert responses[3].error is not None
    assert responses[3].error.code == ErrorCode.UNKNOWN_ALGORITHM
