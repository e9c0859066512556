"""The dependency graph from the entrypoint as an inline SVG, with a layered layout.

Only what the entrypoint reaches is drawn (packages are left out: they are shown as
the files' owners); the rest of the image is collapsed into one summary box. Columns
are the longest distance from the image; inside a column, nodes are ordered by the mean
position of their parents (the barycentre heuristic), which keeps edges short.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
from markupsafe import Markup, escape

from portscan.model import IMAGE, Component, ScanResult, Target, Verdict

MAX_NODES = 400
NODE_H = 24
ROW_GAP = 10
COL_GAP = 70
CHAR_W = 7.2
PAD = 12
TOP = 28  # room for column headings


@dataclass
class _Node:
    id: str
    label: str
    title: str
    css: str
    verdicts: Mapping[Target, Verdict]
    column: int = 0
    row: float = 0.0
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0


def _drawn_edges(result: ScanResult) -> list[tuple[str, str, str]]:
    keep = set(result.reachable) | {IMAGE}
    return [
        (d.source, d.target, d.kind)
        for d in result.dependencies
        if d.kind != "package" and d.source in keep and d.target in keep
        and not d.target.startswith("pkg:")
    ]  # fmt: skip


def _columns(nodes: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    """Longest-path layering from the image, so that a library sits right of everything
    that loads it; the members of a cycle share a column."""
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((s, t) for s, t, _ in edges)
    dag = nx.condensation(graph)
    member_of = dag.graph["mapping"]
    depth: dict[int, int] = {}
    for scc in nx.topological_sort(dag):
        preds = [depth[p] + 1 for p in dag.predecessors(scc) if p in depth]
        if preds or IMAGE in dag.nodes[scc]["members"]:
            depth[scc] = max(preds, default=0)
    return {n: depth[member_of[n]] for n in nodes if member_of[n] in depth}


def _order(columns: dict[str, int], edges: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    """Place nodes in rows: barycentre of the parents' rows, two sweeps."""
    parents: dict[str, list[str]] = defaultdict(list)
    for source, target, _ in edges:
        if columns.get(source, -1) < columns.get(target, -1):
            parents[target].append(source)
    by_column: dict[int, list[str]] = defaultdict(list)
    for node, col in sorted(columns.items()):
        by_column[col].append(node)
    row = {n: float(i) for nodes in by_column.values() for i, n in enumerate(nodes)}

    def centre(node: str) -> float:
        placed = [row[p] for p in parents[node]]
        return sum(placed) / len(placed) if placed else row[node]

    for _ in range(2):
        for col in sorted(by_column)[1:]:
            nodes = by_column[col]
            nodes.sort(key=lambda n: (centre(n), n))
            for i, node in enumerate(nodes):
                row[node] = float(i)
    return row


def _make_node(node_id: str, components: Mapping[str, Component], target: Target) -> _Node:
    if node_id == IMAGE:
        return _Node(node_id, "image", "the image's entrypoint and command", "image", {})
    if node_id.startswith("missing:"):
        name = node_id.split(":", 1)[1]
        return _Node(node_id, f"missing: {name}", f"{name} is not in the image", "missing", {})
    path = node_id.split(":", 1)[1]
    component = components.get(node_id)
    verdicts = component.verdicts if component else {}
    kind = component.kind if component else "file"
    lines = [path, f"kind: {kind}"] + [f"{t.value}: {v.value}" for t, v in verdicts.items()]
    verdict = verdicts.get(target, Verdict.UNKNOWN) if component else Verdict.UNKNOWN
    css = "na" if verdict is Verdict.NA else verdict.value
    return _Node(node_id, posixpath.basename(path) or path, "\n".join(lines), css, verdicts)


def render(result: ScanResult, target: Target, links: Mapping[str, str] | None = None) -> Markup:
    """The SVG, nodes coloured by their verdict for `target`. The platform libraries
    (C library, loader, C++ runtime) get a column of their own without edges: every
    program loads them and none is ported. `links` maps a node id to the address of
    the component's details: the node becomes a link there."""
    components = {c.id: c for c in result.components}
    platform = sorted(
        n for n in result.reachable if n in components and components[n].kind == "platform"
    )
    edges = [e for e in _drawn_edges(result) if e[0] not in platform and e[1] not in platform]
    nodes = sorted({IMAGE} | {s for s, _, _ in edges} | {t for _, t, _ in edges})
    columns = _columns(nodes, edges)
    if len(columns) > MAX_NODES:
        kept = sorted(columns, key=lambda n: (columns[n], n))[:MAX_NODES]
        columns = {n: columns[n] for n in kept}
    edges = [e for e in edges if e[0] in columns and e[1] in columns]
    rows = _order(columns, edges)
    last = max(columns.values(), default=0) + 1
    for i, node in enumerate(platform):
        columns[node], rows[node] = last, float(i)
    drawn = {n: _make_node(n, components, target) for n in columns}
    width, height = _place(drawn, columns, rows)
    body = [_edge_svg(drawn[s], drawn[t], kind) for s, t, kind in edges]
    body += [_node_svg(node, (links or {}).get(node.id)) for node in drawn.values()]
    if platform:
        x = drawn[platform[0]].x
        body.append(
            f'<text class="colhead" x="{x:.1f}" y="{PAD + 4}"><title>the C library, loader and '
            "C++ runtime: replaced by wasi-libc, not ported</title>platform (n/a)</text>"
        )
    hidden = len([c for c in result.components if c.id not in drawn])
    if hidden:
        body.append(
            f'<g class="collapsed"><title>{hidden} judged components are not reachable from '
            "the entrypoint: see the component table</title>"
            f'<rect x="{PAD}" y="{height}" width="{CHAR_W * 52:.0f}" height="{NODE_H}" rx="4"/>'
            f'<text x="{PAD + 8}" y="{height + 16}">+ {hidden} components not reachable '
            "from the entrypoint</text></g>"
        )
        height += NODE_H + PAD
    return Markup(
        f'<svg id="depgraph" class="graph" role="group" aria-label="dependency graph" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}">'
        f"<title>Dependency graph from the entrypoint</title>{''.join(body)}</svg>"
    )


def _place(
    drawn: dict[str, _Node], columns: dict[str, int], rows: dict[str, float]
) -> tuple[float, float]:
    widths: dict[int, float] = defaultdict(float)
    for node in drawn.values():
        node.width = max(60.0, CHAR_W * len(node.label) + 16)
        node.column = columns[node.id]
        node.row = rows.get(node.id, 0.0)
        widths[node.column] = max(widths[node.column], node.width)
    x_of, x = {}, float(PAD)
    for col in sorted(widths):
        x_of[col] = x
        x += widths[col] + COL_GAP
    height = float(PAD)
    for node in drawn.values():
        node.x = x_of[node.column]
        node.y = TOP + node.row * (NODE_H + ROW_GAP)
        height = max(height, node.y + NODE_H + PAD)
    return max(x - COL_GAP + PAD, 200.0), height


def _edge_svg(a: _Node, b: _Node, kind: str) -> str:
    x1, y1 = a.x + a.width, a.y + NODE_H / 2
    x2, y2 = b.x, b.y + NODE_H / 2
    if b.column <= a.column:  # back or sideways edge: loop around below
        x1, x2 = a.x + a.width / 2, b.x + b.width / 2
        y1, y2 = a.y + NODE_H, b.y + NODE_H
        mid = max(y1, y2) + 18
        path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}"
    else:
        dx = (x2 - x1) / 2
        path = (
            f"M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        )
    return (
        f'<path class="edge edge-{escape(kind)}" data-a="{escape(a.id)}" data-b="{escape(b.id)}" '
        f'd="{path}"><title>{escape(kind)}: '
        f"{escape(a.label)} → {escape(b.label)}</title></path>"
    )


def _node_svg(node: _Node, href: str | None = None) -> str:
    data = "".join(
        f' data-v-{escape(t.value)}="{escape("na" if v is Verdict.NA else v.value)}"'
        for t, v in node.verdicts.items()
    )
    shape = (
        f"<title>{escape(node.title)}</title>"
        f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{node.width:.1f}" height="{NODE_H}" '
        'rx="4"/>'
        f'<text x="{node.x + 8:.1f}" y="{node.y + 16:.1f}">{escape(node.label)}</text>'
    )
    if href is not None:
        shape = f'<a href="{escape(href)}" class="open-c">{shape}</a>'
    return f'<g class="node v-{escape(node.css)}" data-node="{escape(node.id)}"{data}>{shape}</g>'
