"""What changed between two scans: per target, the image's verdict and score, the
components that became more or less portable, and the findings that appeared,
disappeared or changed their evidence.

Components are matched by their graph id (their path); a finding by its component,
rule, target and verdict, so a finding whose verdict changes shows as one that
disappeared and one that appeared. A waived finding (portscan.waivers) is marked with
its reason; one waived on one side only is a change. Waived findings decide nothing,
so they never make a target worse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portscan.codec import encode
from portscan.model import Component, Finding, ScanResult, Target, Verdict
from portscan.report import view
from portscan.report.markdown import code_span

IMAGE_OWNER = "image"


@dataclass(frozen=True)
class FindingKey:
    owner: str  # component id, or "image" for the image config's findings
    rule_id: str
    target: Target
    verdict: Verdict


@dataclass
class FindingChange:
    key: FindingKey
    message: str
    evidence_added: list[str] = field(default_factory=list)
    evidence_removed: list[str] = field(default_factory=list)
    waived: str | None = None  # the waiver's reason (NEW's side; OLD's when it disappeared)
    waived_before: str | None = None  # changed findings: OLD's waiver reason


@dataclass
class ComponentChange:
    """A component whose verdict on a target differs (None: absent on that side)."""

    id: str
    path: str
    old: Verdict | None
    new: Verdict | None

    @property
    def direction(self) -> str:
        return _direction(self.old, self.new)


@dataclass
class TargetDiff:
    target: Target
    old_verdict: Verdict | None
    new_verdict: Verdict | None
    old_score: int | None
    new_score: int | None
    components: list[ComponentChange] = field(default_factory=list)
    appeared: list[FindingChange] = field(default_factory=list)
    disappeared: list[FindingChange] = field(default_factory=list)
    changed: list[FindingChange] = field(default_factory=list)

    @property
    def direction(self) -> str:
        """worse, better or same: by verdict, then by score."""
        by_verdict = _direction(self.old_verdict, self.new_verdict)
        if by_verdict != "same" or self.old_score is None or self.new_score is None:
            return by_verdict
        if self.new_score == self.old_score:
            return "same"
        return "better" if self.new_score > self.old_score else "worse"

    @property
    def empty(self) -> bool:
        return not (self.components or self.appeared or self.disappeared or self.changed) and (
            self.direction == "same"
        )


@dataclass
class ResultDiff:
    old: str  # reference (and digest) of each side
    new: str
    targets: list[TargetDiff]
    added: list[str] = field(default_factory=list)  # component paths
    removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed and all(t.empty for t in self.targets)

    @property
    def worse(self) -> bool:
        return any(t.direction == "worse" for t in self.targets)


def _direction(old: Verdict | None, new: Verdict | None) -> str:
    if old == new:
        return "same"
    if old is None:
        return "worse" if new is not None and new.rank < Verdict.READY.rank else "added"
    if new is None:
        return "better" if old.rank < Verdict.READY.rank else "removed"
    return "worse" if new.rank < old.rank else "better"


def _findings(result: ScanResult) -> dict[FindingKey, Finding]:
    out = {}
    for c in result.components:
        for f in c.findings:
            out[FindingKey(c.id, f.rule_id, f.target, f.verdict)] = f
    for f in result.image_findings:
        out[FindingKey(IMAGE_OWNER, f.rule_id, f.target, f.verdict)] = f
    return out


def _lines(finding: Finding) -> list[str]:
    return [view.evidence_text(e) for e in finding.evidence]


def _label(result: ScanResult) -> str:
    image = result.image
    return f"{image.reference} ({view.short_digest(image.digest)})"


def diff_results(old: ScanResult, new: ScanResult) -> ResultDiff:
    """Compare two scans; both are only read."""
    old_c = {c.id: c for c in old.components}
    new_c = {c.id: c for c in new.components}
    old_f, new_f = _findings(old), _findings(new)
    targets = [t for t in Target if t in old.targets or t in new.targets]
    out = ResultDiff(
        _label(old),
        _label(new),
        [],
        added=sorted(new_c[i].path for i in new_c.keys() - old_c.keys()),
        removed=sorted(old_c[i].path for i in old_c.keys() - new_c.keys()),
    )
    for target in targets:
        before, after = old.targets.get(target), new.targets.get(target)
        entry = TargetDiff(
            target,
            before.verdict if before else None,
            after.verdict if after else None,
            before.score if before else None,
            after.score if after else None,
        )
        entry.components = _component_changes(old_c, new_c, target)
        for key in sorted(new_f.keys() - old_f.keys(), key=_order):
            if key.target is target:
                found = new_f[key]
                entry.appeared.append(FindingChange(key, found.message, waived=found.waived))
        for key in sorted(old_f.keys() - new_f.keys(), key=_order):
            if key.target is target:
                found = old_f[key]
                entry.disappeared.append(FindingChange(key, found.message, waived=found.waived))
        for key in sorted(old_f.keys() & new_f.keys(), key=_order):
            if key.target is target:
                before_f, after_f = old_f[key], new_f[key]
                a, b = _lines(before_f), _lines(after_f)
                if a != b or before_f.waived != after_f.waived:
                    added = [line for line in b if line not in a]
                    removed = [line for line in a if line not in b]
                    entry.changed.append(
                        FindingChange(
                            key, after_f.message, added, removed, after_f.waived, before_f.waived
                        )
                    )
        out.targets.append(entry)
    return out


def _order(key: FindingKey) -> tuple[int, str, str]:
    return key.verdict.rank, key.owner, key.rule_id


def _component_changes(
    old: dict[str, Component], new: dict[str, Component], target: Target
) -> list[ComponentChange]:
    changes = []
    for cid in sorted(old.keys() | new.keys()):
        a, b = old.get(cid), new.get(cid)
        va = a.verdicts.get(target) if a else None
        vb = b.verdicts.get(target) if b else None
        if va != vb:
            changes.append(ComponentChange(cid, (b or a).path if (b or a) else cid, va, vb))
    return changes


def render_text(diff: ResultDiff, show_ready: bool = False) -> str:
    """A plain-text account, worst news first within each target."""
    lines = [f"old  {diff.old}", f"new  {diff.new}", ""]
    if diff.empty:
        return "\n".join([*lines, "no change in portability"]) + "\n"
    for path in diff.added:
        lines.append(f"+ component {path}")
    for path in diff.removed:
        lines.append(f"- component {path}")
    for t in diff.targets:
        lines.append("")
        lines.append(
            f"{t.target.value}: {_v(t.old_verdict)} {_s(t.old_score)} -> "
            f"{_v(t.new_verdict)} {_s(t.new_score)}  [{t.direction}]"
        )
        for c in t.components:
            lines.append(f"  {c.direction:<7} {c.path}: {_v(c.old)} -> {_v(c.new)}")
        for sign, items in (("+", t.appeared), ("-", t.disappeared)):
            shown = [f for f in items if show_ready or f.key.verdict is not Verdict.READY]
            for f in shown:
                owner = f.key.owner.removeprefix("file:")
                lines.append(
                    f"  {sign} {f.key.rule_id} {f.key.verdict.value:<7} {owner}: {f.message}"
                    + (f" [waived: {f.waived}]" if f.waived is not None else "")
                )
            if len(items) > len(shown):
                lines.append(f"  {sign} {len(items) - len(shown)} ready finding(s)")
        for f in t.changed:
            owner = f.key.owner.removeprefix("file:")
            lines.append(f"  ~ {f.key.rule_id} {f.key.verdict.value:<7} {owner}{_waiver_change(f)}")
            lines += [f"      + {e}" for e in f.evidence_added]
            lines += [f"      - {e}" for e in f.evidence_removed]
    return "\n".join(lines) + "\n"


def _waiver_change(change: FindingChange) -> str:
    """` [waived: REASON]`, ` [now waived: ...]` or ` [no longer waived: ...]`."""
    if change.waived == change.waived_before:
        return f" [waived: {change.waived}]" if change.waived is not None else ""
    if change.waived is None:
        return f" [no longer waived: {change.waived_before}]"
    return f" [now waived: {change.waived}]"


def _v(verdict: Verdict | None) -> str:
    return verdict.value if verdict else "-"


def _s(score: int | None) -> str:
    return f"({score})" if score is not None else ""


def to_dict(diff: ResultDiff) -> dict[str, Any]:
    doc = encode(diff)
    for entry, target in zip(doc["targets"], diff.targets, strict=True):
        entry["direction"] = target.direction
        for change, component in zip(entry["components"], target.components, strict=True):
            change["direction"] = component.direction
    doc["worse"] = diff.worse
    return doc


def render_json(diff: ResultDiff) -> str:
    return json.dumps(to_dict(diff), indent=2) + "\n"


def render_markdown(diff: ResultDiff) -> str:
    """A pull-request comment: one table row per target, then what moved."""
    lines = [
        "### portscan diff",
        "",
        f"{code_span(diff.old)} → {code_span(diff.new)}",
        "",
        "| target | before | after | change | findings +/- |",
        "|---|---|---|---|---:|",
    ]
    for t in diff.targets:
        lines.append(
            f"| {t.target.value} | {_v(t.old_verdict)} {_s(t.old_score)} | "
            f"{_v(t.new_verdict)} {_s(t.new_score)} | {t.direction} | "
            f"+{len(t.appeared)} / -{len(t.disappeared)} |"
        )
    if diff.added or diff.removed:
        lines.append("")
        lines += [f"- added {code_span(p)}" for p in diff.added]
        lines += [f"- removed {code_span(p)}" for p in diff.removed]
    waived = [
        f"- {sign} {code_span(f.key.rule_id)} {code_span(f.key.owner.removeprefix('file:'))} "
        f"on {t.target.value}{_waiver_change(f) if sign == '~' else f' [waived: {f.waived}]'}"
        for t in diff.targets
        for sign, items in (("+", t.appeared), ("-", t.disappeared), ("~", t.changed))
        for f in items
        if f.waived is not None or f.waived_before is not None
    ]
    if waived:
        lines += ["", "**Waived** (not counted for verdicts or gates)", "", *waived]
    return "\n".join(lines) + "\n"
