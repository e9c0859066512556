"""Small inline SVG charts for the HTML report: horizontal stacked bars, nothing else.

Every text goes through markupsafe's escape; colours come from CSS classes
(`seg-<name>`) so the page's stylesheet owns the palette.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from portscan.model import ScanResult, Verdict
from portscan.report import view

ROW = 22
LABEL_WIDTH = 170
BAR_WIDTH = 420
VALUE_WIDTH = 150


@dataclass(frozen=True)
class Segment:
    css: str  # class suffix: a verdict name, or "size"
    value: float
    title: str


@dataclass
class Bar:
    label: str
    segments: list[Segment] = field(default_factory=list)
    note: str = ""  # printed right of the bar
    title: str = ""  # tooltip of the whole row
    group_start: bool = False  # a little space above: starts a new group of bars

    @property
    def total(self) -> float:
        return sum(s.value for s in self.segments)


def _css(name: str) -> str:
    return "na" if name == "n/a" else name


def stacked_bars(
    bars: Sequence[Bar],
    *,
    label: str,
    scale: float | None = None,
    legend: Sequence[str] = (),
    note_width: int = VALUE_WIDTH,
) -> Markup:
    """One row per bar, segments left to right; `scale` is the value of a full bar
    (default: the largest total); `note_width` the room right of the bars."""
    full = scale or max((b.total for b in bars), default=0) or 1
    parts: list[str] = []
    y = 0
    for bar in bars:
        y += 8 if bar.group_start and y else 0
        row = [f'<g class="bar" transform="translate(0,{y})">']
        if bar.title:
            row.append(f"<title>{escape(bar.title)}</title>")
        row.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{ROW - 7}" text-anchor="end">'
            f"{escape(bar.label)}</text>"
        )
        x = float(LABEL_WIDTH)
        for seg in bar.segments:
            width = BAR_WIDTH * seg.value / full
            if width <= 0:
                continue
            row.append(
                f'<rect class="seg seg-{_css(seg.css)}" x="{x:.1f}" y="3" '
                f'width="{max(width, 1):.1f}" height="{ROW - 6}"><title>{escape(seg.title)}'
                "</title></rect>"
            )
            x += width
        row.append(f'<text class="note" x="{x + 6:.1f}" y="{ROW - 7}">{escape(bar.note)}</text>')
        parts.append("".join(row) + "</g>")
        y += ROW
    legend_svg, height = _legend(legend, y + 6)
    width = LABEL_WIDTH + BAR_WIDTH + note_width
    return Markup(
        f'<svg class="chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(label)}</title>{''.join(parts)}{legend_svg}</svg>"
    )


def _legend(names: Sequence[str], y: int) -> tuple[str, int]:
    if not names:
        return "", y
    items, x = [], LABEL_WIDTH
    for name in names:
        items.append(
            f'<rect class="seg seg-{_css(name)}" x="{x}" y="{y}" width="12" height="12"/>'
            f'<text x="{x + 16}" y="{y + 10}">{escape(name)}</text>'
        )
        x += 24 + 8 * len(name)
    return "".join(items), y + 18


def verdict_mix(result: ScanResult) -> Markup:
    """Components per verdict, one bar per target."""
    bars = []
    for target in view.targets_of(result):
        summary = result.targets.get(target)
        counts = summary.counts if summary else {}
        segments = [
            Segment(v.value, counts[v], f"{target.value}: {counts[v]} {v.value}")
            for v in Verdict
            if counts.get(v)
        ]
        verdict = summary.verdict.value if summary else "-"
        score = f", score {summary.score}" if summary else ""
        bars.append(Bar(target.value, segments, f"{verdict}{score}"))
    return stacked_bars(
        bars,
        label="Verdict mix per target (components in scope)",
        legend=[v.value for v in Verdict],
    )


def blockers_per_layer(result: ScanResult) -> Markup:
    """Per layer, one bar per target: components from that layer that are rework or
    blocked there."""
    per_layer = view.blockers_per_layer(result)
    bars = []
    for layer, by_target in per_layer.items():
        for n, (target, counts) in enumerate(by_target.items()):
            segments = [
                Segment(v.value, counts[v], f"layer {layer}, {target.value}: {counts[v]} {v.value}")
                for v in view.BLOCKING
                if counts[v]
            ]
            total = sum(counts.values())
            bars.append(
                Bar(f"layer {layer} · {target.value}", segments, str(total), group_start=n == 0)
            )
    return stacked_bars(
        bars,
        label="Components that block, per layer and target",
        legend=[v.value for v in view.BLOCKING],
    )


def size_per_layer(result: ScanResult) -> Markup:
    """The stored size of each layer, with its history line as tooltip."""
    bars = [
        Bar(
            f"layer {layer.index}",
            [Segment("size", max(layer.size, 0), view.human_size(layer.size))],
            view.human_size(layer.size),
            title=layer.created_by or "(no history)",
        )
        for layer in result.image.layers
    ]
    return stacked_bars(bars, label="Size per layer (as stored)")
