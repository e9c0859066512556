"""The fleet view of an audit: every image's verdict per target, the blockers that
recur across images, the layers images share, the best migration candidates, and what
changed since the previous audit. Plain data built from store rows; `to_dict` is its
JSON form (docs/registry-audit.md) and report/ renders it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portscan.audit.discover import Skipped
from portscan.audit.store import Audit, AuditImage, ImageLayer
from portscan.knowledge import rules
from portscan.model import ScanResult, Target, Verdict
from portscan.waivers import waived_groups

FLEET_SCHEMA_VERSION = "2.2"  # 2.0: skipped {name, reason}; 2.1: efforts, trend; 2.2: waived, base
MAX_CANDIDATES = 10
_CANDIDATE_VERDICTS = (Verdict.READY, Verdict.SHIM, Verdict.REWORK)
EFFORTS = ("S", "M", "L")  # a component's plan effort, smallest first ("-": none needed)
UNKNOWN_EFFORT = "?"  # the stored summary predates efforts


def plan_efforts(result: ScanResult) -> dict[str, int]:
    """How many components of the judged scope (those the entrypoint reaches, or every
    judged one when it reaches none, as score.summarise judges) need each plan effort."""
    judged = [c for c in result.components if c.kind != "platform"]
    scope = [c for c in judged if c.reachable] or judged
    counts = Counter(c.plan.effort for c in scope if c.plan and c.plan.effort in EFFORTS)
    return {effort: counts[effort] for effort in EFFORTS if counts[effort]}


def largest_effort(efforts: Mapping[str, int] | None) -> str:
    """L, M or S; `-` when nothing needs work; `?` when not known."""
    if efforts is None:
        return UNKNOWN_EFFORT
    return next((e for e in reversed(EFFORTS) if efforts.get(e)), "-")


def image_summary(result: ScanResult) -> dict[str, Any]:
    """What the fleet view needs of one scan result (stored beside the full JSON): with
    `--waivers`, the findings waived and why; with `--base`, the base's share."""
    image = result.image
    base = result.base
    return {
        "reference": image.reference,
        "platform": str(image.platform),
        "size": image.size,
        "files": len(result.files),
        "components": len(result.components),
        "runtimes": sorted({b.runtime.name for b in result.binaries.values() if b.runtime}),
        "efforts": plan_efforts(result),
        "targets": {
            str(target): {"verdict": str(summary.verdict), "score": summary.score}
            for target, summary in sorted(result.targets.items())
        },
        "blockers": [
            {
                "rule_id": finding.rule_id,
                "target": str(finding.target),
                "verdict": str(finding.verdict),
                "message": finding.message,
            }
            for summary in result.targets.values()
            for finding in summary.blockers
        ],
        "waived": [
            {
                "rule_id": group.rule_id,
                "path": group.path,
                "targets": [str(t) for t in group.targets],
                "reason": group.reason,
            }
            for group in waived_groups(result)
        ],
        "base": None
        if base is None
        else {"reference": base.reference, "layers": base.layers, "components": base.components},
    }


@dataclass
class FleetImage:
    """One image of the audit (one manifest digest), under all the names it has."""

    digest: str | None
    names: list[str]  # repository:tag
    status: str  # scanned | reused | failed
    error: str | None = None
    reference: str = ""
    platform: str = ""
    size: int = 0
    runtimes: list[str] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)  # target -> verdict
    scores: dict[str, int] = field(default_factory=dict)
    blockers: list[dict[str, str]] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # layer digests, base first
    efforts: dict[str, int] | None = None  # plan effort -> components (None: not stored)
    waived: list[dict[str, Any]] = field(default_factory=list)  # rule_id, path, targets, reason
    base: dict[str, Any] | None = None  # --base: reference, layers, components

    @property
    def effort(self) -> str:
        return largest_effort(self.efforts)


@dataclass
class RecurringBlocker:
    """A rule that blocks (or forces rework of) an image for a target, across images."""

    rule_id: str
    target: str
    verdict: str
    message: str  # the rule's title
    images: list[str]  # digests

    @property
    def count(self) -> int:
        return len(self.images)


@dataclass
class WaivedFinding:
    """Findings a waiver accepted (one rule on one path, for one reason), across images:
    shown, never counted for verdicts, blockers or candidates."""

    rule_id: str
    path: str
    reason: str
    targets: list[str]
    images: list[str]  # digests

    @property
    def count(self) -> int:
        return len(self.images)


@dataclass
class SharedLayer:
    """A layer more than one image is built on (a shared base)."""

    digest: str
    size: int
    created_by: str
    images: list[str]  # digests


@dataclass
class Candidate:
    """An image that can move, ranked by effort: its largest plan effort (none, S, M, L,
    unknown), then how many components need that much, then its best target's verdict
    and score."""

    digest: str
    names: list[str]
    target: str
    verdict: str
    score: int
    effort: str = UNKNOWN_EFFORT  # largest_effort
    efforts: dict[str, int] = field(default_factory=dict)


@dataclass
class TrendPoint:
    """How many images got each verdict per target in one audit (an image counted once
    under all its names; failed images apart)."""

    audit_id: int
    images: int
    failed: int
    verdicts: dict[str, dict[str, int]]  # target -> verdict -> images


@dataclass
class Change:
    """What differs for one repository:tag from the previous audit.

    kind: `added`, `removed`, `updated` (another digest) or `verdict` (same digest,
    other verdicts: the analysis or the signatures changed)."""

    name: str
    kind: str
    digest_before: str | None = None
    digest_after: str | None = None
    verdicts_before: dict[str, str] = field(default_factory=dict)
    verdicts_after: dict[str, str] = field(default_factory=dict)


@dataclass
class FleetResult:
    """The outcome of one audit of a registry."""

    registry: str
    selection: dict[str, Any]
    audit_id: int
    started: str
    finished: str | None
    previous_audit_id: int | None
    images: list[FleetImage]
    blockers: list[RecurringBlocker]
    shared_layers: list[SharedLayer]
    candidates: list[Candidate]
    changes: list[Change]
    trend: list[TrendPoint] = field(default_factory=list)  # the previous audit, then this one
    waived: list[WaivedFinding] = field(default_factory=list)  # --waivers, across images
    skipped: list[Skipped] = field(default_factory=list)  # left out, each with its reason
    run: dict[str, Any] = field(default_factory=dict)  # counters of the run that finished it

    @property
    def failed(self) -> list[FleetImage]:
        return [image for image in self.images if image.status == "failed"]


def _fleet_images(
    rows: Sequence[AuditImage],
    summaries: Mapping[str, dict[str, Any]],
    layers: Mapping[str, list[ImageLayer]],
) -> list[FleetImage]:
    by_digest: dict[str, FleetImage] = {}
    images: list[FleetImage] = []
    for row in rows:
        name = f"{row.repository}:{row.tag}"
        key = row.digest if row.status != "failed" and row.digest else f"failed:{name}"
        if key in by_digest:
            by_digest[key].names.append(name)
            continue
        summary = summaries.get(row.digest or "", {})
        image = FleetImage(
            digest=row.digest,
            names=[name],
            status=row.status,
            error=row.error,
            reference=summary.get("reference", ""),
            platform=summary.get("platform", ""),
            size=int(summary.get("size", 0)),
            runtimes=list(summary.get("runtimes", [])),
            verdicts=dict(row.verdicts),
            scores={t: int(v["score"]) for t, v in (summary.get("targets") or {}).items()},
            blockers=list(summary.get("blockers", [])),
            layers=[layer.digest for layer in layers.get(row.digest or "", [])],
            efforts=dict(summary["efforts"]) if "efforts" in summary else None,
            waived=list(summary.get("waived", [])),
            base=summary.get("base"),
        )
        by_digest[key] = image
        images.append(image)
    return images


def recurring_blockers(images: Sequence[FleetImage]) -> list[RecurringBlocker]:
    """Blockers by (rule, target), most images first."""
    groups: dict[tuple[str, str], RecurringBlocker] = {}
    for image in images:
        for blocker in image.blockers:
            key = (blocker["rule_id"], blocker["target"])
            group = groups.setdefault(
                key,
                RecurringBlocker(blocker["rule_id"], blocker["target"], blocker["verdict"], "", []),
            )
            if image.digest and image.digest not in group.images:
                group.images.append(image.digest)
    for group in groups.values():
        group.message = _rule_title(group.rule_id)
    return sorted(groups.values(), key=lambda g: (-g.count, g.rule_id, g.target))


def waived_findings(images: Sequence[FleetImage]) -> list[WaivedFinding]:
    """The waived findings by (rule, path, reason), most images first."""
    groups: dict[tuple[str, str, str], WaivedFinding] = {}
    for image in images:
        for entry in image.waived:
            key = (entry["rule_id"], entry["path"], entry["reason"])
            group = groups.setdefault(key, WaivedFinding(*key, [], []))
            group.targets += [t for t in entry["targets"] if t not in group.targets]
            if image.digest and image.digest not in group.images:
                group.images.append(image.digest)
    return sorted(groups.values(), key=lambda g: (-g.count, g.rule_id, g.path))


def _rule_title(rule_id: str) -> str:
    try:
        return rules.get_rule(rule_id).title
    except rules.UnknownRuleError:
        return ""


def shared_layers(
    images: Sequence[FleetImage], layers: Mapping[str, list[ImageLayer]]
) -> list[SharedLayer]:
    """Layers used by two images or more, most shared (then largest) first."""
    users: dict[str, SharedLayer] = {}
    for image in images:
        for layer in layers.get(image.digest or "", []):
            shared = users.setdefault(
                layer.digest, SharedLayer(layer.digest, layer.size, layer.created_by, [])
            )
            if image.digest not in shared.images:
                shared.images.append(image.digest or "")
    common = [s for s in users.values() if len(s.images) > 1]
    return sorted(common, key=lambda s: (-len(s.images), -s.size, s.digest))


def _target_order(target: str) -> int:
    names = [str(t) for t in Target]
    return names.index(target) if target in names else len(names)


_EFFORT_RANK = {"-": 0, **{e: i + 1 for i, e in enumerate(EFFORTS)}, UNKNOWN_EFFORT: 9}


def candidates(images: Sequence[FleetImage], limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """Images whose best target is `ready`, `shim` or `rework`, least effort first."""
    ranked = []
    for image in images:
        if not image.digest or not image.verdicts:
            continue
        order = sorted(image.verdicts, key=_target_order)  # on a tie, the earlier target
        target = max(order, key=lambda t: (Verdict(image.verdicts[t]).rank, image.scores.get(t, 0)))
        verdict = Verdict(image.verdicts[target])
        if verdict in _CANDIDATE_VERDICTS:
            ranked.append(
                Candidate(
                    image.digest,
                    image.names,
                    target,
                    str(verdict),
                    image.scores.get(target, 0),
                    image.effort,
                    dict(image.efforts or {}),
                )
            )

    def key(c: Candidate) -> tuple[int, int, int, int, list[str]]:
        heaviest = c.efforts.get(c.effort, 0)
        return _EFFORT_RANK[c.effort], heaviest, -Verdict(c.verdict).rank, -c.score, c.names

    ranked.sort(key=key)
    return ranked[:limit]


def trend_point(audit_id: int, rows: Sequence[AuditImage]) -> TrendPoint:
    """The verdict counts of one audit's rows."""
    seen: set[str] = set()
    counts: dict[str, Counter[str]] = {}
    images = failed = 0
    for row in rows:
        if row.status == "failed" or not row.digest:
            failed += 1
            continue
        if row.digest in seen:
            continue
        seen.add(row.digest)
        images += 1
        for target, verdict in row.verdicts.items():
            counts.setdefault(target, Counter())[verdict] += 1
    order = [str(v) for v in Verdict]
    verdicts = {
        t: {v: counts[t][v] for v in order if counts[t][v]}
        for t in sorted(counts, key=_target_order)
    }
    return TrendPoint(audit_id, images, failed, verdicts)


def changes(previous: Sequence[AuditImage], current: Sequence[AuditImage]) -> list[Change]:
    """Per repository:tag, what differs between two audits' findings."""
    before = {f"{r.repository}:{r.tag}": r for r in previous}
    after = {f"{r.repository}:{r.tag}": r for r in current}
    found: list[Change] = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None and new is not None:
            found.append(Change(name, "added", None, new.digest, {}, dict(new.verdicts)))
        elif new is None and old is not None:
            found.append(Change(name, "removed", old.digest, None, dict(old.verdicts), {}))
        elif old is not None and new is not None:
            kind = "updated" if old.digest != new.digest else "verdict"
            if kind == "updated" or old.verdicts != new.verdicts:
                found.append(
                    Change(
                        name, kind, old.digest, new.digest, dict(old.verdicts), dict(new.verdicts)
                    )
                )
    return found


def build_fleet(
    audit: Audit,
    rows: Sequence[AuditImage],
    summaries: Mapping[str, dict[str, Any]],
    layers: Mapping[str, list[ImageLayer]],
    previous: tuple[int, Sequence[AuditImage]] | None = None,
    skipped: Sequence[Skipped] = (),
    run: Mapping[str, Any] | None = None,
) -> FleetResult:
    """The fleet view of `audit` from its rows, the image summaries and layers by
    digest, and the previous audit's id and rows, if there is one."""
    images = _fleet_images(rows, summaries, layers)
    return FleetResult(
        registry=audit.registry,
        selection=audit.selection,
        audit_id=audit.id,
        started=audit.started,
        finished=audit.finished,
        previous_audit_id=previous[0] if previous else None,
        images=images,
        blockers=recurring_blockers(images),
        shared_layers=shared_layers(images, layers),
        candidates=candidates(images),
        changes=changes(previous[1], rows) if previous else [],
        trend=[*([trend_point(*previous)] if previous else []), trend_point(audit.id, rows)],
        skipped=list(skipped),
        run=dict(run or {}),
        waived=waived_findings(images),
    )


def to_dict(fleet: FleetResult) -> dict[str, Any]:
    """The JSON form of a fleet result."""
    doc = dataclasses.asdict(fleet)
    doc["schema_version"] = FLEET_SCHEMA_VERSION
    for blocker, data in zip(fleet.blockers, doc["blockers"], strict=True):
        data["count"] = blocker.count
    for waived, data in zip(fleet.waived, doc["waived"], strict=True):
        data["count"] = waived.count
    return doc


@dataclass
class ImageRecord:
    """One image of the audit as it completes (what `--format jsonl` prints)."""

    digest: str | None
    names: list[str]
    status: str  # scanned | reused | failed
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
