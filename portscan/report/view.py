"""What the human-facing renderers (HTML, Markdown) show, computed once from a ScanResult.

Pure functions: no markup here, only the groupings and counts the pages present.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from portscan.knowledge import tables as sig
from portscan.model import (
    WHOLE,
    ChainStep,
    Component,
    Evidence,
    Finding,
    Package,
    ScanResult,
    Target,
    Verdict,
    chain_text,
)

EFFORT_ORDER = ("L", "M", "S", "-")
BLOCKING = (Verdict.BLOCKED, Verdict.REWORK)


def human_size(nbytes: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(max(nbytes, 0))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"


def short_digest(digest: str | None, length: int = 12) -> str:
    return digest.split(":")[-1][:length] if digest else "-"


def targets_of(result: ScanResult) -> list[Target]:
    """The targets the result judged, in the catalogue's order."""
    return [t for t in Target if t in result.targets] or list(Target)


def package_label(purl: str | None, packages: dict[str, Package]) -> str:
    """`name version` for a purl, from the inventory or from the purl itself."""
    if not purl:
        return ""
    package = packages.get(purl)
    if package is not None:
        return f"{package.name} {package.version}".strip()
    body = purl.split(":", 1)[-1].split("?", 1)[0]
    name, _, version = body.rpartition("@") if "@" in body else (body, "", "")
    return unquote(f"{name.rsplit('/', 1)[-1]} {version}".strip())


def packages_by_purl(result: ScanResult) -> dict[str, Package]:
    return {package.purl: package for package in result.packages}


def open_findings(findings: Iterable[Finding], target: Target | None = None) -> list[Finding]:
    """The findings that stand between a component and `ready`, worst first."""
    chosen = [
        f
        for f in findings
        if f.verdict not in (Verdict.READY, Verdict.NA) and (target is None or f.target is target)
    ]
    return sorted(chosen, key=lambda f: (f.verdict.rank, f.rule_id, str(f.target)))


def rule_ids(result: ScanResult) -> list[str]:
    """Every rule id any finding of the result names, sorted."""
    ids = {f.rule_id for f in all_findings(result)}
    ids |= {rule for c in result.components if c.plan for rule in c.plan.rule_ids}
    return sorted(ids)


def all_findings(result: ScanResult) -> list[Finding]:
    """Component findings, then the image config's."""
    return [f for c in result.components for f in c.findings] + list(result.image_findings)


@dataclass
class PlanGroup:
    """Components that take the same road, split by effort, reachable ones first."""

    path: str
    components: list[Component] = field(default_factory=list)

    @property
    def efforts(self) -> dict[str, int]:
        counts = Counter(c.plan.effort for c in self.components if c.plan)
        return {effort: counts[effort] for effort in EFFORT_ORDER if counts[effort]}

    @property
    def reachable(self) -> list[Component]:
        return [c for c in self.components if c.reachable]

    @property
    def unreachable(self) -> list[Component]:
        return [c for c in self.components if not c.reachable]


def plan_groups(components: Sequence[Component]) -> list[PlanGroup]:
    """Group components by migration path, in the order signatures/targets.json shows the
    roads, largest effort first inside."""
    groups: dict[str, PlanGroup] = {}
    for component in components:
        if component.plan is not None:
            path = component.plan.path
            groups.setdefault(path, PlanGroup(path)).components.append(component)

    def effort_key(c: Component) -> tuple[int, str]:
        effort = c.plan.effort if c.plan else "-"
        rank = EFFORT_ORDER.index(effort) if effort in EFFORT_ORDER else len(EFFORT_ORDER)
        return rank, c.path

    for group in groups.values():
        group.components.sort(key=effort_key)
    shown = sig.roads()[1]  # the roads as reports list them (signatures/targets.json)
    known = [groups[path] for path in shown if path in groups]
    return known + [g for path, g in sorted(groups.items()) if path not in shown]


def blockers_per_layer(result: ScanResult) -> dict[int, dict[Target, Counter[Verdict]]]:
    """Per layer and target: how many components from that layer are rework or blocked."""
    out: dict[int, dict[Target, Counter[Verdict]]] = {
        layer.index: {t: Counter() for t in targets_of(result)} for layer in result.image.layers
    }
    for component in result.components:
        if component.layer is None or component.layer not in out:
            continue
        for target, verdict in component.verdicts.items():
            if verdict in BLOCKING and target in out[component.layer]:
                out[component.layer][target][verdict] += 1
    return out


def package_verdicts(
    package: Package, owned: Sequence[Component], targets: Sequence[Target]
) -> dict[Target, Verdict]:
    """A package's verdict per target: the worst of the components it owns (n/a when it
    owns no judged code)."""
    judged = [c for c in owned if c.kind != "platform"]
    if not judged:
        return dict.fromkeys(targets, Verdict.NA)
    return {t: Verdict.worst(c.verdicts.get(t, Verdict.UNKNOWN) for c in judged) for t in targets}


def components_by_package(components: Iterable[Component]) -> dict[str, list[Component]]:
    out: dict[str, list[Component]] = {}
    for component in components:
        if component.package:
            out.setdefault(component.package, []).append(component)
    return out


def evidence_text(evidence: Evidence, component_path: str | None = None) -> str:
    """One line for one piece of evidence; the file, package and layer are left out
    when they are the component's own (`component_path`)."""
    e = evidence
    own = e.file == component_path
    if e.symbol and e.syscall is None and e.address is None and (own or e.layer is None):
        text = f"symbol {e.symbol}" if own else f"{e.file} · symbol {e.symbol}"  # most lines
    else:
        parts = [] if own else [e.file]
        if e.symbol:
            parts.append(f"symbol {e.symbol}")
        if e.syscall:
            parts.append(f"syscall {e.syscall}")
        if e.address is not None:
            parts.append(f"at {e.address:#x}")
        if not own and e.layer is not None:
            parts.append(f"layer {e.layer}")
        text = " · ".join(parts)
    return f"{text} ({e.detail})" if e.detail else text


@dataclass
class EvidenceGroup:
    """The evidence of a finding that sits in one file."""

    file: str
    package: str | None
    layer: int | None
    items: list[str] = field(default_factory=list)


def evidence_by_file(finding: Finding) -> list[EvidenceGroup]:
    """Group a finding's evidence by file: the symbols, syscalls or strings in each."""
    groups: dict[str, EvidenceGroup] = {}
    for e in finding.evidence:
        group = groups.setdefault(e.file, EvidenceGroup(e.file, e.package, e.layer))
        if e.symbol:
            item = e.symbol.split("@", 1)[0]
        elif e.syscall:
            item = e.syscall if e.address is None else f"{e.syscall}@{e.address:#x}"
        else:
            item = e.detail
        if item and item not in group.items:
            group.items.append(item)
    return list(groups.values())


CHAIN_ENDS = 3  # steps kept at each end of a shortened chain


def short_chain(chain: Sequence[ChainStep], ends: int = CHAIN_ENDS) -> str:
    """`chain_text`, with the middle of a long chain left out: `postgres → … → flock (libc.so.6)`
    keeps the first and last `ends` steps."""
    parts = chain_text(tuple(chain)).split(" → ")
    if len(parts) > 2 * ends + 1:
        parts = [*parts[:ends], "…", *parts[-ends:]]
    return " → ".join(parts)


def chain_links(chain: Sequence[ChainStep]) -> list[list[str]]:
    """The steps of a chain as the HTML report draws them: `[text, file]` where the step
    names its file (the program, or a function in another file than the step before),
    `[text]` otherwise. The text is what `chain_text` shows for the step; the file, the
    path the report can link to."""
    out: list[list[str]] = []
    before = None
    for step, text in zip(chain, chain_text(tuple(chain)).split(" → "), strict=True):
        names_file = not step.function or (step.file != before and text.endswith(")"))
        out.append([text, step.file] if names_file and text != "(indirect call)" else [text])
        before = step.file
    return out


def chain_rank(chain: Sequence[ChainStep]) -> tuple[bool, int]:
    """How readily a reader checks a chain, best first: one walked function by function
    before one through a library taken whole (graph/reach.py, WHOLE), then the shorter."""
    return any(step.function == WHOLE for step in chain), len(chain)


def shortest_chain(findings: Iterable[Finding]) -> tuple[ChainStep, ...]:
    """The best chain of the findings' evidence by `chain_rank` (the first of equal rank,
    in the findings' order)."""
    chains = (e.chain for f in findings for e in f.evidence if e.chain)
    return min(chains, key=chain_rank, default=())
