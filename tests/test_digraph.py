"""graph/digraph.py answers as networkx's DiGraph does, in the same order."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from portscan.graph.digraph import DiGraph, descendants

KINDS = ("needed", "interpreter", "exec", "package", None)


def both(seed: int) -> tuple[DiGraph, nx.DiGraph]:
    """The same random graph built in both, with repeated edges, attributes updated
    after the fact and nodes added before and after their edges."""
    rng = random.Random(seed)
    mine, theirs = DiGraph(), nx.DiGraph()
    nodes = [f"n{i}" for i in range(rng.randint(1, 30))]
    for _ in range(rng.randint(0, 120)):
        step = rng.random()
        if step < 0.2:
            node = rng.choice(nodes)
            attributes = {"kind": rng.choice(KINDS), "path": f"/p/{rng.randint(0, 5)}"}
            mine.add_node(node, **attributes)
            theirs.add_node(node, **attributes)
        else:
            source, target = rng.choice(nodes), rng.choice(nodes)
            kind = rng.choice(KINDS)
            attributes = {"kind": kind} if kind else {}
            mine.add_edge(source, target, **attributes)
            theirs.add_edge(source, target, **attributes)
    return mine, theirs


def same(mine: DiGraph, theirs: nx.DiGraph) -> None:
    assert list(mine) == list(theirs) and list(mine.nodes) == list(theirs.nodes)
    assert len(mine) == len(theirs) and len(mine.edges) == len(theirs.edges)
    assert all(mine.nodes[n] == theirs.nodes[n] for n in theirs)
    assert list(mine.edges) == list(theirs.edges)
    assert list(mine.edges(data="kind")) == list(theirs.edges(data="kind"))
    assert list(mine.edges(data=True)) == list(theirs.edges(data=True))
    for node in theirs:
        assert list(mine.successors(node)) == list(theirs.successors(node))
        assert list(mine.predecessors(node)) == list(theirs.predecessors(node))
        assert list(mine.out_edges(node, data="kind")) == list(theirs.out_edges(node, data="kind"))
        assert list(mine.in_edges(node, data="kind")) == list(theirs.in_edges(node, data="kind"))
        assert descendants(mine, node) == nx.descendants(theirs, node)
        assert descendants(theirs, node) == nx.descendants(theirs, node)  # duck-typed
    for source, target in theirs.edges:
        assert (
            mine.has_edge(source, target)
            and mine.edges[source, target] == theirs.edges[source, target]
        )


@pytest.mark.parametrize("seed", range(40))
def test_a_graph_reads_as_networkx_reads_it(seed: int) -> None:
    mine, theirs = both(seed)
    same(mine, theirs)
    same(DiGraph(theirs.edges(data=True)), nx.DiGraph(theirs.edges(data=True)))

    copied, their_copy = mine.copy(), theirs.copy()
    doomed = [(a, b) for a, b, kind in theirs.edges(data="kind") if kind == "needed"]
    copied.remove_edges_from(doomed)
    their_copy.remove_edges_from(doomed)
    same(copied, their_copy)
    same(mine, theirs)  # the copy is a copy: attributes and edges of the original stay
    for node in theirs:
        copied.nodes[node]["changed"] = True
        assert "changed" not in mine.nodes[node]


@pytest.mark.parametrize("seed", range(40))
def test_hidden_edges_are_a_restricted_view(seed: int) -> None:
    _, theirs = both(seed)
    rng = random.Random(seed)
    hidden = frozenset(e for e in theirs.edges if rng.random() < 0.4)
    view = nx.restricted_view(theirs, [], hidden)
    for node in theirs:
        assert descendants(theirs, node, hidden=hidden) == nx.descendants(view, node)
