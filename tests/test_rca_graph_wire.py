"""An RCA request's dependency graph over every wire format: JSON's ``rca.graph`` and Thrift's
``RcaPayload.graph`` reach the algorithm (``rca_graph()``) intact and the right way round, through
a real serve process; each malformed shape is INVALID_INPUT naming its field; more than
``MAX_EDGES`` edges are refused before a single edge is built (Thrift: at the list's header,
before the reader runs); a serve process answers the next request after any bad graph."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import orjson
import pytest
from thrift.protocol.TBinaryProtocol import TBinaryProtocolAcceleratedFactory
from thrift.protocol.TCompactProtocol import TCompactProtocolAcceleratedFactory
from thrift.TSerialization import deserialize, serialize

from warden_algos.interfaces import ErrorCode, InvalidInput, RCAResult, TimeSeries
from warden_algos.interfaces.graph import MAX_EDGES
from warden_algos.wire import CODECS, RCAPayload, Request, Response, get_codec
from warden_algos.wire import thrift_budget as tb
from warden_algos.wire.warden_wire import ttypes as wire

from .conftest import ServeProcess, dumps

Protocol = Literal["thrift-binary", "thrift-compact"]
FORMATS = list(CODECS)
THRIFT: list[Protocol] = ["thrift-binary", "thrift-compact"]
FACTORIES = {
    "thrift-binary": TBinaryProtocolAcceleratedFactory(),
    "thrift-compact": TCompactProtocolAcceleratedFactory(),
}
TIMES = 1_700_000_000 + 60 * np.arange(30, dtype=np.int64)
TOTAL, A, B, C = "metric=total", "metric=a", "metric=b", "metric=c"
#: a feeds b and c, b feeds c: test_graph_echo scores c 2, b 1, a 0 (its parents); turned round,
#: a 2, b 1, c 0.
CHAIN = [(A, B), (A, C), (B, C)]


def series(name: str, seed: int) -> TimeSeries:
    values = np.random.default_rng(seed).normal(10.0, 1.0, TIMES.shape[0])
    return TimeSeries({"metric": name}, TIMES, values)


def graph_request(
    graph: list[tuple[str, str]] | None,
    *,
    request_id: str = "graph",
    packed: bool = False,
    algorithm: str = "test_graph_echo",
) -> Request:
    related = [series(name, seed) for seed, name in enumerate("abc", start=1)]
    payload = RCAPayload(series("total", 0), related, 3, TIMES[20:21], graph=graph)
    return Request("rca", algorithm, payload, {}, request_id=request_id, packed_arrays=packed)


def ranked(scores: dict[str, float]) -> RCAResult:
    return RCAResult.rank(scores, 3)


def json_graph_request(graph: Any) -> bytes:
    """The JSON form with ``rca.graph`` replaced by anything at all."""
    document = orjson.loads(get_codec("json").encode_request(graph_request(None)))
    document["rca"]["graph"] = graph
    return dumps(document)


def thrift_graph_request(format_name: str, edges: list[wire.GraphEdge]) -> bytes:
    """The Thrift form with ``rca.graph`` set to any generated edges (fields left unset too)."""
    factory = FACTORIES[format_name]
    body = get_codec(format_name).encode_request(graph_request(None))
    message = deserialize(wire.Request(), body, factory)
    message.rca.graph = edges
    data: bytes = serialize(message, factory)
    return data


def edges_of(count: int) -> list[wire.GraphEdge]:
    return [wire.GraphEdge(parent=A, child=B)] * count


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("format_name", FORMATS)
@pytest.mark.parametrize("packed", [False, True], ids=["lists", "packed"])
def test_a_graph_round_trips_in_every_format(format_name: str, packed: bool) -> None:
    """Edges keep their order, their direction and their repeats; no graph stays None and an
    empty one stays empty (a graph that says nothing depends on anything)."""
    codec = get_codec(format_name)
    for graph in (None, [], [*CHAIN, (TOTAL, A), (A, B)]):
        request = graph_request(graph, packed=packed)
        decoded = codec.decode_request(codec.encode_request(request))
        assert isinstance(decoded.payload, RCAPayload)
        assert decoded.payload.graph == graph


@pytest.mark.parametrize("format_name", FORMATS)
def test_the_graph_reaches_the_algorithm_and_serve_answers_on_after_bad_graphs(
    format_name: str, plugin_env: dict[str, str], serve_factory: Any
) -> None:
    """Through a real serve process (codec, dispatcher, run_rca, an installed plugin): what the
    algorithm read from rca_graph() is what was sent, the right way round; a bad graph of every
    kind is INVALID_INPUT with its field and request id, and the same process answers the next
    request as before."""
    codec = get_codec(format_name)
    server: ServeProcess = serve_factory("--format", format_name, env=plugin_env)

    def ask(body: Request | bytes) -> Response:
        server.send(body if isinstance(body, bytes) else codec.encode_request(body))
        return codec.decode_response(server.receive_raw())

    assert ask(graph_request(CHAIN)).result == ranked({C: 2.0, B: 1.0, A: 0.0})
    reversed_chain = [(child, parent) for parent, child in CHAIN]
    assert ask(graph_request(reversed_chain)).result == ranked({A: 2.0, B: 1.0, C: 0.0})
    assert ask(graph_request(None)).result == ranked({A: -1.0, B: -1.0, C: -1.0})
    assert ask(graph_request([], packed=True)).result == ranked({A: 0.0, B: 0.0, C: 0.0})

    malformed = (
        json_graph_request([{"parent": A}])
        if format_name == "json"
        else thrift_graph_request(format_name, [wire.GraphEdge(parent=A)])
    )
    bad = {
        "rca.graph": graph_request([(A, B), (B, C), (C, A)], request_id="cycle"),
        "rca.graph[1].parent": graph_request([(A, B), ("metric=zz", C)], request_id="unknown"),
        "rca.graph[0]": graph_request([(B, B)], request_id="self-loop"),
        "rca.graph[0].child": malformed,
    }
    for field, body in bad.items():
        answer = ask(body)
        assert answer.error is not None and answer.error.code == ErrorCode.INVALID_INPUT, answer
        assert answer.error.field == field, answer
        assert answer.request_id == ("graph" if isinstance(body, bytes) else body.request_id)
        assert ask(graph_request(CHAIN)).result == ranked({C: 2.0, B: 1.0, A: 0.0})
    too_many = graph_request([(A, B)] * (MAX_EDGES + 1))
    answer = ask(too_many)
    assert answer.error is not None and answer.error.field == "rca.graph"
    assert f"{MAX_EDGES + 1:,} edges; at most {MAX_EDGES:,}" in answer.error.message
    assert ask(graph_request(CHAIN)).result == ranked({C: 2.0, B: 1.0, A: 0.0})
    assert server.close() == 0


# -- malformed shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("graph", "field", "message"),
    [
        ({"parent": A, "child": B}, "rca.graph", "valid list"),
        ("metric=a -> metric=b", "rca.graph", "valid list"),
        ([{"parent": A, "child": B}, [A, B]], "rca.graph[1]", "valid dictionary"),
        ([{"parent": A, "child": B}, None], "rca.graph[1]", "valid dictionary"),
        ([{"parent": A, "child": B}, {"child": B}], "rca.graph[1].parent", "Field required"),
        ([{"parent": A, "child": B}, {"parent": A}], "rca.graph[1].child", "Field required"),
        ([{"parent": 1, "child": B}], "rca.graph[0].parent", "valid string"),
        ([{"parent": A, "child": None}], "rca.graph[0].child", "valid string"),
        ([{"parent": A, "child": B, "weight": 0.5}], "rca.graph[0].weight", "Extra inputs"),
    ],
    ids=[
        "object",
        "string",
        "edge_as_list",
        "edge_null",
        "no_parent",
        "no_child",
        "parent_not_a_string",
        "child_null",
        "unknown_field",
    ],
)
def test_a_malformed_json_graph_names_its_field(graph: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        get_codec("json").decode_request(json_graph_request(graph))
    assert caught.value.field == field
    assert f"{field}: " in caught.value.message and message in caught.value.message
    assert caught.value.request_id == "graph"


@pytest.mark.parametrize("format_name", THRIFT)
@pytest.mark.parametrize(
    ("edges", "field"),
    [
        ([wire.GraphEdge(parent=A, child=B), wire.GraphEdge(child=B)], "rca.graph[1].parent"),
        ([wire.GraphEdge(parent=A)], "rca.graph[0].child"),
        ([wire.GraphEdge()], "rca.graph[0].parent"),
    ],
    ids=["no_parent", "no_child", "empty_edge"],
)
def test_a_thrift_edge_without_both_sides_names_its_field(
    format_name: str, edges: list[wire.GraphEdge], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        get_codec(format_name).decode_request(thrift_graph_request(format_name, edges))
    assert caught.value.field == field
    assert caught.value.message == "missing"
    assert caught.value.request_id == "graph"


# -- more than MAX_EDGES --------------------------------------------------------------------------


def test_json_counts_the_edges_before_validating_any() -> None:
    """100,001 elements that are not even edges: one error, the count, not 100,001 of theirs."""
    with pytest.raises(InvalidInput) as caught:
        get_codec("json").decode_request(json_graph_request([0] * (MAX_EDGES + 1)))
    assert caught.value.field == "rca.graph"
    assert caught.value.message == "rca.graph: 100,001 edges; at most 100,000 are accepted"
    assert caught.value.request_id == "graph"
    at_most = json_graph_request([{"parent": A, "child": B}] * MAX_EDGES)
    decoded = get_codec("json").decode_request(at_most)
    assert isinstance(decoded.payload, RCAPayload) and decoded.payload.graph is not None
    assert len(decoded.payload.graph) == MAX_EDGES


@pytest.mark.parametrize("format_name", THRIFT)
@pytest.mark.parametrize("edge", [wire.GraphEdge(parent=A, child=B), wire.GraphEdge()])
def test_thrift_refuses_too_many_edges_at_the_lists_header(
    format_name: Protocol, edge: wire.GraphEdge
) -> None:
    """The walk that runs before the C reader refuses the list at its header, with the codec's
    own error: the elements are neither read nor allocated. A list of empty edges (one byte
    each, so the message is short enough to skip the memory walk) is refused the same way."""
    data = thrift_graph_request(format_name, [edge] * (MAX_EDGES + 1))
    walker = tb._Walk(data, 1 << 62, compact=format_name == "thrift-compact")
    with pytest.raises(InvalidInput) as caught:
        walker.request()
    assert caught.value.field == "rca.graph"
    assert "100,001 edges; at most 100,000" in caught.value.message
    assert walker.structs == 6  # the request, its payload and its four metrics: no edge
    assert len(data) - walker.pos > MAX_EDGES  # it stopped before the edges
    with pytest.raises(InvalidInput, match="100,001 edges") as decoded:
        tb.check_thrift_decode_budget(data, format_name)
    assert decoded.value.field == "rca.graph"
    at_most = thrift_graph_request(format_name, [edge] * MAX_EDGES)
    tb.check_thrift_decode_budget(at_most, format_name)


@pytest.mark.parametrize("format_name", THRIFT)
def test_without_a_budget_the_codec_still_counts_the_edges(
    format_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``WARDEN_MAX_REQUEST_MB=none`` turns the walk off: the codec counts the reader's list."""
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MB", "none")
    data = thrift_graph_request(format_name, edges_of(MAX_EDGES + 1))
    with pytest.raises(InvalidInput, match="100,001 edges") as caught:
        get_codec(format_name).decode_request(data)
    assert caught.value.field == "rca.graph"
    assert caught.value.request_id == "graph"
    decoded = get_codec(format_name).decode_request(
        thrift_graph_request(format_name, edges_of(MAX_EDGES))
    )
    assert isinstance(decoded.payload, RCAPayload) and decoded.payload.graph is not None
    assert len(decoded.payload.graph) == MAX_EDGES
