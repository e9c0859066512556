"""Findings of the image configuration itself: ports, volumes, user, shell entrypoints."""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from portscan.knowledge.ruleids import EXPOSED_PORTS, SHELL_ENTRYPOINT, USER_ROOT, VOLUMES
from portscan.lint.findings import Where, rule_findings
from portscan.model import IMAGE, Finding, ImageConfig, Script


def lint_config(
    config: ImageConfig, graph: nx.DiGraph, scripts: Mapping[str, Script]
) -> list[Finding]:
    """Findings of the image configuration itself."""
    image = Where("(image config)", None, None)
    findings: list[Finding] = []
    if config.exposed_ports:
        ports = ", ".join(config.exposed_ports)
        detail = f"ExposedPorts: {ports}"
        findings += rule_findings(EXPOSED_PORTS, image, f"exposes {ports}", detail)
    if config.volumes:
        volumes = ", ".join(config.volumes)
        findings += rule_findings(VOLUMES, image, f"declares volumes {volumes}", volumes)
    if config.user in ("", "0", "root", "0:0", "root:root"):
        findings += rule_findings(USER_ROOT, image, "runs as root", f"User: {config.user or '-'}")
    for _, target, kind in graph.out_edges(IMAGE, data="kind") if IMAGE in graph else ():
        path = graph.nodes[target].get("path")
        if kind == "entrypoint" and path in scripts:
            interpreter = scripts[path].interpreter_line
            message = f"the entrypoint {path} is a script ({interpreter})"
            findings += rule_findings(SHELL_ENTRYPOINT, image, message, interpreter)
    return findings
