"""The directed graph of an image (graph/build.py) and the one walk the stages make on it.

The part of networkx's `DiGraph` interface the pipeline uses, with the same meaning and
the same order (nodes, and each node's edges, in the order they were added), in a few
dicts: importing networkx took 0.11 s and 19 MiB of every scan. Node and edge
attributes are dicts (`graph.nodes[n]`, `graph.edges[u, v]`). `descendants` works on a
networkx graph too (the tests build some), and the HTML report's drawing
(report/graphsvg.py) still uses networkx for what it alone needs.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from typing import Any

Node = Hashable


class DiGraph:
    """Nodes with attributes, and directed edges with attributes, insertion-ordered."""

    def __init__(self, edges: Iterable[tuple[Any, ...]] = ()) -> None:
        self._nodes: dict[Node, dict[str, Any]] = {}
        self._succ: dict[Node, dict[Node, dict[str, Any]]] = {}
        self._pred: dict[Node, dict[Node, dict[str, Any]]] = {}
        self.add_edges_from(edges)

    # -- building
    def add_node(self, node: Node, **attributes: Any) -> None:
        if node not in self._nodes:
            self._nodes[node] = {}
            self._succ[node] = {}
            self._pred[node] = {}
        self._nodes[node].update(attributes)

    def add_nodes_from(self, nodes: Iterable[Node]) -> None:
        for node in nodes:
            self.add_node(node)

    def add_edge(self, source: Node, target: Node, **attributes: Any) -> None:
        self.add_node(source)
        self.add_node(target)
        data = self._succ[source].get(target)
        if data is None:
            data = self._succ[source][target] = self._pred[target][source] = {}
        data.update(attributes)

    def add_edges_from(self, edges: Iterable[tuple[Any, ...]]) -> None:
        """(source, target) or (source, target, attributes) pairs."""
        for edge in edges:
            self.add_edge(edge[0], edge[1], **(edge[2] if len(edge) > 2 else {}))

    def remove_edges_from(self, edges: Iterable[tuple[Node, Node]]) -> None:
        for source, target in edges:
            if target in self._succ.get(source, {}):
                del self._succ[source][target]
                del self._pred[target][source]

    def copy(self) -> DiGraph:
        """A new graph with the same nodes and edges and copies of their attributes."""
        copied = DiGraph()
        for node, attributes in self._nodes.items():
            copied.add_node(node, **attributes)
        for source, targets in self._succ.items():
            for target, attributes in targets.items():
                copied.add_edge(source, target, **attributes)
        return copied

    # -- reading
    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nodes(self) -> _Nodes:
        return _Nodes(self._nodes)

    @property
    def edges(self) -> _Edges:
        return _Edges(self._succ)

    def has_edge(self, source: Node, target: Node) -> bool:
        return target in self._succ.get(source, {})

    def successors(self, node: Node) -> Iterator[Node]:
        return iter(self._succ[node])

    def predecessors(self, node: Node) -> Iterator[Node]:
        return iter(self._pred[node])

    def out_edges(self, node: Node, data: str | bool = False) -> Iterator[tuple[Any, ...]]:
        """(node, target) for each edge out of `node`; with `data` a name, its value too
        (None where the edge lacks it); with `data=True`, the attributes."""
        return _edge_tuples(((node, t, a) for t, a in self._succ[node].items()), data)

    def in_edges(self, node: Node, data: str | bool = False) -> Iterator[tuple[Any, ...]]:
        """(source, node) for each edge into `node`, with `data` as in `out_edges`."""
        return _edge_tuples(((s, node, a) for s, a in self._pred[node].items()), data)


class _Nodes:
    """`graph.nodes`: iterate the nodes, or `nodes[n]` for a node's attributes."""

    def __init__(self, nodes: dict[Node, dict[str, Any]]) -> None:
        self._nodes = nodes

    def __getitem__(self, node: Node) -> dict[str, Any]:
        return self._nodes[node]

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)


class _Edges:
    """`graph.edges`: iterate (source, target) pairs, call it with `data`, or
    `edges[source, target]` for an edge's attributes."""

    def __init__(self, succ: dict[Node, dict[Node, dict[str, Any]]]) -> None:
        self._succ = succ

    def _all(self) -> Iterator[tuple[Node, Node, dict[str, Any]]]:
        return ((s, t, a) for s, targets in self._succ.items() for t, a in targets.items())

    def __call__(self, data: str | bool = False) -> Iterator[tuple[Any, ...]]:
        return _edge_tuples(self._all(), data)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return _edge_tuples(self._all(), False)

    def __getitem__(self, edge: tuple[Node, Node]) -> dict[str, Any]:
        return self._succ[edge[0]][edge[1]]

    def __len__(self) -> int:
        return sum(len(targets) for targets in self._succ.values())


def _edge_tuples(
    edges: Iterable[tuple[Node, Node, dict[str, Any]]], data: str | bool
) -> Iterator[tuple[Any, ...]]:
    if data is False:
        return ((s, t) for s, t, _ in edges)
    if data is True:
        return iter(edges)
    return ((s, t, a.get(data)) for s, t, a in edges)


def descendants(
    graph: Any, source: Node, hidden: frozenset[tuple[Node, Node]] = frozenset()
) -> set[Node]:
    """Every node reachable from `source` (itself not included), over edges not in
    `hidden`. `graph` is a DiGraph or anything with networkx's `successors`."""
    seen: set[Node] = set()
    pending = [source]
    while pending:
        node = pending.pop()
        for target in graph.successors(node):
            if target not in seen and (node, target) not in hidden:
                seen.add(target)
                pending.append(target)
    seen.discard(source)
    return seen
