"""A short Markdown summary for a pull-request comment: the verdict per target and the
sentence that says why, what stands in the way by capability across targets, and where
the migration effort lies. The full story is in the HTML report."""

from __future__ import annotations

import re

from portscan.model import ScanResult, Verdict
from portscan.report import answer, view
from portscan.waivers import waived_groups

OBSTACLES_SHOWN = 8
NAMES_SHOWN = 3
ITEMS_SHOWN = 6


# line breaks (CR, LF, U+2028/9) and other control characters: a value from an image (a
# config string) must not start a line of the summary or reach a terminal raw
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _cell(text: str) -> str:
    """Text safe inside a table cell: no pipes, no line breaks, no HTML."""
    text = _CONTROL.sub(" ", text.replace("\\", "\\\\").replace("|", "\\|"))
    return text.replace("<", "&lt;").replace(">", "&gt;")


def code_span(text: str) -> str:
    """An inline code span (HTML inside it shows as text) that survives backticks and
    pipes in the text, and has no line break."""
    text = _CONTROL.sub(" ", text.replace("|", "\\|"))
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _obstacles(result: ScanResult) -> list[str]:
    """What stands in the way, one table row per capability across targets."""
    found = answer.obstacles(result)
    if not found:
        return []
    targets = view.targets_of(result)
    lines = [
        "",
        "**What stands in the way** (by capability, across targets)",
        "",
        f"| capability | {' | '.join(t.value for t in targets)} | in | rules | uses |",
        "|---|" + "---|" * len(targets) + "---|---|---|",
    ]
    for o in found[:OBSTACLES_SHOWN]:
        verdicts = " | ".join(o.verdicts[t].value if t in o.verdicts else "" for t in targets)
        where = ", ".join(code_span(answer.name(p)) for p in o.components[:NAMES_SHOWN])
        if len(o.components) > NAMES_SHOWN:
            where += f" +{len(o.components) - NAMES_SHOWN}"
        uses = ", ".join(code_span(i) for i in o.items[:ITEMS_SHOWN])
        if len(o.items) > ITEMS_SHOWN:
            uses += " …"
        lines.append(
            f"| {_cell(o.title)} | {verdicts} | {where} | {' '.join(o.rule_ids)} | {uses} |"
        )
    if len(found) > OBSTACLES_SHOWN:
        lines += [
            "",
            f"and {len(found) - OBSTACLES_SHOWN} more capabilities (the HTML report lists all).",
        ]
    chains = [
        f"- {_cell(o.title)}: {code_span(view.short_chain(o.chain))}"
        for o in found[:OBSTACLES_SHOWN]
        if o.chain
    ]
    if chains:
        lines += ["", "**How the code reaches them** (one call chain each)", "", *chains]
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
    answers = answer.answers(result)
    if answers:
        lines += ["", "**The answer**", "", *(f"- {_cell(a.sentence)}" for a in answers)]
    lines += _obstacles(result)
    waived = [
        f"- **{g.rule_id}** {code_span(g.path)} on {', '.join(t.value for t in g.targets)}: "
        f"{_cell(g.reason)}"
        for g in waived_groups(result)
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
