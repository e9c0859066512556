"""Findings of the image configuration itself: the config checks of signatures/rules.json
(ports, volumes, user, ...) and a script as the entrypoint."""

from __future__ import annotations

from collections.abc import Mapping

from portscan.graph.digraph import DiGraph
from portscan.knowledge.ruleids import SHELL_ENTRYPOINT
from portscan.knowledge.rules import all_rules
from portscan.lint.findings import Where, rule_findings
from portscan.model import IMAGE, Finding, ImageConfig, Script


def lint_config(
    config: ImageConfig, graph: DiGraph, scripts: Mapping[str, Script]
) -> list[Finding]:
    """Findings of the image configuration itself."""
    image = Where("(image config)", None, None)
    findings: list[Finding] = []
    for rule in all_rules():  # the config checks of signatures/rules.json
        value = rule.config.value_of(config) if rule.config else None
        if rule.config is not None and value is not None:
            message, detail = rule.config.message, rule.config.detail
            findings += rule_findings(rule.id, image, message.format(value=value),
                                      detail.format(value=value))  # fmt: skip
    for _, target, kind in graph.out_edges(IMAGE, data="kind") if IMAGE in graph else ():
        path = graph.nodes[target].get("path")
        if kind == "entrypoint" and path in scripts:
            interpreter = scripts[path].interpreter_line
            message = f"the entrypoint {path} is a script ({interpreter})"
            findings += rule_findings(SHELL_ENTRYPOINT, image, message, interpreter)
    return findings
