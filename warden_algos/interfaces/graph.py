"""The dependency graph an RCA request may carry: whose change propagates to whom.

The platform often knows how its metrics depend on each other (a service calls its
dependencies, a queue feeds its consumers, a total is computed from its parts). Without that
knowledge an RCA algorithm ranks first whichever metric moved most, and a fault's effect often
moves a metric downstream of the root cause further than the root cause itself: every top-1
miss of ``deviation`` on PyRCA's simulator ranked such a descendant first. An edge runs from a
**parent** (the cause side: the metric whose change propagates) to a **child** (the metric it
feeds), between the keys of the request's metric of interest and related metrics.

An algorithm reads the request's graph with :func:`rca_graph` while ``simple_rca`` runs (None when
the request carries none), so ``simple_rca``'s signature stays what authors implement and a
plugin that ignores graphs keeps working. A context variable, as ``explanations_wanted`` is, so
concurrent requests never see each other's graph.

:meth:`DependencyGraph.of` is the one place a graph is checked: unknown keys, self-loops and
cycles are ``INVALID_INPUT`` naming the offending edge (``rca.graph[3].child``) or the cycle;
a repeated edge counts once.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .errors import InvalidInput

#: Edges a request may carry: a dense graph over a few hundred metrics, far more than a host
#: would send; checked before anything is built from them.
MAX_EDGES = 100_000


def check_edge_count(count: int, path: str = "rca.graph") -> None:
    """Refuse more than :data:`MAX_EDGES` edges with ``InvalidInput`` at ``path``.

    One message for every place that counts them: the codecs call it on a wire list's length,
    before a single edge is converted (the Thrift walk at the list's header, before the reader
    allocates it), and :meth:`DependencyGraph.of` on what it is given."""
    if count > MAX_EDGES:
        raise InvalidInput(f"{count:,} edges; at most {MAX_EDGES:,} are accepted", field=path)


@dataclass(frozen=True)
class DependencyGraph:
    """A validated directed acyclic graph over metric keys (build it with :meth:`of`)."""

    #: Every edge once, as (parent, child), in the request's order.
    edges: tuple[tuple[str, str], ...]
    #: The keys, parents before their children (ties in the request's order of first mention).
    order: tuple[str, ...]
    _parents: Mapping[str, tuple[str, ...]]
    _children: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(
        cls,
        edges: Sequence[tuple[str, str]],
        keys: Sequence[str],
        *,
        path: str = "rca.graph",
    ) -> DependencyGraph:
        """The graph of ``edges`` (parent, child) over ``keys``, or ``InvalidInput`` saying which
        edge or which cycle is wrong."""
        check_edge_count(len(edges), path)
        known = set(keys)
        unique: dict[tuple[str, str], None] = {}
        for index, (parent, child) in enumerate(edges):
            for side, key in (("parent", parent), ("child", child)):
                if key not in known:
                    raise InvalidInput(
                        f"{key!r} is neither the metric of interest's key nor a related metric's",
                        field=f"{path}[{index}].{side}",
                    )
            if parent == child:
                raise InvalidInput(f"{parent!r} cannot depend on itself", field=f"{path}[{index}]")
            unique[(parent, child)] = None
        parents: dict[str, list[str]] = {}
        children: dict[str, list[str]] = {}
        for parent, child in unique:
            parents.setdefault(child, []).append(parent)
            children.setdefault(parent, []).append(child)
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        mentioned = dict.fromkeys(key for edge in unique for key in edge)
        for key in mentioned:
            sorter.add(key, *parents.get(key, ()))
        try:
            order = tuple(sorter.static_order())
        except graphlib.CycleError as error:
            cycle = " -> ".join(error.args[1])  # each one a parent of the next
            raise InvalidInput(
                f"the graph has a cycle: {cycle}; a dependency graph must be acyclic", field=path
            ) from None
        return cls(
            edges=tuple(unique),
            order=order,
            _parents={key: tuple(value) for key, value in parents.items()},
            _children={key: tuple(value) for key, value in children.items()},
        )

    def parents(self, key: str) -> tuple[str, ...]:
        """The metrics whose change propagates to ``key`` directly."""
        return self._parents.get(key, ())

    def children(self, key: str) -> tuple[str, ...]:
        """The metrics ``key``'s change propagates to directly."""
        return self._children.get(key, ())

    def ancestors(self, key: str) -> frozenset[str]:
        """Every metric with a path to ``key`` (not ``key`` itself)."""
        return _reach(key, self._parents)

    def descendants(self, key: str) -> frozenset[str]:
        """Every metric ``key`` has a path to (not ``key`` itself)."""
        return _reach(key, self._children)


def _reach(start: str, step: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    seen: set[str] = set()
    todo = list(step.get(start, ()))
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(step.get(key, ()))
    return frozenset(seen)


_GRAPH: ContextVar[DependencyGraph | None] = ContextVar("warden_algos_rca_graph", default=None)


def rca_graph() -> DependencyGraph | None:
    """The dependency graph of the RCA request being answered, or None when it carries none."""
    return _GRAPH.get()


@contextmanager
def with_graph(graph: DependencyGraph | None) -> Iterator[None]:
    """Make ``graph`` what :func:`rca_graph` answers while the block runs (the runner's job)."""
    token = _GRAPH.set(graph)
    try:
        yield
    finally:
        _GRAPH.reset(token)
