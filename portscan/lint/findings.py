"""Findings from rules: one per target for a rule whose verdicts are data, and the PS50x
patterns that a set of function names completes (signatures/patterns.json)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from portscan.knowledge import rules
from portscan.knowledge import tables as sig
from portscan.knowledge.platform import parse_name
from portscan.model import Evidence, Finding, Target

TARGETS: tuple[Target, ...] = tuple(Target)


@functools.cache
def _patterns() -> tuple[tuple[str, tuple[frozenset[str], ...]], ...]:
    doc = sig.load("patterns.json")["patterns"]
    return tuple((p["rule"], tuple(frozenset(group) for group in p["all"])) for p in doc)


@dataclass(frozen=True)
class Where:
    """Where a component lives: for the evidence of its findings."""

    path: str
    package: str | None
    layer: int | None


def rule_findings(
    rule_id: str, where: Where, message: str, detail: str = "", targets: Sequence[Target] = TARGETS
) -> list[Finding]:
    """One finding per target for a rule whose verdict per target is data."""
    rule = rules.get_rule(rule_id)
    evidence = Evidence(where.path, package=where.package, layer=where.layer, detail=detail)
    return [
        Finding(rule.id, target, rule.verdict(target), rule.capability, message, [evidence])
        for target in targets
    ]


def pattern_findings(functions: Iterable[str], where: Where) -> list[Finding]:
    """PS50x patterns that the set of function names completes."""
    parsed = [parse_name(name) for name in functions]
    names = {n.name for n in parsed} | {n.function for n in parsed}  # as spelled, as meant
    findings = []
    for rule_id, groups in _patterns():
        if all(group & names for group in groups):
            used = sorted(set().union(*(group & names for group in groups)))
            rule = rules.get_rule(rule_id)
            message = f"{rule.title}: {where.path} uses {', '.join(used)}"
            findings += rule_findings(rule_id, where, message, detail="uses " + ", ".join(used))
    return findings
