"""The codecs in-process: round trips of every format (hypothesis), strict typing, packed arrays,
and malformed input."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.interfaces import DetectResult, ErrorCode, InvalidInput, RCAResult, TimeSeries
from warden_algos.wire import (
    DetectPayload,
    ErrorInfo,
    RCAPayload,
    Request,
    Response,
    get_codec,
)
from warden_algos.wire.codec import CODECS

from .conftest import detect_request, dumps

codec = get_codec("json")
ALL_FORMATS = list(CODECS)


def arrays_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=True))


def series_equal(a: TimeSeries, b: TimeSeries) -> bool:
    return a.dimensions == b.dimensions and all(
        arrays_equal(getattr(a, f), getattr(b, f))
        for f in ("times", "values", "sizes", "variances")
    )


def requests_equal(a: Request, b: Request) -> bool:
    same_head = (a.interface, a.algorithm, a.params, a.request_id, a.include_band, a.packed_arrays)
    if same_head != (
        b.interface,
        b.algorithm,
        b.params,
        b.request_id,
        b.include_band,
        b.packed_arrays,
    ):
        return False
    pa, pb = a.payload, b.payload
    if isinstance(pa, DetectPayload) and isinstance(pb, DetectPayload):
        return (
            pa.dimensions == pb.dimensions
            and arrays_equal(pa.timestamps, pb.timestamps)
            and arrays_equal(pa.values, pb.values)
        )
    if isinstance(pa, RCAPayload) and isinstance(pb, RCAPayload):
        return (
            series_equal(pa.metric_of_interest, pb.metric_of_interest)
            and len(pa.related_metrics) == len(pb.related_metrics)
            and all(
                series_equal(x, y)
                for x, y in zip(pa.related_metrics, pb.related_metrics, strict=True)
            )
            and pa.k == pb.k
            and arrays_equal(pa.anomalies, pb.anomalies)
            and pa.graph == pb.graph
        )
    return False


int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats_or_nan = st.floats(allow_infinity=False)  # NaN included: it is "missing"
names = st.text(min_size=1, max_size=12)


@st.composite
def numeric_arrays(draw: Any, dtype: str, size: int) -> np.ndarray:
    element = int64s if dtype == "int64" else floats_or_nan
    return np.array(draw(st.lists(element, min_size=size, max_size=size)), dtype=dtype)


@st.composite
def time_series(draw: Any) -> TimeSeries:
    n = draw(st.integers(0, 20))
    times = np.array(sorted(draw(st.sets(int64s, min_size=n, max_size=n))), dtype=np.int64)
    return TimeSeries(
        dimensions=draw(st.dictionaries(names, names, max_size=3)),
        times=times,
        values=draw(numeric_arrays("float64", n)),
        sizes=draw(st.none() | numeric_arrays("int64", n)),
        variances=draw(st.none() | numeric_arrays("float64", n)),
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def requests(draw: Any) -> Request:
    payload: DetectPayload | RCAPayload
    if draw(st.booleans()):
        series = draw(time_series())
        payload = DetectPayload(draw(st.lists(names, max_size=3)), series.times, series.values)
        interface = "detect"
    else:
        related = draw(st.lists(time_series(), max_size=3))
        payload = RCAPayload(
            draw(time_series()),
            related,
            draw(st.integers(1, 50)),
            draw(numeric_arrays("int64", draw(st.integers(0, 5)))),
            graph=draw(st.none() | st.lists(st.tuples(names, names), max_size=4)),
        )
        interface = "rca"
    return Request(
        interface=interface,  # type: ignore[arg-type]
        algorithm=draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)),
        payload=payload,
        params=draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
        request_id=draw(st.none() | st.text(max_size=40)),
        include_band=draw(st.booleans()),
        packed_arrays=draw(st.booleans()),
    )


@pytest.mark.parametrize("format_name", ALL_FORMATS)
@settings(max_examples=200, deadline=None)
@given(request=requests())
def test_any_valid_request_round_trips_unchanged(format_name: str, request: Request) -> None:
    fmt = get_codec(format_name)
    assert requests_equal(fmt.decode_request(fmt.encode_request(request)), request)


@st.composite
def responses(draw: Any) -> Response:
    kind = draw(st.sampled_from(["detect", "rca", "error"]))
    request_id = draw(st.none() | st.text(max_size=20))
    if kind == "error":
        error = ErrorInfo(
            draw(st.sampled_from(list(ErrorCode))),
            draw(st.text(max_size=50)),
            draw(st.none() | st.text(max_size=20)),
        )
        return Response(request_id=request_id, error=error)
    if kind == "rca":
        scores = draw(st.dictionaries(names, st.floats(-1e6, 1e6), max_size=5))
        return Response(request_id=request_id, result=RCAResult.rank(scores, 10))
    n = draw(st.integers(0, 20))
    band = draw(st.none() | numeric_arrays("float64", n))
    result = DetectResult(
        timestamps=draw(numeric_arrays("int64", n)),
        scores=draw(numeric_arrays("float64", n).filter(lambda a: not np.isnan(a).any())),
        expected=band,
        lower=band,
        upper=band,
    )
    return Response(request_id=request_id, result=result, packed_arrays=draw(st.booleans()))


@pytest.mark.parametrize("format_name", ALL_FORMATS)
@settings(max_examples=150, deadline=None)
@given(response=responses())
def test_any_response_round_trips_unchanged(format_name: str, response: Response) -> None:
    fmt = get_codec(format_name)
    back = fmt.decode_response(fmt.encode_response(response))
    assert back.request_id == response.request_id
    assert back.error == response.error
    if isinstance(response.result, DetectResult):
        assert isinstance(back.result, DetectResult)
        for name in ("timestamps", "scores", "expected", "lower", "upper"):
            assert arrays_equal(getattr(back.result, name), getattr(response.result, name))
    else:
        assert back.result == response.result


def test_null_is_a_missing_value() -> None:
    request = detect_request(n=3)
    request["detect"]["values"] = [1.0, None, 3]
    decoded = codec.decode_request(dumps(request))
    assert isinstance(decoded.payload, DetectPayload)
    assert np.isnan(decoded.payload.values[1]) and decoded.payload.values[2] == 3.0


def test_packed_arrays_decode_to_the_same_numbers() -> None:
    values = np.array([1.5, np.nan, -2.0])
    times = np.array([10, 20, 30], dtype=np.int64)
    request = detect_request(n=3)
    request["detect"]["values"] = {
        "dtype": "float64",
        "base64": base64.b64encode(values.tobytes()).decode(),
    }
    request["detect"]["timestamps"] = {
        "dtype": "int64",
        "base64": base64.b64encode(times.tobytes()).decode(),
    }
    decoded = codec.decode_request(dumps(request))
    assert isinstance(decoded.payload, DetectPayload)
    assert arrays_equal(decoded.payload.values, values)
    assert arrays_equal(decoded.payload.timestamps, times)


@pytest.mark.parametrize(
    ("packed", "message"),
    [
        ({"dtype": "int64", "base64": "AAAAAAAAAAA="}, "expected float64"),
        ({"dtype": "float64", "base64": "AAAA"}, "not a whole number"),
        ({"dtype": "float64", "base64": "!!!"}, "invalid base64"),
        ({"dtype": "float32", "base64": ""}, "float64"),
    ],
)
def test_bad_packed_arrays_are_invalid_input(packed: dict[str, str], message: str) -> None:
    request = detect_request(n=1)
    request["detect"]["values"] = packed
    with pytest.raises(InvalidInput) as caught:
        codec.decode_request(dumps(request))
    assert message in str(caught.value)
    assert caught.value.field is not None and caught.value.field.startswith("detect.values")
    assert caught.value.request_id == "r1"


def test_many_bad_elements_give_a_bounded_message() -> None:
    request = detect_request(n=10_000)
    request["detect"]["values"] = ["x"] * 10_000
    with pytest.raises(InvalidInput) as caught:
        codec.decode_request(dumps(request))
    assert len(caught.value.message) < 1000
    assert "more problems" in caught.value.message


def test_response_keeps_the_ranking_order() -> None:
    body = codec.encode_response(
        Response("x", result=RCAResult.rank({"b": 0.5, "a": 0.9, "c": 0.5}, 3))
    )
    assert list(orjson.loads(body)["rca"]["contributions"]) == ["a", "b", "c"]


def test_cli_formats_match_the_codec_table() -> None:
    from warden_algos.cli import FORMATS

    assert list(CODECS) == FORMATS


THRIFT = ["thrift-binary", "thrift-compact"]


def thrift_request(format_name: str, **changes: Any) -> bytes:
    """A valid detect request in a Thrift format, with generated-struct fields overridden."""
    from warden_algos.wire.warden_wire import ttypes as wire

    message = wire.Request(
        interface_name="detect",
        algorithm="ksigma",
        request_id="t1",
        detect=wire.DetectPayload(dimensions=["h=a"], timestamps=[1, 2, 3], values=[1.0, 2.0, 3.0]),
    )
    for name, value in changes.items():
        target = message
        *parents, last = name.split(".")
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, last, value)
    return get_codec(format_name)._serialize(message, False)  # type: ignore[attr-defined]


@pytest.mark.parametrize("format_name", THRIFT)
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"interface_name": "forecast"}, "interface_name", "must be 'detect', 'rca' or 'fit'"),
        ({"algorithm": ""}, "algorithm", "1 to 200"),
        ({"detect.values": None}, "detect.values", "missing"),
        ({"detect.values_packed": b"\0" * 24}, "detect.values", "not both"),
        ({"detect.values": None, "detect.values_packed": b"\0" * 7}, "detect.values", "8-byte"),
        ({"params_json": "[1]"}, "params", "JSON object"),
        ({"params_json": "{"}, "params", "not valid JSON"),
        ({"detect": None}, None, "exactly one payload"),
    ],
)
def test_thrift_request_problems_name_the_field(
    format_name: str, changes: dict[str, Any], field: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        get_codec(format_name).decode_request(thrift_request(format_name, **changes))
    assert message in caught.value.message
    assert caught.value.field == field
    assert caught.value.request_id == "t1"


@pytest.mark.parametrize("format_name", THRIFT)
@pytest.mark.parametrize(
    "body",
    [b"", b"\xff" * 16, b"\x0b\x00\x01\x7f\xff\xff\xff", b"\x0f\x00\x02\x0a\x7f\xff\xff\xff"],
)
def test_garbage_thrift_is_invalid_input(format_name: str, body: bytes) -> None:
    with pytest.raises(InvalidInput, match=f"not valid {format_name}|after the end|payload"):
        get_codec(format_name).decode_request(body)


@pytest.mark.parametrize("format_name", THRIFT)
def test_trailing_bytes_after_a_thrift_request_are_refused(format_name: str) -> None:
    with pytest.raises(InvalidInput, match="after the end"):
        get_codec(format_name).decode_request(thrift_request(format_name) + b"\x00\x00")


@pytest.mark.parametrize("format_name", THRIFT)
def test_packed_and_list_thrift_responses_hold_the_same_numbers(format_name: str) -> None:
    fmt = get_codec(format_name)
    band = np.array([1.0, np.nan, 3.0])
    result = DetectResult(np.array([5], dtype=np.int64), np.array([2.5]), band, band, band)
    for packed in (False, True):
        back = fmt.decode_response(fmt.encode_response(Response("x", result, None, packed)))
        assert isinstance(back.result, DetectResult)
        assert arrays_equal(back.result.expected, band)
        assert back.packed_arrays == packed


def test_generated_thrift_code_matches_the_idl() -> None:
    import shutil
    import subprocess

    from .conftest import ROOT

    assert shutil.which("thrift"), "thrift-compiler is not installed (.ci/run installs it)"
    done = subprocess.run(
        ["bash", str(ROOT / "dev" / "gen_thrift.sh"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
