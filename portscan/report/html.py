"""The HTML report: one self-contained page (inline CSS, JS and SVG, no network).

jinja2 renders templates/report.html.j2 with autoescape on; the stylesheet and the
script are inlined and allowed by hash in the page's Content-Security-Policy, which
also forbids every request, so nothing can load from anywhere. The component table's
rows travel as JSON (`rows_json`); the script sorts and filters that array and puts
only the first SHOWN_ROWS matching rows into the DOM (more on request), so that a table
of 10,000 components loads in about a second and filters and sorts in a fifth of one
(benchmarks/bench_report.py). Findings' details travel as gzip-compressed,
base64-encoded JSON in non-executed script elements, one per CHUNK_ROWS rows, so that
opening a row inflates only its own chunk; the script shows them through `textContent`
only. Every path, rule id and graph node that names a component links to `#c-N`, whose
details the script opens.
"""

from __future__ import annotations

import base64
import functools
import gc
import gzip
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from portscan.knowledge import rules
from portscan.model import (
    ChainStep,
    Component,
    Evidence,
    Finding,
    Package,
    ScanResult,
    Target,
    Verdict,
)
from portscan.report import answer, charts, graphsvg, treemap, view
from portscan.report.rules import RuleDoc, rule_doc

EVIDENCE_SHOWN = 8  # evidence items per finding carried into the page
BLOCKER_EVIDENCE_SHOWN = 4  # files per top blocker
ITEMS_SHOWN = 12  # symbols or syscalls per file of a top blocker
CHUNK_ROWS = 200  # rows' details per packed chunk
SHOWN_ROWS = 300  # rows the script puts into the table at a time
GZIP_LEVEL = 6  # 3 % larger than 9, in 60 % of the time


@dataclass
class Row:
    """One line of the component table."""

    index: int
    kind: str
    path: str
    package: str
    layer: int | None
    reachable: bool
    runtime: str | None
    verdicts: dict[Target, Verdict]
    scores: dict[Target, int] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)  # rule ids of its open findings


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja environment of the HTML pages (image report and fleet page)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("portscan.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = view.human_size
    env.filters["short"] = view.short_digest
    env.filters["css"] = lambda v: "na" if str(v) == "n/a" else str(v)
    return env


@functools.cache
def asset(name: str) -> str:
    """A stylesheet or script of templates/, inlined into a page."""
    return resources.files("portscan.report").joinpath("templates", name).read_text("utf-8")


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def page_assets(script: str) -> tuple[str, str, str]:
    """The stylesheet, the `script` of templates/ and the Content-Security-Policy that
    lets exactly those two run and nothing be fetched."""
    css, js = asset("report.css"), asset(script)
    csp = (
        "default-src 'none'; "
        f"style-src 'sha256-{_sha256(css)}'; script-src 'sha256-{_sha256(js)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return css, js, csp


def packed_data(value: Any) -> str:
    """JSON, gzip-compressed and base64-encoded: a tenth of the size, and nothing in it
    that HTML could read as markup. The page's script inflates it with the browser's
    own DecompressionStream when a row is first opened."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    packed = gzip.compress(text.encode(), compresslevel=GZIP_LEVEL, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def unpack_data(text: str) -> Any:
    """The inverse of `packed_data` (for tests and tools reading a report)."""
    return json.loads(gzip.decompress(base64.b64decode(text)))


def packed_chunks(rows: list[Any]) -> list[str]:
    """`rows` packed CHUNK_ROWS at a time: row i is item i % CHUNK_ROWS of chunk
    i // CHUNK_ROWS."""
    return [packed_data(rows[i : i + CHUNK_ROWS]) for i in range(0, len(rows), CHUNK_ROWS)]


_NAMES: dict[Any, str] = {member: member.value for member in (*Target, *Verdict)}


class _Evidence:
    """Evidence lines for the page's details: text, and the call chain as steps that
    link by row number to the components they name. One per page: a chain is worked
    out once however many findings show it (libc's recur everywhere)."""

    def __init__(self, rows: dict[str, int]) -> None:
        self.rows = rows  # a component's path -> its row number
        self.chains: dict[int, list[list[Any]]] = {}  # by the chain's identity: cheap

    def chain(self, chain: tuple[ChainStep, ...]) -> list[list[Any]]:
        """view.chain_links, with each file that is a component as its row number:
        `[text, row]`, or `[text]`."""
        steps = self.chains.get(id(chain))
        if steps is None:
            steps = self.chains[id(chain)] = [
                [step[0], self.rows[step[1]]] if step[1:] and step[1] in self.rows else [step[0]]
                for step in view.chain_links(chain)
            ]
        return steps

    def line(self, evidence: Evidence, component_path: str) -> str | list[Any]:
        """The evidence as its text, or `[text, chain steps]` when it carries a chain."""
        text = view.evidence_text(evidence, component_path)
        return [text, self.chain(evidence.chain)] if evidence.chain else text

    def findings(
        self, component: Component, findings: list[Finding]
    ) -> tuple[list[dict[str, Any]], list[str | list[Any]]]:
        """Open findings (`findings`, view.open_findings of the component), merged across
        targets when only the target differs, and the evidence lines they point into by
        number: each line once per component, though every target's finding repeats it.
        A line leaves out what the component already says (its file, package, layer);
        only the EVIDENCE_SHOWN first of a finding are written."""
        out: list[dict[str, Any]] = []
        lines: list[str | list[Any]] = []
        numbers: dict[tuple[Any, ...], int] = {}  # evidence -> its line (the chain follows
        # from the file and symbol: graph/reach.py keeps one per symbol a file reaches)
        alike: dict[tuple[Any, ...], list[tuple[dict[str, Any], Verdict, list[Evidence]]]] = {}
        names = _NAMES  # enum values, read from a dict: Enum.value is slow here
        for f in findings:
            key = (f.rule_id, f.message, f.waived)
            same = alike.get(key)
            if same is None:
                same = alike[key] = []
            else:
                entry = next(
                    (
                        d
                        for d, v, ev in same
                        if v is f.verdict and (ev is f.evidence or ev == f.evidence)
                    ),
                    None,
                )
                if entry is not None:
                    entry["targets"].append(names[f.target])
                    continue
            shown = []
            for e in f.evidence[:EVIDENCE_SHOWN]:
                at = (e.file, e.symbol, e.syscall, e.address, e.layer, e.detail)
                number = numbers.get(at)
                if number is None:
                    number = numbers[at] = len(lines)
                    lines.append(self.line(e, component.path))
                shown.append(number)
            entry = {
                "rule": f.rule_id,
                "targets": [names[f.target]],
                "verdict": names[f.verdict],
                "message": f.message,
                "evidence": shown,
                "more": max(len(f.evidence) - EVIDENCE_SHOWN, 0),
                "waived": f.waived,
            }
            same.append((entry, f.verdict, f.evidence))
            out.append(entry)
        return out, lines


def _component_data(
    c: Component, result: ScanResult, label: str, findings: list[Finding], evidence: _Evidence
) -> dict[str, Any]:
    binary = result.binaries.get(c.path)
    found, lines = evidence.findings(c, findings)
    ready = {
        t.value: sum(1 for f in c.findings if f.target is t and f.verdict is Verdict.READY)
        for t in c.verdicts
    }
    return {
        "path": c.path,
        "kind": c.kind,
        "package": label,
        "layer": c.layer,
        "reachable": c.reachable,
        "runtime": c.runtime,
        "verdicts": {t.value: v.value for t, v in c.verdicts.items()},
        "plan": None
        if c.plan is None
        else {"path": c.plan.path, "effort": c.plan.effort, "summary": c.plan.summary},
        "inherited": {t.value: ids for t, ids in c.inherited.items()},
        "findings": found,
        "lines": lines,
        "ready": ready,
        "binary": None
        if binary is None
        else {
            "linkage": binary.linkage,
            "libc": binary.libc,
            "needed": binary.needed,
            "interpreter": binary.interpreter,
        },
    }


def _package_rows(
    result: ScanResult, start: int, targets: list[Target]
) -> tuple[list[Row], list[dict[str, Any]]]:
    owned = view.components_by_package(result.components)
    rows, data = [], []
    for offset, package in enumerate(sorted(result.packages, key=lambda p: (p.name, p.purl))):
        mine = owned.get(package.purl, [])
        verdicts = view.package_verdicts(package, mine, targets)
        label = f"{package.name} {package.version}"
        rows.append(
            Row(
                start + offset,
                "package",
                label,
                package.name,
                package.layer if package.layer >= 0 else None,
                any(c.reachable for c in mine),
                None,
                verdicts,
            )
        )
        data.append(_package_data(package, mine, verdicts))
    return rows, data


def _package_data(
    package: Package, owned: list[Component], verdicts: dict[Target, Verdict]
) -> dict[str, Any]:
    return {
        "path": f"{package.name} {package.version}",
        "kind": "package",
        "package": package.purl,
        "layer": package.layer if package.layer >= 0 else None,
        "reachable": any(c.reachable for c in owned),
        "runtime": None,
        "verdicts": {t.value: v.value for t, v in verdicts.items()},
        "plan": None,
        "inherited": {},
        "findings": [],
        "lines": [],
        "ready": {},
        "binary": None,
        "owns": [c.path for c in owned],
        "files": len(package.files),
    }


def _rows(result: ScanResult, targets: list[Target]) -> tuple[list[Row], list[dict[str, Any]]]:
    packages = view.packages_by_purl(result)
    rows, data = [], []
    ordered = sorted(result.components, key=lambda c: (not c.reachable, c.path))
    evidence = _Evidence({c.path: index for index, c in enumerate(ordered)})
    for index, c in enumerate(ordered):
        label = view.package_label(c.package, packages)
        name = packages[c.package].name if c.package in packages else label
        findings = view.open_findings(c.findings)
        rule_ids = sorted({f.rule_id for f in findings})
        rows.append(
            Row(
                index, c.kind, c.path, name, c.layer, c.reachable, c.runtime, c.verdicts,
                c.scores, rule_ids,
            )
        )  # fmt: skip
        data.append(_component_data(c, result, label, findings, evidence))
    more_rows, more_data = _package_rows(result, len(rows), targets)
    return rows + more_rows, data + more_data


def rows_json(rows: list[Row], targets: list[Target]) -> str:
    """The table's rows as JSON that is safe inside a non-executed script element (no
    `<`, so no `</script>`): index, path, kind, package, layer, reach, per target the
    verdict, its rank and the score, the rule ids and the runtime."""
    names = {v: v.value for v in Verdict}  # an enum's .value is slow to read 80,000 times
    ranks = {v: v.rank for v in Verdict}
    names[None], ranks[None] = "", 9  # type: ignore[index]
    out = []
    for row in rows:
        verdicts = [row.verdicts.get(t) for t in targets]
        out.append(
            {
                "i": row.index,
                "path": row.path,
                "kind": row.kind,
                "pkg": row.package,
                "layer": row.layer,
                "reach": int(row.reachable),
                "v": [names[v] for v in verdicts],
                "r": [ranks[v] for v in verdicts],
                "s": [row.scores.get(t) for t in targets],
                "rules": row.rules,
                "rt": row.runtime,
            }
        )
    text = json.dumps(out, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _rule_docs(ids: list[str]) -> list[RuleDoc]:
    docs = []
    for rule_id in ids:
        try:
            docs.append(rule_doc(rules.get_rule(rule_id)))
        except rules.UnknownRuleError:
            text = "This version of portscan has no such rule."
            docs.append(RuleDoc(rule_id, "unknown rule", "", [text], "", "", [], []))
    return docs


def context(result: ScanResult) -> dict[str, Any]:
    """Everything the template needs, computed here so the template only lays out."""
    targets = view.targets_of(result)
    rows, data = _rows(result, targets)
    packages = view.packages_by_purl(result)
    config_findings = sorted(result.image_findings, key=lambda f: (f.verdict.rank, f.rule_id))
    anchors = {row.path: f"#c-{row.index}" for row in rows if row.kind != "package"}
    by_rule = Counter(rule for row in rows for rule in row.rules)
    return {
        "r": result,
        "image": result.image,
        "targets": targets,
        "summaries": [result.targets[t] for t in targets if t in result.targets],
        "plan_groups": view.plan_groups(result.components),
        "rows": rows,
        "rows_json": Markup(rows_json(rows, targets)),
        "shown_rows": SHOWN_ROWS,
        "row_packages": sorted({row.package for row in rows if row.package}),
        "kinds": sorted({row.kind for row in rows}),
        "verdicts": list(Verdict),
        "chunks": packed_chunks(data),
        "chunk_rows": CHUNK_ROWS,
        "graph": graphsvg.render(
            result, targets[0], {c.id: anchors[c.path] for c in result.components}
        ),
        "treemap": treemap.render(result, targets[0], anchors.get),
        "answers": answer.answers(result),
        "obstacles": answer.obstacles(result),
        "href": anchors.get,
        "short_name": answer.name,
        "rule_counts": by_rule,
        "chart_mix": charts.verdict_mix(result),
        "chart_blockers": charts.blockers_per_layer(result),
        "chart_sizes": charts.size_per_layer(result),
        "config_findings": config_findings,
        "rule_docs": _rule_docs(view.rule_ids(result)),
        "package_label": lambda purl: view.package_label(purl, packages),
        "blocker_evidence": BLOCKER_EVIDENCE_SHOWN,
        "evidence_by_file": view.evidence_by_file,
        "items_shown": ITEMS_SHOWN,
        "component_count": len(result.components),
    }


def render(result: ScanResult) -> str:
    """The report page as one string."""
    css, js, csp = page_assets("report.js")
    template = environment().get_template("report.html.j2")
    # The page is millions of small lists, dicts and strings and no reference cycles; the
    # cycle collector would walk the whole scan result again and again while they are
    # made (40 % of the time of a 10,000-component page), so it waits until the end.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return template.render(**context(result), css=Markup(css), js=Markup(js), csp=csp)
    finally:
        if collecting:
            gc.enable()
