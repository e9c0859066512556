"""A map of the image: its judged components as rectangles sized by their bytes and
coloured by their verdict, grouped by the layer that wrote them (a squarified treemap,
inline SVG). Every rectangle links to the component's details.

The layout is computed here; the page's stylesheet owns the colours (`v-<verdict>`
classes) and its script recolours the cells for another target (`data-v-<target>`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from portscan.model import Component, ScanResult, Target, Verdict
from portscan.report import view

WIDTH = 1000.0
HEIGHT = 440.0
HEAD = 16.0  # room for a layer's heading
SHOWN_PER_LAYER = 120  # the largest components of a layer; the rest share one cell
CHAR_W = 6.6


@dataclass
class Cell:
    """One rectangle: a component, or the smaller rest of a layer."""

    weight: float
    component: Component | None = None
    label: str = ""
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


def _worst_ratio(row: Sequence[float], side: float) -> float:
    total = sum(row)
    if total <= 0 or side <= 0:
        return float("inf")
    return max(
        max(side * side * w / (total * total), total * total / (side * side * w)) for w in row
    )


def squarify(
    weights: Sequence[float], x: float, y: float, w: float, h: float
) -> list[tuple[float, float, float, float]]:
    """Rectangles for `weights` (sorted largest first) filling x, y, w, h, as square as
    the squarified algorithm makes them; in the order of `weights`."""
    total = sum(weights)
    if total <= 0 or w <= 0 or h <= 0:
        return [(x, y, 0.0, 0.0) for _ in weights]
    scale = w * h / total
    areas = [weight * scale for weight in weights]
    out: list[tuple[float, float, float, float]] = []
    i = 0
    while i < len(areas):
        side = min(w, h)
        row = [areas[i]]
        i += 1
        while i < len(areas) and _worst_ratio([*row, areas[i]], side) <= _worst_ratio(row, side):
            row.append(areas[i])
            i += 1
        thickness = sum(row) / side
        offset = 0.0
        for area in row:
            length = area / thickness
            if w >= h:  # a column along the left edge
                out.append((x, y + offset, thickness, length))
            else:  # a row along the top edge
                out.append((x + offset, y, length, thickness))
            offset += length
        if w >= h:
            x, w = x + thickness, w - thickness
        else:
            y, h = y + thickness, h - thickness
    return out


def _sizes(result: ScanResult) -> dict[str, int]:
    return {f.path: f.size for f in result.files}


def layout(result: ScanResult) -> list[tuple[str, tuple[float, float, float, float], list[Cell]]]:
    """Per layer (largest first): its heading, its rectangle and its cells."""
    sizes = _sizes(result)
    by_layer: dict[int | None, list[Component]] = {}
    for c in result.components:
        if c.kind != "package":
            by_layer.setdefault(c.layer, []).append(c)
    groups = []
    for layer, members in by_layer.items():
        members.sort(key=lambda c: (-sizes.get(c.path, 0), c.path))
        cells = [Cell(max(sizes.get(c.path, 0), 1), c) for c in members[:SHOWN_PER_LAYER]]
        rest = members[SHOWN_PER_LAYER:]
        if rest:
            weight = sum(max(sizes.get(c.path, 0), 1) for c in rest)
            cells.append(Cell(weight, None, f"{len(rest)} smaller components"))
        groups.append((layer, cells))
    groups.sort(key=lambda g: -sum(c.weight for c in g[1]))
    boxes = squarify([sum(c.weight for c in cells) for _, cells in groups], 0, 0, WIDTH, HEIGHT)
    out = []
    for (layer, cells), (x, y, w, h) in zip(groups, boxes, strict=True):
        total = sum(c.weight for c in cells)
        head = f"layer {layer}" if layer is not None else "no layer"
        head += f" · {view.human_size(int(total))}"
        inner = squarify(
            [c.weight for c in cells], x + 1, y + HEAD, max(w - 2, 0), max(h - HEAD - 1, 0)
        )
        for cell, (cx, cy, cw, ch) in zip(cells, inner, strict=True):
            cell.x, cell.y, cell.w, cell.h = cx, cy, cw, ch
        out.append((head, (x, y, w, h), cells))
    return out


def _css(verdict: Verdict) -> str:
    return "na" if verdict is Verdict.NA else verdict.value


def _cell_svg(cell: Cell, target: Target, href: Callable[[str], str | None]) -> str:
    if cell.w < 1 or cell.h < 1:
        return ""
    rect = f'x="{cell.x:.1f}" y="{cell.y:.1f}" width="{cell.w:.1f}" height="{cell.h:.1f}"'
    c = cell.component
    if c is None:
        return f'<rect class="rest" {rect}><title>{escape(cell.label)}</title></rect>'
    verdict = c.verdicts.get(target, Verdict.UNKNOWN)
    data = "".join(f' data-v-{t.value}="{_css(v)}"' for t, v in c.verdicts.items())
    title = f"{c.path} · {view.human_size(int(cell.weight))} · " + ", ".join(
        f"{t.value} {v.value}" for t, v in c.verdicts.items()
    )
    name = c.path.rsplit("/", 1)[-1] or c.path
    text = ""
    if cell.w > 30 and cell.h > 13:
        fits = int((cell.w - 6) / CHAR_W)
        shown = name if len(name) <= fits else name[: max(fits - 1, 1)] + "…"
        text = f'<text x="{cell.x + 3:.1f}" y="{cell.y + 11:.1f}">{escape(shown)}</text>'
    body = f"<rect {rect}/>{text}<title>{escape(title)}</title>"
    link = href(c.path)
    if link:
        body = f'<a href="{escape(link)}">{body}</a>'
    path = escape(c.path)
    return f'<g class="cell v-{_css(verdict)}" data-path="{path}"{data}>{body}</g>'


def render(result: ScanResult, target: Target, href: Callable[[str], str | None]) -> Markup:
    """The map as an SVG, cells coloured by their verdict on `target`."""
    parts = []
    for head, (x, y, w, h), cells in layout(result):
        parts.append(
            f'<g class="layer"><rect class="frame" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}"/>'
        )
        if w > 40:
            fits = int((w - 6) / CHAR_W)
            shown = head if len(head) <= fits else head[: max(fits - 1, 1)] + "…"
            parts.append(
                f'<text class="head" x="{x + 3:.1f}" y="{y + 12:.1f}">{escape(shown)}</text>'
            )
        parts += [_cell_svg(cell, target, href) for cell in cells]
        parts.append("</g>")
    return Markup(
        '<svg id="treemap" class="treemap" role="group" '
        'aria-label="components by size and verdict, per layer" '
        f'viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" width="{WIDTH:.0f}" height="{HEIGHT:.0f}">'
        + "".join(parts)
        + "</svg>"
    )
