"""The dependency graph an RCA request carries: validated once, readable by the algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from warden_algos.interfaces import (
    DependencyGraph,
    InvalidInput,
    TimeSeries,
    rca_graph,
    run_rca,
)
from warden_algos.interfaces.graph import MAX_EDGES

from .plugins.warden_test_algos import GraphEcho


def series(name: str, n: int = 50, seed: int = 0) -> TimeSeries:
    rng = np.random.default_rng(seed)
    return TimeSeries(
        dimensions={"metric": name},
        times=1_700_000_000 + 60 * np.arange(n, dtype=np.int64),
        values=rng.normal(0, 1, n),
    )


#: Scores each related metric by how many parents the request's graph gives it (-1: no graph).
_GraphEcho = GraphEcho


MOI = series("total")
RELATED = [series(name, seed=i) for i, name in enumerate("abc", start=1)]
KEY = {name: f"metric={name}" for name in ("total", "a", "b", "c")}


def test_the_algorithm_reads_the_requests_graph_and_none_without_one() -> None:
    edges = [(KEY["a"], KEY["b"]), (KEY["a"], KEY["c"]), (KEY["b"], KEY["c"])]
    ranked = run_rca(_GraphEcho(), MOI, RELATED, 3, [], graph=edges)
    assert dict(ranked.contributions) == {KEY["c"]: 2.0, KEY["b"]: 1.0, KEY["a"]: 0.0}
    plain = run_rca(_GraphEcho(), MOI, RELATED, 3, [])
    assert set(dict(plain.contributions).values()) == {-1.0}
    assert rca_graph() is None  # nothing leaks past the call


def test_descendants_ancestors_and_order() -> None:
    graph = DependencyGraph.of(
        [("db", "api"), ("api", "total"), ("cache", "api"), ("db", "api")],
        ["total", "api", "db", "cache", "queue"],
    )
    assert graph.edges == (("db", "api"), ("api", "total"), ("cache", "api"))  # once each
    assert graph.descendants("db") == {"api", "total"}
    assert graph.ancestors("total") == {"api", "db", "cache"}
    assert graph.parents("api") == ("db", "cache") and graph.children("queue") == ()
    position = {key: i for i, key in enumerate(graph.order)}
    assert all(position[parent] < position[child] for parent, child in graph.edges)


@pytest.mark.parametrize(
    ("edges", "field", "says"),
    [
        ([(KEY["a"], "metric=zz")], "rca.graph[0].child", "neither"),
        ([(KEY["a"], KEY["b"]), ("nope", KEY["a"])], "rca.graph[1].parent", "neither"),
        ([(KEY["b"], KEY["b"])], "rca.graph[0]", "itself"),
        (
            [(KEY["a"], KEY["b"]), (KEY["b"], KEY["c"]), (KEY["c"], KEY["a"])],
            "rca.graph",
            "cycle: metric=a -> metric=b -> metric=c -> metric=a",
        ),
    ],
    ids=["unknown_child", "unknown_parent", "self_loop", "cycle"],
)
def test_a_bad_graph_is_invalid_input_naming_the_edge(
    edges: list[tuple[str, str]], field: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        run_rca(_GraphEcho(), MOI, RELATED, 3, [], graph=edges)
    assert caught.value.field == field
    assert says in str(caught.value)


def test_too_many_edges_and_an_ambiguous_key_are_refused() -> None:
    with pytest.raises(InvalidInput, match="at most"):
        DependencyGraph.of([("a", "b")] * (MAX_EDGES + 1), ["a", "b"])
    twin = series("total", seed=9)
    with pytest.raises(InvalidInput, match="tell them apart") as caught:
        run_rca(_GraphEcho(), MOI, [*RELATED, twin], 3, [], graph=[])
    assert caught.value.field == "rca.graph"
    run_rca(_GraphEcho(), MOI, [*RELATED, twin], 3, [])  # without a graph the twin is fine
