"""A short Markdown summary for a pull-request comment: the verdict per target, the top
blockers, and where the migration effort lies. The full story is in the HTML report."""

from __future__ import annotations

import re

from portscan.model import Finding, ScanResult, Verdict
from portscan.report import view

BLOCKERS_SHOWN = 5
ITEMS_SHOWN = 6


def _cell(text: str) -> str:
    """Text safe inside a table cell: no pipes, no line breaks, no HTML."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def code_span(text: str) -> str:
    """An inline code span (HTML inside it shows as text) that survives backticks and
    pipes in the text."""
    text = text.replace("|", "\\|").replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _blockers(result: ScanResult) -> list[str]:
    """The top blockers of all targets, taken in turn from each target's list, one line
    per rule."""
    lists = [s.blockers for t in view.targets_of(result) if (s := result.targets.get(t))]
    chosen: dict[str, Finding] = {}
    for rank in range(max(map(len, lists), default=0)):
        for blockers in lists:
            if rank < len(blockers) and len(chosen) < BLOCKERS_SHOWN:
                chosen.setdefault(blockers[rank].rule_id, blockers[rank])
    lines = []
    for rule_id, finding in chosen.items():
        on = [
            f"{t.value} ({b.verdict.value})"
            for t, s in result.targets.items()
            for b in s.blockers
            if b.rule_id == rule_id
        ]
        groups = view.evidence_by_file(finding)
        where = "; ".join(
            f"{code_span(g.file)}: {', '.join(code_span(i) for i in g.items[:ITEMS_SHOWN])}"
            + (" …" if len(g.items) > ITEMS_SHOWN else "")
            for g in groups[:2]
        )
        more = f" (+{len(groups) - 2} files)" if len(groups) > 2 else ""
        headline = _cell(finding.message.split(". ")[0])
        lines.append(f"- **{rule_id}** on {', '.join(on)}: {headline}. {where}{more}")
    return lines


def render(result: ScanResult) -> str:
    """The summary as Markdown text."""
    image = result.image
    digest = f" ({code_span(view.short_digest(image.digest))})" if image.digest else ""
    lines = [
        f"### portscan: WASI portability of {code_span(image.reference)}{digest}",
        "",
        "| target | verdict | score | blocked | rework | shim | unknown | ready |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for target in view.targets_of(result):
        s = result.targets.get(target)
        if s is None:
            continue
        counts = [
            str(s.counts.get(v, 0))
            for v in (Verdict.BLOCKED, Verdict.REWORK, Verdict.SHIM, Verdict.UNKNOWN, Verdict.READY)
        ]
        lines.append(
            f"| {target.value} | **{s.verdict.value}** | {s.score} | {' | '.join(counts)} |"
        )
    if not result.targets:
        lines.append("| - | no verdicts in this result | | | | | | |")
    blockers = _blockers(result)
    if blockers:
        lines += ["", "**Top blockers**", "", *blockers]
    waived = [
        f"- **{g.rule_id}** {code_span(g.path)} on {', '.join(t.value for t in g.targets)}: "
        f"{_cell(g.reason)}"
        for g in view.waived_groups(result)
    ]
    if waived:
        lines += ["", "**Waived** (not counted for verdicts or gates)", "", *waived]
    if result.base is not None and result.base.layers:
        base = result.base
        verdicts = ", ".join(
            f"{t.value} {s.verdict.value} {s.score}" for t, s in base.targets.items()
        )
        lines += [
            "",
            f"**Base image** {code_span(base.reference)}: layers 0-{base.layers - 1}, "
            f"{base.components} components judged apart (not in the verdicts above): "
            f"{verdicts}.",
        ]
    groups = view.plan_groups([c for c in result.components if c.reachable])
    if groups:
        plan = ", ".join(f"{g.path} {len(g.components)}" for g in groups)
        lines += ["", f"**Migration plan** (components the entrypoint reaches): {plan}."]
    reachable = sum(1 for c in result.components if c.reachable)
    lines += [
        "",
        f"<sub>{len(result.components)} components judged, {reachable} reachable from the "
        f"entrypoint · {image.platform} · portscan {result.portscan_version} · "
        f"{result.scanned_at}</sub>",
    ]
    return "\n".join(lines) + "\n"
