"""Waivers and exclusions: findings a team has accepted, paths it does not judge.

A waiver file (`--waivers FILE`, TOML or JSON, docs/configuration.md) lists entries of
`rule` (an id like PS618 or a rule's name), `reason`, and optionally `path` (a glob on
the component's path; image-config findings have the path `(image config)`), `target`
and `expires` (a date; an expired waiver is an error, so acceptance is renewed, never
forgotten). A waived finding stays in the result with `waived` set to the reason, and
counts for no verdict, score, blocker or gate: verdicts are computed as if it were not
there. `--exclude GLOB` drops the components whose path matches; the result says so.
`--base IMAGE` judges what an image adds on top of its base: the components of the
layers the image shares with the base are summarised apart and count for no verdict.

The step sits between score and scan: `judge` replaces `finish_components` + `summarise`.
`rejudge` applies a waiver file to a saved result (`portscan report`, `portscan diff`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from portscan.errors import UsageError
from portscan.knowledge.rules import all_rules
from portscan.model import (
    BaseImage,
    Component,
    Finding,
    ImageMeta,
    LayerDescriptor,
    LayerResult,
    ProgressFn,
    ScanResult,
    Target,
    TargetSummary,
)
from portscan.sources import SourceOptions, open_image
from portscan.sources.base import BlobImageSource
from portscan.sources.refs import parse_reference

if TYPE_CHECKING:  # the graph and scoring load when a verdict is made, not to read waivers
    from portscan.graph.digraph import DiGraph

IMAGE_CONFIG_PATH = "(image config)"
_KEYS = frozenset({"rule", "reason", "path", "target", "expires"})


@dataclass(frozen=True)
class Waiver:
    """One accepted finding pattern; `number` is its place in the file (from 1)."""

    number: int
    rule_id: str
    reason: str
    path: str = "*"
    target: Target | None = None
    expires: str | None = None  # ISO date

    @property
    def label(self) -> str:
        on = f" on {self.target.value}" if self.target else ""
        return f"waiver {self.number} ({self.rule_id} {self.path}{on})"

    def matches(self, finding: Finding, path: str) -> bool:
        return (
            finding.rule_id == self.rule_id
            and (self.target is None or finding.target is self.target)
            and fnmatch.fnmatchcase(path, self.path)
        )


def _rule_id(text: str, where: str) -> str:
    wanted = text.strip()
    for rule in all_rules():
        if wanted.upper() == rule.id or wanted == rule.name:
            return rule.id
    raise UsageError(f"{where}: rule: no rule {text!r}", "`portscan rules` lists ids and names")


def _date(value: Any, where: str) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise UsageError(f"{where}: expires: {value!r} is not a date (YYYY-MM-DD)") from None


def _entry(raw: Any, number: int, where: str, today: dt.date) -> Waiver:
    here = f"{where}: waiver {number}"
    if not isinstance(raw, Mapping):
        raise UsageError(f"{here}: not a table of rule, reason, path, target, expires")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise UsageError(f"{here}: unknown key {unknown[0]!r}", f"keys: {', '.join(sorted(_KEYS))}")
    for key in ("rule", "reason"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise UsageError(f"{here}: {key} is required (a non-empty string)")
    path = raw.get("path", "*")
    if not isinstance(path, str) or not path:
        raise UsageError(f"{here}: path must be a non-empty glob")
    target = None
    if "target" in raw:
        try:
            target = Target(raw["target"])
        except ValueError:
            choices = ", ".join(t.value for t in Target)
            raise UsageError(f"{here}: target {raw['target']!r} is not one of {choices}") from None
    expires = _date(raw["expires"], here) if "expires" in raw else None
    waiver = Waiver(
        number, _rule_id(raw["rule"], here), raw["reason"].strip(), path, target, expires
    )
    if expires is not None and dt.date.fromisoformat(expires) < today:
        raise UsageError(
            f"{where}: {waiver.label} expired on {expires}", "renew its expires date or remove it"
        )
    return waiver


def load_waivers(path: Path, today: dt.date | None = None) -> tuple[Waiver, ...]:
    """The waivers of a TOML (`[[waiver]]` tables) or JSON (a list, or `{"waivers": [...]}`)
    file; a UsageError naming the file and entry for anything wrong or expired."""
    today = today or dt.date.today()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read waiver file {path}: {exc}") from None
    entries: Any
    if path.suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not valid JSON: {exc}") from None
        entries = doc.get("waivers") if isinstance(doc, dict) else doc
    else:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML: {exc}") from None
        unknown = sorted(set(doc) - {"waiver"})
        if unknown:
            raise UsageError(f"{path}: unknown key {unknown[0]!r}", "entries are [[waiver]] tables")
        entries = doc.get("waiver", [])
    if not isinstance(entries, list):
        raise UsageError(f"{path}: the waivers must be a list")
    return tuple(_entry(raw, n, str(path), today) for n, raw in enumerate(entries, 1))


def exclude(components: list[Component], globs: Sequence[str]) -> list[str]:
    """Drop (in place) the components whose path matches a glob; one warning per glob."""
    if not globs:
        return []
    notes = []
    for glob in globs:
        dropped = [c for c in components if fnmatch.fnmatchcase(c.path, glob)]
        if dropped:
            shown = ", ".join(c.path for c in dropped[:3])
            more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
            notes.append(f"--exclude {glob}: not judged: {shown}{more}")
        else:
            notes.append(f"--exclude {glob}: matched no component")
        components[:] = [c for c in components if c not in dropped]
    return notes


def apply_waivers(
    components: Iterable[Component], image_findings: list[Finding], waivers: Sequence[Waiver]
) -> list[str]:
    """Mark (with copies) every finding a waiver matches; a warning per unused waiver."""
    if not waivers:
        return []
    used: set[int] = set()

    def mark(findings: list[Finding], path: str) -> None:
        for index, finding in enumerate(findings):
            waiver = next((w for w in waivers if w.matches(finding, path)), None)
            if waiver is not None:
                used.add(waiver.number)
                findings[index] = dataclasses.replace(finding, waived=waiver.reason)

    for component in components:
        mark(component.findings, component.path)
    mark(image_findings, IMAGE_CONFIG_PATH)
    return [f"{w.label} matched no finding" for w in waivers if w.number not in used]


def _drain(blob: BinaryIO, descriptor: LayerDescriptor, advance: ProgressFn | None) -> LayerResult:
    """A layer reader that only consumes the blob (a base image's layers are not needed)."""
    while blob.read(1 << 20):
        pass
    return LayerResult(descriptor.digest)


def read_base(reference: str, image: ImageMeta, options: SourceOptions) -> tuple[BaseImage, str]:
    """The image `--base` names, and how many of `image`'s first layers are its (by
    their uncompressed digests, the config's diff_ids), with a note saying so."""
    source = open_image(parse_reference(reference), options)
    with source:
        if isinstance(source, BlobImageSource):
            meta = source.meta  # known up front: no layer is fetched
        else:
            meta, _ = source.read_layers(_drain)
    ours, theirs = image.config.diff_ids, meta.config.diff_ids
    shared = 0
    while shared < min(len(ours), len(theirs)) and ours[shared] == theirs[shared]:
        shared += 1
    base = BaseImage(meta.reference, meta.digest, shared)
    if shared == 0:
        note = f"--base {reference}: the image does not start with its layers; all is judged"
    elif shared < len(theirs):
        note = (
            f"--base {reference}: the image starts with {shared} of its {len(theirs)} layers; "
            f"layers 0-{shared - 1} are judged apart"
        )
    else:
        note = f"--base {reference}: layers 0-{shared - 1} are the base's, judged apart"
    return base, note


def judge(
    components: Sequence[Component],
    image_findings: Sequence[Finding],
    graph: DiGraph,
    base: BaseImage | None = None,
) -> dict[Target, TargetSummary]:
    """Verdicts, plans and the image's summary as `score` makes them, from the findings
    nobody waived; the waived ones are kept in the components, marked. With `base`, the
    summary judges the components of the layers above it, and the base's components
    are summarised apart in `base.targets` (verdicts still flow from a base library to
    the program that loads it)."""
    from portscan.score import finish_components, summarise

    kept = {c.id: c.findings for c in components}
    for component in components:
        component.findings = [f for f in component.findings if f.waived is None]
    try:
        finish_components(components, graph)
        config = [f for f in image_findings if f.waived is None]
        if base is None or base.layers == 0:
            return summarise(components, config, graph)
        below = [c for c in components if c.layer is not None and c.layer < base.layers]
        above = [c for c in components if c not in below]
        base.components = len(below)
        base.targets = summarise(below, [], graph)
        return summarise(above, config, graph)
    finally:
        for component in components:
            component.findings = kept[component.id]


def rejudge(result: ScanResult, waivers: Sequence[Waiver]) -> ScanResult:
    """`result` (a saved one), judged again in place with `waivers` added to those it
    was scanned with, and returned: the findings they match are marked, and verdicts,
    scores, plans, blockers and the base's summary are worked out again from the
    result's own dependency graph, as the scan would have. Unused waivers are warnings."""
    if not waivers:
        return result
    from portscan.graph.build import judged_graph
    from portscan.graph.digraph import DiGraph

    graph = DiGraph()
    graph.add_nodes_from(c.id for c in result.components)
    graph.add_edges_from((d.source, d.target, {"kind": d.kind}) for d in result.dependencies)
    result.warnings += apply_waivers(result.components, result.image_findings, waivers)
    for component in result.components:
        component.inherited = {}  # flow_verdicts fills it afresh
    judged = judged_graph(graph, result.binaries)
    result.targets = judge(result.components, result.image_findings, judged, result.base)
    return result


@dataclass(frozen=True)
class WaivedGroup:
    """Waived findings of one rule on one path for one reason, across targets."""

    rule_id: str
    path: str
    reason: str
    targets: tuple[Target, ...]


def waived_groups(result: ScanResult) -> list[WaivedGroup]:
    """The findings a waiver file accepted, grouped by rule, path and reason."""
    found: dict[tuple[str, str, str], list[Target]] = {}
    pairs = [(f, c.path) for c in result.components for f in c.findings]
    pairs += [(f, "(image config)") for f in result.image_findings]
    for finding, path in pairs:
        if finding.waived is not None:
            targets = found.setdefault((finding.rule_id, path, finding.waived), [])
            if finding.target not in targets:
                targets.append(finding.target)
    return [WaivedGroup(r, p, why, tuple(ts)) for (r, p, why), ts in found.items()]
