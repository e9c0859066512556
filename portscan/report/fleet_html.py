"""The fleet report of a registry audit: one self-contained HTML file, autoescaped, from a
`FleetResult`, with the image report's stylesheet and colours.

Its one script (allowed by hash in the Content-Security-Policy, which forbids every
request) sorts and searches the images table. `write_image_reports` writes each image's
own report beside the page, and the images table links to them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from portscan import __version__, codec
from portscan.audit.fleet import FleetImage, FleetResult
from portscan.audit.store import Store
from portscan.knowledge.rules import get_rule
from portscan.model import Target, Verdict
from portscan.report import charts, html
from portscan.report.audit import verdict_rank
from portscan.report.rules import render_rule_text


def best_verdict(image: FleetImage) -> str:
    """The image's verdict on its most favourable target ('' when it has none)."""
    return max(image.verdicts.values(), key=verdict_rank, default="")


def verdict_chart(images: list[FleetImage], targets: list[str]) -> Markup:
    """Per target, how many images got each verdict: one stacked bar per target."""
    order = [str(v) for v in Verdict]
    bars = []
    for target in targets:
        counts = Counter(image.verdicts[target] for image in images if target in image.verdicts)
        segments = [
            charts.Segment(v, counts[v], f"{target}: {counts[v]} image(s) {v}")
            for v in order
            if counts[v]
        ]
        note = ", ".join(f"{counts[v]} {v}" for v in order if counts[v])
        bars.append(charts.Bar(target, segments, note))
    return charts.stacked_bars(
        bars,
        label="images per verdict, per target",
        scale=len(images) or 1,
        legend=order,
        note_width=300,
    )


@dataclass
class RuleRow:
    """One recurring rule across the targets it blocks or reworks."""

    rule_id: str
    title: str
    verdicts: dict[str, str] = field(default_factory=dict)  # target -> verdict
    images: list[str] = field(default_factory=list)  # digests

    @property
    def worst(self) -> str:
        return min(self.verdicts.values(), key=verdict_rank)


def blockers_by_rule(fleet: FleetResult, targets: list[str]) -> list[RuleRow]:
    """The recurring blockers once per rule, worst verdict first, then most images."""
    rows: dict[str, RuleRow] = {}
    for b in fleet.blockers:
        row = rows.setdefault(b.rule_id, RuleRow(b.rule_id, b.message))
        old = row.verdicts.get(b.target)
        row.verdicts[b.target] = min((v for v in (old, b.verdict) if v), key=verdict_rank)
        row.images += [d for d in b.images if d not in row.images]
    for row in rows.values():
        row.verdicts = {t: row.verdicts[t] for t in targets if t in row.verdicts}
    return sorted(rows.values(), key=lambda r: (verdict_rank(r.worst), -len(r.images), r.rule_id))


def _page_name(image: FleetImage, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", image.names[0] if image.names else "image").strip("_")
    name, n = base or "image", 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name + ".html"


def write_image_reports(
    store: Store, result_key: str, fleet: FleetResult, page: Path
) -> dict[str, str]:
    """Each image's own HTML report, from the store, in a directory beside `page`
    (`fleet.html` -> `fleet-images/`); digest -> its address relative to `page`."""
    folder = page.with_name(f"{page.stem}-images")
    links: dict[str, str] = {}
    taken: set[str] = set()
    for image in fleet.images:
        if not image.digest or image.digest in links:
            continue
        doc = store.image_result(image.digest, result_key)
        if doc is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        name = _page_name(image, taken)
        (folder / name).write_text(html.render(codec.from_dict(doc)), encoding="utf-8")
        links[image.digest] = f"{folder.name}/{name}"
    return links


def render(fleet: FleetResult, reports: Mapping[str, str] | None = None) -> str:
    """The fleet page; `reports` maps an image digest to the address of its report."""
    css, js, csp = html.page_assets("fleet.js")
    targets = [t.value for t in Target if any(t.value in i.verdicts for i in fleet.images)]
    targets = targets or [t.value for t in Target]
    blockers = blockers_by_rule(fleet, targets)
    rule_ids = sorted({b.rule_id for b in blockers} | {w.rule_id for w in fleet.waived})
    best = Counter(best_verdict(image) for image in fleet.images if image.verdicts)
    names = {image.digest: ", ".join(image.names) for image in fleet.images if image.digest}
    return (
        html.environment()
        .get_template("fleet.html.j2")
        .render(
            fleet=fleet,
            targets=targets,
            blockers=blockers,
            best=[(str(v), best[str(v)]) for v in Verdict if best[str(v)]],
            chart=verdict_chart(fleet.images, targets),
            reports=reports or {},
            names=names,
            rank=verdict_rank,
            trend=fleet.trend,
            trend_verdicts=[
                str(v)
                for v in Verdict
                if any(str(v) in counts for p in fleet.trend for counts in p.verdicts.values())
            ],
            rule_texts=[(rule_id, render_rule_text(get_rule(rule_id))) for rule_id in rule_ids],
            version=__version__,
            css=Markup(css),
            js=Markup(js),
            csp=csp,
        )
    )
