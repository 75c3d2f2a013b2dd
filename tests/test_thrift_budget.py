"""Thrift requests whose decoded form would exceed the memory budget are refused before the C
reader materialises them: the review's millions of tiny related metrics and a huge compact list of
small varints answer INVALID_INPUT naming the limit, in a process that stays small; legitimate
requests (the shared vectors, a million points as lists or packed) decode as before; ``none`` turns
the check off; malformed bytes only ever give INVALID_INPUT, quickly."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from thrift.protocol.TBinaryProtocol import TBinaryProtocol
from thrift.protocol.TCompactProtocol import TCompactProtocol
from thrift.transport.TTransport import TMemoryBuffer

from warden_algos.interfaces import ErrorCode, InvalidInput, TimeSeries
from warden_algos.wire import DetectPayload, RCAPayload, Request, get_codec
from warden_algos.wire import thrift_budget as tb
from warden_algos.wire.thrift_budget import check_thrift_decode_budget
from warden_algos.wire.warden_wire import ttypes as wire

from .conftest import ROOT

Protocol = Literal["thrift-binary", "thrift-compact"]
THRIFT: list[Protocol] = ["thrift-binary", "thrift-compact"]
VECTORS = sorted((ROOT / "serialization" / "vectors").glob("*/request.thrift-*"))

# -- raw messages: the generated writer is too slow (and too big) for millions of elements ------

STRUCT, LIST, I64, DOUBLE, STRING = 12, 15, 10, 4, 11
COMPACT_TYPE = {STRUCT: 12, LIST: 9, I64: 6, DOUBLE: 7, STRING: 8}


def serialize(struct: Any, protocol: Protocol) -> bytes:
    buffer = TMemoryBuffer()
    struct.write((TBinaryProtocol if protocol == "thrift-binary" else TCompactProtocol)(buffer))
    data: bytes = buffer.getvalue()
    return data


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(protocol: Protocol, ttype: int, field_id: int) -> bytes:
    """A field header in the long form (valid after any previous field)."""
    if protocol == "thrift-binary":
        return bytes([ttype]) + field_id.to_bytes(2, "big")
    return bytes([COMPACT_TYPE[ttype]]) + varint(field_id << 1)


def list_header(protocol: Protocol, etype: int, count: int) -> bytes:
    if protocol == "thrift-binary":
        return bytes([etype]) + count.to_bytes(4, "big")
    return bytes([0xF0 | COMPACT_TYPE[etype]]) + varint(count)


def with_fields(message: bytes, *fields: bytes) -> bytes:
    """A serialized struct with more fields appended before its stop byte."""
    assert message.endswith(b"\x00")
    return message[:-1] + b"".join(fields) + b"\x00"


def rca_with_related(protocol: Protocol, element: bytes, count: int) -> bytes:
    """An RCA request whose related_metrics are ``count`` copies of one serialized TimeSeries."""
    head = serialize(wire.Request(interface_name="rca", algorithm="correlation"), protocol)
    moi = wire.TimeSeries(dimensions={}, times=[1], values=[1.0])
    rca = serialize(wire.RcaPayload(metric_of_interest=moi, k=1, anomalies=[1]), protocol)
    related = field(protocol, LIST, 2) + list_header(protocol, STRUCT, count) + element * count
    return with_fields(head, field(protocol, STRUCT, 8) + with_fields(rca, related))


def detect_with_raw_times(protocol: Protocol, items: bytes, count: int) -> bytes:
    head = serialize(wire.Request(interface_name="detect", algorithm="ksigma"), protocol)
    detect = serialize(wire.DetectPayload(values=[1.0]), protocol)
    times = field(protocol, LIST, 2) + list_header(protocol, I64, count) + items
    return with_fields(head, field(protocol, STRUCT, 7) + with_fields(detect, times))


TINY_METRIC = wire.TimeSeries(times=[], values=[])  # 5 bytes compact, 17 binary

#: Runs ``python -m warden_algos run --format F`` as its only child and prints that child's peak
#: RSS (KiB) on its last stderr line: the measure cannot include anything else this test started.
MEASURED_RUN = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "warden_algos", "run", "--format", sys.argv[1]],
                      stdin=sys.stdin)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(done.returncode)
"""


def measured_run(request: bytes, protocol: Protocol) -> tuple[Any, int, float]:
    """(decoded response, peak RSS in MiB, seconds) of one one-shot run."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED_RUN, protocol],
        input=request,
        capture_output=True,
        timeout=300,
        check=False,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    peak_kib = int(done.stderr.decode().strip().splitlines()[-1])
    return get_codec(protocol).decode_response(done.stdout), peak_kib // 1024, seconds


def walk(data: bytes, protocol: Protocol, budget: int = 1 << 62) -> tb._Walk:
    """The walk itself, to its end (no budget to speak of)."""
    walker = tb._Walk(data, budget, compact=protocol == "thrift-compact")
    walker.request()
    return walker


# -- the review's cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", THRIFT)
def test_millions_of_tiny_related_metrics_are_refused_before_decoding(protocol: Protocol) -> None:
    """The review's case: 4.1M tiny related metrics in one request drove a process to ~8 GB."""
    request = rca_with_related(protocol, serialize(TINY_METRIC, protocol), 4_100_000)
    response, peak_mib, seconds = measured_run(request, protocol)
    assert response.error is not None and response.error.code == ErrorCode.INVALID_INPUT
    message = response.error.message
    assert "decoding this request would take more than" in message
    assert "4,100,003 structs" in message  # the metrics, the request, its payload, its metric
    assert "budget of 2,048 MiB (WARDEN_MAX_REQUEST_MB)" in message
    assert peak_mib < 800, peak_mib  # the request's bytes, not the 3 GB its decoding would take
    assert seconds < 60  # a few seconds, mostly the process starting: this bound catches hangs


def test_a_huge_compact_list_of_small_varints_is_refused_before_decoding() -> None:
    """50M one-byte varints (-64, past the small-int cache): 50 MB that decode to 2.4 GB."""
    request = detect_with_raw_times("thrift-compact", b"\x7f" * 50_000_000, 50_000_000)
    response, peak_mib, _ = measured_run(request, "thrift-compact")
    assert response.error is not None and response.error.code == ErrorCode.INVALID_INPUT
    assert "at least 50,000,001 list elements" in response.error.message
    assert "WARDEN_MAX_REQUEST_MB" in response.error.message
    assert peak_mib < 800, peak_mib


@pytest.mark.parametrize("protocol", THRIFT)
def test_a_list_of_doubles_over_a_smaller_budget_is_refused(
    protocol: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MB", "100")
    doubles = np.ones(3_000_000).astype("<f8" if protocol == "thrift-compact" else ">f8")
    head = serialize(wire.Request(interface_name="detect", algorithm="ksigma"), protocol)
    detect = serialize(wire.DetectPayload(timestamps=[1]), protocol)
    values = field(protocol, LIST, 3) + list_header(protocol, DOUBLE, 3_000_000)
    request = with_fields(
        head, field(protocol, STRUCT, 7) + with_fields(detect, values + doubles.tobytes())
    )
    with pytest.raises(InvalidInput, match="budget of 100 MiB"):
        get_codec(protocol).decode_request(request)


@pytest.mark.parametrize("protocol", THRIFT)
def test_params_json_is_charged_as_the_json_check_charges_json(
    protocol: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warden_algos.wire import json_codec

    assert tb.JSON_BYTES_PER_VALUE == json_codec.BYTES_PER_VALUE
    assert tb.JSON_BYTES_PER_OBJECT == json_codec.BYTES_PER_OBJECT
    params = '{"x": [' + ",".join(["{}"] * 2_000_000) + "]}"  # 6 MB, ~3 GB as JSON objects
    request = serialize(
        wire.Request(interface_name="detect", algorithm="ksigma", params_json=params), protocol
    )
    with pytest.raises(InvalidInput, match="WARDEN_MAX_REQUEST_MB"):
        check_thrift_decode_budget(request, protocol)
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MB", "none")
    check_thrift_decode_budget(request, protocol)


@pytest.mark.parametrize("protocol", THRIFT)
def test_fields_this_version_does_not_know_are_charged_too(protocol: Protocol) -> None:
    """The reader skips them, but the walk has to step over them: charging them bounds it."""
    head = serialize(wire.Request(interface_name="detect", algorithm="ksigma"), protocol)
    unknown = field(protocol, LIST, 40) + list_header(protocol, STRUCT, 3_000_000)
    request = with_fields(head, unknown + b"\x00" * 3_000_000)
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match="3,000,001 structs"):
        check_thrift_decode_budget(request, protocol)
    assert time.perf_counter() - started < 5  # refused at the list's header; catches hangs


# -- legitimate requests are unaffected ------------------------------------------------------------


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: f"{p.parent.name}/{p.suffix[1:]}")
def test_every_shared_vector_is_walked_to_its_last_byte(path: Path) -> None:
    protocol: Protocol = path.suffix[1:]  # type: ignore[assignment]
    data = path.read_bytes()
    walker = walk(data, protocol)
    assert walker.pos == len(data)
    assert walker.cost < 1 << 20
    check_thrift_decode_budget(data, protocol)  # and decodes as before (tests/test_vectors.py)


def million_points(packed: bool) -> Request:
    n = 1_000_000
    times = 1_700_000_000 + 60 * np.arange(n, dtype=np.int64)
    values = np.random.default_rng(0).normal(100, 1, n)
    return Request(
        interface="detect",
        algorithm="ksigma",
        payload=DetectPayload(["host=a"], times, values),
        params={"window": 60},
        request_id="big",
        packed_arrays=packed,
    )


@pytest.mark.parametrize("protocol", THRIFT)
@pytest.mark.parametrize("packed", [False, True], ids=["list", "packed"])
def test_a_million_points_are_accepted_as_lists_and_packed(
    protocol: Protocol, packed: bool
) -> None:
    codec = get_codec(protocol)
    request = million_points(packed)
    data = codec.encode_request(request)
    assert len(data) * tb.WORST_BYTES_PER_WIRE_BYTE > 2048 << 20  # so the check does walk it
    walker = walk(data, protocol)
    assert walker.pos == len(data) and walker.cost < 200 << 20
    decoded = codec.decode_request(data)
    assert isinstance(decoded.payload, DetectPayload) and isinstance(request.payload, DetectPayload)
    assert np.array_equal(decoded.payload.timestamps, request.payload.timestamps)
    assert np.array_equal(decoded.payload.values, request.payload.values)


def test_a_million_points_over_many_related_metrics_are_accepted() -> None:
    """RCA in compact list form: 2,000 related metrics of 500 points (the struct walk)."""
    rng = np.random.default_rng(1)
    times = 1_700_000_000 + 60 * np.arange(500, dtype=np.int64)
    related = [
        TimeSeries({"dc": f"d{i % 4}", "host": f"h{i}"}, times, rng.normal(5, 1, 500))
        for i in range(2_000)
    ]
    payload = RCAPayload(TimeSeries({}, times, np.ones(500)), related, 3, times[250:251])
    codec = get_codec("thrift-compact")
    data = codec.encode_request(Request("rca", "correlation", payload, params={}))
    walker = walk(data, "thrift-compact")
    assert walker.pos == len(data)
    assert walker.structs == 2_003  # the request, its payload, the metric of interest, related
    decoded = codec.decode_request(data)
    assert isinstance(decoded.payload, RCAPayload) and len(decoded.payload.related_metrics) == 2_000


@pytest.mark.parametrize("protocol", THRIFT)
def test_none_turns_the_check_off_and_a_number_sets_it(
    protocol: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    attack = rca_with_related(protocol, serialize(TINY_METRIC, protocol), 4_100_000)
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MB", "none")
    check_thrift_decode_budget(attack, protocol)  # not even walked
    packed = get_codec(protocol).encode_request(million_points(packed=True))
    check_thrift_decode_budget(packed, protocol)
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MB", "10")  # the packed arrays alone are 16 MB
    with pytest.raises(InvalidInput, match="budget of 10 MiB"):
        check_thrift_decode_budget(packed, protocol)


# -- malformed bytes ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", THRIFT)
def test_nesting_deeper_than_the_reader_allows_is_refused(
    protocol: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MB", "1")  # walk messages over ~1.3 KB
    nested = field(protocol, STRUCT, 30) * 63 + b"\x00" * 64  # 64 levels with the request
    assert walk(nested, protocol).pos == len(nested)  # what the reader still decodes
    deep = field(protocol, STRUCT, 30) * 10_000 + b"\x00" * 10_001
    with pytest.raises(InvalidInput, match="nested more than 64 levels deep"):
        check_thrift_decode_budget(deep, protocol)
    deep_lists = field(protocol, LIST, 30) + list_header(protocol, LIST, 1) * 10_000
    with pytest.raises(InvalidInput, match="nested more than 64 levels deep"):
        check_thrift_decode_budget(deep_lists, protocol)


@pytest.mark.parametrize("protocol", THRIFT)
def test_forged_counts_and_lengths_are_left_to_the_reader(
    protocol: Protocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A count or length past the end is the reader's error to report (it fails there too)."""
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MB", "0.01")  # walk messages over 13 bytes
    head = serialize(wire.Request(interface_name="rca", algorithm="x"), protocol)
    huge_length = b"\x7f\xff\xff\xff" if protocol == "thrift-binary" else varint(2**31 - 1)
    for forged in (
        with_fields(head, field(protocol, LIST, 40) + list_header(protocol, STRUCT, 2**31 - 1)),
        with_fields(head, field(protocol, LIST, 40) + list_header(protocol, I64, 10**9)),
        head[:-1] + field(protocol, STRING, 3) + huge_length + b"{}",
    ):
        check_thrift_decode_budget(forged, protocol)
        with pytest.raises(InvalidInput, match=f"not valid {protocol}"):
            get_codec(protocol).decode_request(forged)


def timeseries() -> st.SearchStrategy[wire.TimeSeries]:
    ints = st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8)
    floats = st.lists(st.floats(allow_nan=False), max_size=8)
    return st.builds(
        wire.TimeSeries,
        dimensions=st.none()
        | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
        times=st.none() | ints,
        values=st.none() | floats,
        sizes=st.none() | ints,
        variances=st.none() | floats,
        times_packed=st.none() | st.binary(max_size=24),
    )


requests = st.builds(
    wire.Request,
    interface_name=st.none() | st.sampled_from(["detect", "rca"]) | st.text(max_size=8),
    algorithm=st.none() | st.text(max_size=12),
    params_json=st.none() | st.text(alphabet='{}[],:"0a ', max_size=30),
    request_id=st.none() | st.text(max_size=8),
    include_band=st.none() | st.booleans(),
    detect=st.none()
    | st.builds(
        wire.DetectPayload,
        dimensions=st.none() | st.lists(st.text(max_size=6), max_size=4),
        timestamps=st.none() | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8),
        values=st.none() | st.lists(st.floats(), max_size=8),
        values_packed=st.none() | st.binary(max_size=24),
    ),
    rca=st.none()
    | st.builds(
        wire.RcaPayload,
        metric_of_interest=st.none() | timeseries(),
        related_metrics=st.none() | st.lists(timeseries(), max_size=3),
        k=st.none() | st.integers(-(2**31), 2**31 - 1),
        anomalies=st.none() | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4),
        graph=st.none()
        | st.lists(
            st.builds(
                wire.GraphEdge,
                parent=st.none() | st.text(max_size=5),
                child=st.none() | st.text(max_size=5),
            ),
            max_size=3,
        ),
    ),
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(message=requests, protocol=st.sampled_from(THRIFT), copies=st.integers(1, 40))
def test_the_walk_ends_where_the_message_does_and_copies_cost_the_same(
    message: Any, protocol: Protocol, copies: int
) -> None:
    data = serialize(message, protocol)
    assert walk(data, protocol).pos == len(data)
    # a run of identical related metrics (stepped over at once) costs what one costs, n times
    metric = message.rca.metric_of_interest if message.rca is not None else None
    element = serialize(metric or TINY_METRIC, protocol)
    one, many = (walk(rca_with_related(protocol, element, n), protocol) for n in (1, copies))
    base = walk(rca_with_related(protocol, b"", 0), protocol)
    assert many.pos == len(rca_with_related(protocol, element, copies))
    assert many.cost - base.cost == copies * (one.cost - base.cost)
    assert many.elements - base.elements == copies * (one.elements - base.elements)


def assert_only_invalid_input(data: bytes, protocol: Protocol) -> None:
    started = time.perf_counter()
    with contextlib.suppress(InvalidInput):
        check_thrift_decode_budget(data, protocol)
    assert time.perf_counter() - started < 2  # catches a hang, not a slow machine


@FAST
@given(data=st.binary(max_size=3000), protocol=st.sampled_from(THRIFT))
def test_random_bytes_give_invalid_input_or_are_left_to_the_reader(
    data: bytes, protocol: Protocol
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WARDEN_MAX_REQUEST_MB", "0.001")  # walk even the smallest message
        assert_only_invalid_input(data, protocol)


@FAST
@given(
    message=requests,
    protocol=st.sampled_from(THRIFT),
    cut=st.integers(0, 10_000),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    inserted=st.binary(max_size=12),
)
def test_truncated_and_garbled_requests_give_invalid_input_or_are_left_to_the_reader(
    message: Any,
    protocol: Protocol,
    cut: int,
    flips: list[tuple[int, int]],
    inserted: bytes,
) -> None:
    data = bytearray(serialize(message, protocol))
    for where, byte in flips:
        data[where % len(data)] = byte
    at = cut % (len(data) + 1)
    garbled = bytes(data[:at] + inserted + data[at:])
    truncated = bytes(data[:at])
    codec = get_codec(protocol)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WARDEN_MAX_REQUEST_MB", "0.001")
        for body in (garbled, truncated, bytearray(garbled)):
            assert_only_invalid_input(body, protocol)
    for body in (garbled, truncated):  # at the default budget: the codec's own answer
        with contextlib.suppress(InvalidInput):
            codec.decode_request(body)


def test_the_default_budget_skips_the_walk_for_small_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Like the JSON check: a message whose worst case fits is not walked at all, unless it is
    long enough to hold a graph of more than MAX_EDGES edges (one byte each at least): then it is
    walked for that bound (tests/test_rca_graph_wire.py)."""
    from warden_algos.interfaces.graph import MAX_EDGES

    assert tb.WORST_BYTES_PER_WIRE_BYTE >= tb.BYTES_PER_STRUCT
    limit = (2048 << 20) // tb.WORST_BYTES_PER_WIRE_BYTE
    assert 2 << 20 < limit < 3 << 20
    assert tb.MOST_COUNTED == MAX_EDGES < limit
    short = rca_with_related("thrift-compact", b"\x00", MAX_EDGES - 200)
    longer = rca_with_related("thrift-compact", b"\x00", MAX_EDGES)
    over_budget = rca_with_related("thrift-compact", b"\x00", limit)
    assert len(short) <= MAX_EDGES < len(longer) < limit < len(over_budget)

    def no_walk(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("walked")

    monkeypatch.setattr(tb, "_Walk", no_walk)
    check_thrift_decode_budget(short, "thrift-compact")
    for walked in (longer, over_budget):
        with pytest.raises(AssertionError, match="walked"):
            check_thrift_decode_budget(walked, "thrift-compact")


def reader_end(data: bytes, protocol: Protocol) -> int | None:
    """Where the C reader stops in ``data`` (as the codec runs it), or None when it fails."""
    from thrift.protocol.TBinaryProtocol import TBinaryProtocolAcceleratedFactory
    from thrift.protocol.TCompactProtocol import TCompactProtocolAcceleratedFactory

    factory = (
        TBinaryProtocolAcceleratedFactory
        if protocol == "thrift-binary"
        else TCompactProtocolAcceleratedFactory
    )
    buffer = TMemoryBuffer(data)
    limit = max(len(data), 1)
    reader = factory(string_length_limit=limit, container_length_limit=limit).getProtocol(buffer)
    try:
        wire.Request().read(reader)
    except Exception:  # the reader's many error types, as the codec catches them
        return None
    end: int = buffer._buffer.tell()
    return end


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=requests,
    protocol=st.sampled_from(THRIFT),
    cut=st.integers(0, 10_000),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    inserted=st.binary(max_size=8),
)
def test_the_walk_stops_early_only_where_the_reader_fails(
    message: Any,
    protocol: Protocol,
    cut: int,
    flips: list[tuple[int, int]],
    inserted: bytes,
) -> None:
    """The walk follows the reader's path through the bytes: where it gives up, the reader must
    fail too (else a malformation could hide what follows it from the check), and where the
    reader succeeds, both end on the same byte."""
    data = bytearray(serialize(message, protocol))
    for where, byte in flips:
        data[where % len(data)] = byte
    at = cut % (len(data) + 1)
    body = bytes(data[:at] + inserted + data[at:])
    walker = tb._Walk(body, 1 << 62, compact=protocol == "thrift-compact")
    try:
        walker.request()
        walked: int | None = walker.pos
    except (tb._Stop, IndexError, tb.struct.error):
        walked = None
    except tb._TooDeep:
        return
    read = reader_end(body, protocol)
    if walked is None:
        assert read is None
    elif read is not None:
        assert read == walked
