"""SARIF 2.1.0 (docs.oasis-open.org/sarif/sarif/v2.1.0): one rule per rule id, one result
per finding, located by paths inside the image.

Paths are relative to the `IMAGEROOT` base (the image's root directory); symbols and
syscalls are logical locations in them. A verdict maps onto SARIF's kind and level:
blocked and rework fail as errors, shim fails as a warning, unknown asks for review,
ready passes, n/a is not applicable. Only findings that need something (not ready,
not n/a) become results: code-scanning consumers want problems, and GitHub accepts
25,000 results per run (nginx has ~19,000 findings, most of them "available").
Each result carries its target and verdict as properties and a fingerprint that is
stable across scans of the same files. When its evidence was reached through call
chains (graph/reach.py), each step of the shortest is a related location (the file,
with the function as message) and its text is the `chain` property.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from portscan.knowledge import rules
from portscan.model import Component, Evidence, Finding, ScanResult, Verdict, chain_text
from portscan.report import view
from portscan.report.rules import render_rule_markdown, render_rule_text

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
ROOT = "IMAGEROOT"
_KIND_LEVEL = {
    Verdict.BLOCKED: ("fail", "error"),
    Verdict.REWORK: ("fail", "error"),
    Verdict.SHIM: ("fail", "warning"),
    Verdict.UNKNOWN: ("review", "note"),
    Verdict.READY: ("pass", "none"),
    Verdict.NA: ("notApplicable", "none"),
}


def _rule(rule_id: str) -> dict[str, Any]:
    try:
        rule = rules.get_rule(rule_id)
    except rules.UnknownRuleError:
        return {"id": rule_id, "shortDescription": {"text": "unknown rule"}}
    doc: dict[str, Any] = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.summary or rule.rationale},
        "help": {"text": render_rule_text(rule), "markdown": render_rule_markdown(rule)},
        "properties": {
            "family": rule.family,
            "tags": ["wasi", "portability", rule.family],
        },
    }
    if rule.capability is not None:
        doc["properties"]["capability"] = rule.capability
    if rule.runtime is not None:
        doc["properties"]["runtime"] = rule.runtime
    return doc


def _uri(path: str) -> str:
    """A path in the image as a URI reference relative to IMAGEROOT."""
    return quote(path.lstrip("/"), safe="/")


def _locations(evidence: Iterable[Evidence]) -> list[dict[str, Any]]:
    """One location per file, with the symbols and syscalls in it as logical locations,
    and one per syscall site that has an address."""
    by_file: dict[str, list[dict[str, str]]] = {}
    sites: list[dict[str, Any]] = []
    for e in evidence:
        names = by_file.setdefault(e.file, [])
        name = e.symbol or e.syscall
        entry = {"name": name, "kind": "function"} if name else None
        if entry and entry not in names:
            names.append(entry)
        if e.address is not None and e.file.startswith("/"):
            address = {"absoluteAddress": e.address, "kind": "instruction"}
            if e.syscall:
                address["name"] = e.syscall
            sites.append({"physicalLocation": {**_artifact(e.file), "address": address}})
    out = []
    for file, names in by_file.items():
        if file.startswith("/"):
            location: dict[str, Any] = {"physicalLocation": _artifact(file)}
        else:
            location = {"logicalLocations": [{"name": file, "kind": "resource"}]}
        if names:
            location.setdefault("logicalLocations", []).extend(names)
        out.append(location)
    return out + sites


def _artifact(path: str) -> dict[str, Any]:
    return {"artifactLocation": {"uri": _uri(path), "uriBaseId": ROOT}}


def _fingerprint(finding: Finding, component: str) -> str:
    keys = sorted(
        f"{e.file}|{e.symbol or ''}|{e.syscall or ''}|{e.detail}" for e in finding.evidence
    )
    text = "\n".join([finding.rule_id, finding.target.value, component, *keys])
    return hashlib.sha256(text.encode()).hexdigest()


def _result(finding: Finding, index: int, component: Component | None) -> dict[str, Any]:
    kind, level = _KIND_LEVEL[finding.verdict]
    owner = component.id if component else "image"
    properties: dict[str, Any] = {
        "target": finding.target.value,
        "verdict": finding.verdict.value,
        "component": owner,
    }
    if component is not None and component.package:
        properties["package"] = component.package
    if component is not None and component.layer is not None:
        properties["layer"] = component.layer
    if finding.capability is not None:
        properties["capability"] = finding.capability
    doc = {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "kind": kind,
        "level": level,
        "message": {"text": f"[{finding.target.value}: {finding.verdict.value}] {finding.message}"},
        "locations": _locations(finding.evidence),
        "partialFingerprints": {"portscanFinding/v1": _fingerprint(finding, owner)},
        "properties": properties,
    }
    chain = view.shortest_chain([finding])
    if chain:  # how the program reaches its evidence, shortest (graph/reach.py)
        properties["chain"] = chain_text(chain)
        doc["relatedLocations"] = [
            {
                "id": number,
                "physicalLocation": _artifact(step.file),
                "message": {"text": step.function or "the program"},
            }
            for number, step in enumerate(chain, 1)
            if step.file.startswith("/")
        ]
    if finding.waived is not None:  # a waiver file accepted it (portscan.waivers)
        doc["suppressions"] = [{"kind": "external", "justification": finding.waived}]
    return doc


_PASSING = (Verdict.READY, Verdict.NA)


def to_dict(result: ScanResult) -> dict[str, Any]:
    """The SARIF log as a dict."""
    ids = view.rule_ids(result)
    index = {rule_id: i for i, rule_id in enumerate(ids)}
    pairs: list[tuple[Finding, Component | None]] = [
        (f, c) for c in result.components for f in c.findings if f.verdict not in _PASSING
    ]
    pairs += [(f, None) for f in result.image_findings if f.verdict not in _PASSING]
    image = result.image
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "portscan",
                        "version": result.portscan_version,
                        "semanticVersion": result.portscan_version,
                        "rules": [_rule(rule_id) for rule_id in ids],
                    }
                },
                "originalUriBaseIds": {
                    ROOT: {
                        "uri": "file:///",
                        "description": {"text": f"the root of the image {image.reference}"},
                    }
                },
                "results": [_result(f, index[f.rule_id], c) for f, c in pairs],
                "properties": {
                    "image": {
                        "reference": image.reference,
                        "digest": image.digest,
                        "platform": str(image.platform),
                    },
                    "scannedAt": result.scanned_at,
                    "targets": {
                        t.value: {"verdict": s.verdict.value, "score": s.score}
                        for t, s in result.targets.items()
                    },
                },
            }
        ],
    }


def render(result: ScanResult) -> str:
    return json.dumps(to_dict(result), indent=1, ensure_ascii=False) + "\n"
