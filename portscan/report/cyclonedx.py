"""CycloneDX 1.6 JSON: the image, its packages, the judged files inside them, the
dependency graph, and portscan's verdicts as properties.

Files (executables, libraries, scripts) are `file` components nested in the package
that owns them; `dependencies` holds the graph edges between them (entrypoint, exec,
interpreter, needed library) and, derived from those, between packages. Verdicts and
scores appear as `portscan:verdict:<target>` and `portscan:score:<target>` properties,
the image's on the metadata component. A finding a waiver accepted (`--waivers`) is a
`portscan:waived:<rule>:<target>` property holding the reason, on its file (or, for
the image config's findings, on the metadata component): such findings count for none
of the verdicts and scores beside it.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from portscan.model import IMAGE, Component, Finding, Package, ScanResult

SPEC_VERSION = "1.6"
_GRAPH_EDGES = {"entrypoint", "shell", "exec", "interpreter", "needed"}


def _prop(name: str, value: object) -> dict[str, str]:
    return {"name": f"portscan:{name}", "value": str(value)}


def _waived(findings: Iterable[Finding]) -> list[dict[str, str]]:
    """One property per waived (rule, target), the waiver's reason as its value."""
    waived = {(f.rule_id, f.target.value): f.waived for f in findings if f.waived is not None}
    return [_prop(f"waived:{rule}:{target}", why) for (rule, target), why in sorted(waived.items())]


def _file_component(component: Component) -> dict[str, Any]:
    props = [_prop("kind", component.kind), _prop("reachable", str(component.reachable).lower())]
    if component.layer is not None:
        props.append(_prop("layer", component.layer))
    if component.runtime:
        props.append(_prop("runtime", component.runtime))
    for target, verdict in component.verdicts.items():
        props.append(_prop(f"verdict:{target.value}", verdict.value))
    for target, score in component.scores.items():
        props.append(_prop(f"score:{target.value}", score))
    if component.plan is not None:
        props.append(_prop("plan:path", component.plan.path))
        props.append(_prop("plan:effort", component.plan.effort))
    props += _waived(component.findings)
    return {"type": "file", "bom-ref": component.id, "name": component.path, "properties": props}


def _package_component(package: Package, ref: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "library", "bom-ref": ref, "name": package.name}
    if package.version:
        doc["version"] = package.version
    if package.purl:
        doc["purl"] = package.purl
    if package.licenses:
        doc["licenses"] = [{"license": {"name": name}} for name in package.licenses]
    props = [_prop("ecosystem", package.ecosystem), _prop("found-by", package.found_by)]
    if package.layer >= 0:
        props.append(_prop("layer", package.layer))
    doc["properties"] = props
    return doc


def _package_refs(packages: list[Package]) -> list[tuple[Package, str]]:
    """Each package with a unique bom-ref: its purl, suffixed when two share one."""
    out, taken = [], set()
    for package in packages:
        ref, n = package.purl, 1
        while ref in taken:
            n += 1
            ref = f"{package.purl}#{n}"
        taken.add(ref)
        out.append((package, ref))
    return out


def _dependencies(
    result: ScanResult, pkg_ref: dict[str, str], all_refs: set[str]
) -> list[dict[str, Any]]:
    """Graph edges between the image and files, and the package edges they imply."""
    owner = {c.id: pkg_ref.get(c.package or "") for c in result.components}
    known = set(owner) | {IMAGE}
    depends: dict[str, set[str]] = defaultdict(set)
    for dep in result.dependencies:
        if dep.kind in _GRAPH_EDGES and dep.source in known and dep.target in known:
            depends[dep.source].add(dep.target)
            a, b = owner.get(dep.source), owner.get(dep.target)
            if a and b and a != b:
                depends[a].add(b)
    refs = [IMAGE, *sorted(owner), *sorted(all_refs)]
    return [{"ref": ref, "dependsOn": sorted(depends[ref])} for ref in dict.fromkeys(refs)]


def to_dict(result: ScanResult) -> dict[str, Any]:
    """The BOM as a dict."""
    image = result.image
    refs = _package_refs(result.packages)
    pkg_ref: dict[str, str] = {}
    for package, ref in refs:
        pkg_ref.setdefault(package.purl, ref)
    files_of: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for component in sorted(result.components, key=lambda c: c.path):
        files_of[pkg_ref.get(component.package or "")].append(_file_component(component))
    components = []
    for package, ref in refs:
        doc = _package_component(package, ref)
        if files_of.get(ref):
            doc["components"] = files_of.pop(ref)
        components.append(doc)
    components += files_of.get(None, [])
    image_props = [_prop("platform", image.platform), _prop("source", image.source.value)]
    for target, summary in result.targets.items():
        image_props.append(_prop(f"verdict:{target.value}", summary.verdict.value))
        image_props.append(_prop(f"score:{target.value}", summary.score))
    image_props += _waived(result.image_findings)
    seed = f"{image.digest or image.reference}|{result.scanned_at}"
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, seed)}",
        "version": 1,
        "metadata": {
            "timestamp": result.scanned_at,
            "tools": {
                "components": [
                    {"type": "application", "name": "portscan", "version": result.portscan_version}
                ]
            },
            "component": {
                "type": "container",
                "bom-ref": IMAGE,
                "name": image.reference,
                **({"version": image.digest} if image.digest else {}),
                "properties": image_props,
            },
        },
        "components": components,
        "dependencies": _dependencies(result, pkg_ref, {ref for _, ref in refs}),
    }


def render(result: ScanResult) -> str:
    return json.dumps(to_dict(result), indent=1, ensure_ascii=False) + "\n"
