"""The rule catalogue as text: `portscan rules`, `portscan explain`, docs/rules.md."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

from portscan.knowledge import tables as sig
from portscan.knowledge.rules import Rule, all_rules, remediation_text
from portscan.model import Target, Verdict

_WIDTH = 88


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, _WIDTH, initial_indent=indent, subsequent_indent=indent)


def _what(rule: Rule) -> str:
    lines = [_wrap(rule.summary)] if rule.summary else []
    if rule.capability is not None:
        cap = sig.capability_map().capabilities[rule.capability]
        if cap.symbols and rule.support is cap.support:
            shown = ", ".join(cap.symbols[:16])
            more = f" and {len(cap.symbols) - 16} more" if len(cap.symbols) > 16 else ""
            lines.append(_wrap(f"Functions: {shown}{more}."))
        if cap.patterns and rule.support is cap.support:
            patterns = ", ".join(p.pattern for p in cap.patterns)
            lines.append(_wrap(f"Symbol patterns: {patterns}."))
    lines.append(f"Evidence: {', '.join(rule.evidence)}.")
    return "\n".join(lines)


@dataclass
class RuleDoc:
    """A rule's documentation in parts, for pages that lay it out themselves."""

    id: str
    title: str
    facts: str
    what: list[str]
    why: str
    example: str
    targets: list[tuple[str, Verdict, str]]  # target, verdict, what to do
    references: list[tuple[str, str]]  # title, location


def rule_doc(rule: Rule) -> RuleDoc:
    """The parts `render_rule_text` prints, unwrapped."""
    facts = f"Family: {rule.family}" + (
        f"; capability: {rule.capability}" if rule.capability else ""
    )
    facts += f"; runtime: {rule.runtime}" if rule.runtime else ""
    return RuleDoc(
        rule.id,
        f"{rule.name}: {rule.title}",
        facts,
        [" ".join(line.split()) for line in _what(rule).split("\n")],
        rule.rationale,
        rule.example,
        [(t.value, rule.support[t].verdict, remediation_text(rule.support[t])) for t in Target],
        [(ref.title, ref.location) for ref in rule.references],
    )


def render_rule_text(rule: Rule) -> str:
    """The rule's documentation as plain text, in the spirit of `ruff rule`."""
    sections = [
        f"{rule.id} {rule.name}: {rule.title}",
        f"Family: {rule.family}"
        + (f"; capability: {rule.capability}" if rule.capability else "")
        + (f"; runtime: {rule.runtime}" if rule.runtime else ""),
        "## What it finds\n" + _what(rule),
        "## Why it matters on WASI\n" + _wrap(rule.rationale),
        "## Example\n" + _wrap(rule.example),
    ]
    per_target = []
    for target in Target:
        support = rule.support[target]
        head = f"{target.value:<7} {support.verdict.value}"
        per_target.append(head + "\n" + _wrap(remediation_text(support), "        "))
    sections.append("## Per target\n" + "\n".join(per_target))
    if rule.references:
        refs = "\n".join(f"- {ref.title}: {ref.location}" for ref in rule.references)
        sections.append("## References\n" + refs)
    return "\n\n".join(sections) + "\n"


def _code_list(line: str) -> str:
    """`Functions: a, b and 3 more.` with each name as code (underscores stay literal)."""
    head, sep, rest = line.partition(": ")
    if not sep or head not in ("Functions", "Symbol patterns"):
        return line
    items, more = rest.rstrip("."), ""
    if " and " in items:
        items, more = items.rsplit(" and ", 1)
        more = f" and {more}"
    return f"{head}: " + ", ".join(f"`{item}`" for item in items.split(", ")) + more + "."


def _cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def render_rule_markdown(rule: Rule) -> str:
    """The rule's documentation as Markdown, for SARIF's `help.markdown` (GitHub code
    scanning shows it under an alert): what it finds, why, an example, a table of the
    verdict and remedy per target, and linked references."""
    doc = rule_doc(rule)
    lines = [f"**{doc.id} {doc.title}**", "", doc.facts, "", "### What it finds", ""]
    lines += [_code_list(line) + "  " for line in doc.what]
    lines += ["", "### Why it matters on WASI", "", doc.why, ""]
    if doc.example:
        lines += ["### Example", "", "```text", doc.example, "```", ""]
    lines += ["### Per target", "", "| target | verdict | what to do |", "|---|---|---|"]
    lines += [f"| {t} | {v.value} | {_cell(how)} |" for t, v, how in doc.targets]
    if doc.references:
        lines += ["", "### References", ""]
        for title, location in doc.references:
            shown = f"[{title}]({location})" if "://" in location else f"{title}: `{location}`"
            lines.append(f"- {shown}")
    return "\n".join(lines).rstrip() + "\n"


def render_rule_list(output_format: str = "table") -> str:
    rules = all_rules()
    if output_format == "json":
        doc = [
            {
                "id": rule.id,
                "name": rule.name,
                "title": rule.title,
                "family": rule.family,
                "capability": rule.capability if rule.capability else None,
                "runtime": rule.runtime,
                "verdicts": {t.value: rule.verdict(t).value for t in Target},
            }
            for rule in rules
        ]
        return json.dumps(doc, indent=2) + "\n"
    targets = list(Target)
    header = f"{'ID':<6} {'NAME':<28} " + " ".join(f"{t.value:<8}" for t in targets) + " TITLE"
    lines = [header]
    for rule in rules:
        verdicts = " ".join(f"{rule.verdict(t).value:<8}" for t in targets)
        lines.append(f"{rule.id:<6} {rule.name[:28]:<28} {verdicts} {rule.title}")
    lines.append(f"\n{len(rules)} rules; `portscan explain ID` prints one.")
    return "\n".join(lines) + "\n"


def render_rules_markdown() -> str:
    """docs/rules.md: every rule's `portscan explain` text, one section each."""
    parts = [
        "# Rules\n\nGenerated by `python -m portscan.report.rules > docs/rules.md` from "
        "signatures/rules.json; `portscan explain ID` prints the same text.\n"
    ]
    for rule in all_rules():
        text = render_rule_text(rule).replace("\n## ", "\n#### ")
        title, _, body = text.partition("\n")
        parts.append(f"## {title}\n{body}")
    return "\n".join(parts)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_rules_markdown())
