"""Waivers and exclusions: findings a team has accepted, paths it does not judge.

A waiver file (`--waivers FILE`, TOML or JSON, docs/configuration.md) lists entries of
`rule` (an id like PS618 or a rule's name), `reason`, and optionally `path` (a glob on
the component's path; image-config findings have the path `(image config)`), `target`
and `expires` (a date; an expired waiver is an error, so acceptance is renewed, never
forgotten). A waived finding stays in the result with `waived` set to the reason, and
counts for no verdict, score, blocker or gate: verdicts are computed as if it were not
there. `--exclude GLOB` drops the components whose path matches; the result says so.

The step sits between score and scan: `judge` replaces `finish_components` + `summarise`.
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
from typing import Any

import networkx as nx

from portscan.errors import UsageError
from portscan.knowledge.rules import all_rules
from portscan.model import Component, Finding, Target, TargetSummary
from portscan.score import finish_components, summarise

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


def judge(
    components: Sequence[Component], image_findings: Sequence[Finding], graph: nx.DiGraph
) -> dict[Target, TargetSummary]:
    """Verdicts, plans and the image's summary as `score` makes them, from the findings
    nobody waived; the waived ones are kept in the components, marked."""
    kept = {c.id: c.findings for c in components}
    for component in components:
        component.findings = [f for f in component.findings if f.waived is None]
    try:
        finish_components(components, graph)
        return summarise(components, [f for f in image_findings if f.waived is None], graph)
    finally:
        for component in components:
            component.findings = kept[component.id]
