"""The answer first: per target, one sentence a manager can repeat, the reasons behind
every verdict short of ready (shim and unknown included), and what stands in the way
grouped by capability across targets instead of once per target.

Pure functions over a ScanResult; the HTML, Markdown and terminal renderers lay them out.
The scope is the one score.summarise judges: the components the entrypoint reaches, or
every judged component when it reaches none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from portscan.knowledge import rules
from portscan.knowledge import tables as sig
from portscan.model import IMAGE, ChainStep, Component, Finding, ScanResult, Target, Verdict
from portscan.report import view
from portscan.score import deciding, design_rank

NAMES_SHOWN = 4  # component names in a sentence
CAUSES_SHOWN = 3  # capabilities in a sentence
DETAIL_CHARS = 220


@dataclass
class Reason:
    """Why some components of the scope got `verdict` on one target: one rule."""

    verdict: Verdict
    title: str
    detail: str
    rule_ids: list[str] = field(default_factory=list)  # none when the verdict is inherited
    components: list[str] = field(default_factory=list)  # paths

    def add(self, rule_id: str, path: str) -> None:
        if rule_id and rule_id not in self.rule_ids:
            self.rule_ids.append(rule_id)
        if path not in self.components:
            self.components.append(path)


@dataclass
class Answer:
    """One target's verdict, the sentence that says it and the reasons behind it."""

    target: Target
    verdict: Verdict
    score: int
    sentence: str
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class Obstacle:
    """One capability that makes components rework or blocked, on every target it does."""

    key: str
    title: str
    rule_ids: list[str] = field(default_factory=list)
    verdicts: dict[Target, Verdict] = field(default_factory=dict)
    components: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # symbols, syscalls, files
    chain: tuple[ChainStep, ...] = ()  # its evidence's best chain (view.chain_rank)

    @property
    def worst(self) -> Verdict:
        return Verdict.worst(self.verdicts.values())


def scope(result: ScanResult) -> tuple[list[Component], bool]:
    """The components the verdict rests on, and whether they are the reached ones."""
    judged = [c for c in result.components if c.kind != "platform"]
    reached = [c for c in judged if c.reachable]
    return (reached, True) if reached else (judged, False)


def name(path: str) -> str:
    """A component's short name: the last part of its path."""
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def _names(paths: Sequence[str]) -> str:
    shown = [name(p) for p in paths[:NAMES_SHOWN]]
    more = len(paths) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _title(finding: Finding) -> str:
    """What the finding is about, short: its capability's title, else its rule's."""
    if finding.capability is not None:
        info = sig.capability_map().capabilities.get(finding.capability)
        if info is not None:
            return info.title
    try:
        return rules.get_rule(finding.rule_id).title
    except rules.UnknownRuleError:
        return finding.rule_id


def _detail(finding: Finding) -> str:
    """How the target treats it: the rule's own advice for runtimes and the like, whose
    message only names what was found; the message otherwise."""
    text = finding.message
    if finding.capability is None:
        try:
            support = rules.get_rule(finding.rule_id).support.get(finding.target)
        except rules.UnknownRuleError:
            support = None
        if support is not None and support.verdict is finding.verdict and support.how:
            text = f"{finding.message}. {support.how}"
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1].rstrip() + "…"


def reasons(result: ScanResult, target: Target) -> list[Reason]:
    """Why each component of the scope is not ready on `target`, one entry per verdict
    and capability (or rule): worst first, then the design before the details (as the
    top blockers, score.design_rank), then the one holding most components."""
    components, _ = scope(result)
    found: dict[tuple[Verdict, str], Reason] = {}
    for c in components:
        verdict = c.verdicts.get(target, Verdict.UNKNOWN)
        if verdict in (Verdict.READY, Verdict.NA):
            continue
        own = [f for f in deciding(c, target) if f.verdict is verdict]
        for f in own:
            key = (verdict, f.capability or f.rule_id)
            found.setdefault(key, Reason(verdict, _title(f), _detail(f))).add(f.rule_id, c.path)
        if not own:
            sources = [i.removeprefix("file:") for i in c.inherited.get(target, [])]
            detail = (
                f"It loads {', '.join(sources)}, which is {verdict.value} on {target.value}."
                if sources
                else "No finding of its own decides it."
            )
            key = (verdict, "inherited:" + ",".join(sources))
            title = "inherited from what it loads" if sources else "no deciding finding"
            found.setdefault(key, Reason(verdict, title, detail)).add("", c.path)
    for f in result.image_findings:
        if f.target is target and f.verdict not in (Verdict.READY, Verdict.NA):
            key = (f.verdict, f.capability or f.rule_id)
            reason = found.setdefault(key, Reason(f.verdict, _title(f), _detail(f)))
            reason.add(f.rule_id, "image config")
    return sorted(
        found.values(),
        key=lambda r: (r.verdict.rank, design_rank(r.rule_ids), -len(r.components), r.title),
    )


def short_title(title: str) -> str:
    """'Asynchronous signals (sigaction, kill)' -> 'asynchronous signals'."""
    head = title.split(" (", 1)[0]
    lower = " " in head and head[1:2].islower()
    return head[:1].lower() + head[1:] if lower else head


def entry_ids(result: ScanResult) -> set[str]:
    """The components the image's entrypoint or command starts directly."""
    return {d.target for d in result.dependencies if d.source == IMAGE and d.kind != "package"}


def _effort(components: Sequence[Component]) -> str | None:
    efforts = {c.plan.effort for c in components if c.plan}
    return next((e for e in view.EFFORT_ORDER if e in efforts and e != "-"), None)


def sentence(result: ScanResult, target: Target, found: Sequence[Reason]) -> str:
    """One sentence for `target`: the verdict, how many components hold it back and
    which, what holds them back, the largest effort, and the fallback when blocked."""
    summary = result.targets[target]
    components, reached = scope(result)
    where = "the entrypoint reaches" if reached else "in the image (no entrypoint reaches any)"
    head = f"{target.value}: {summary.verdict.value}"
    count = f"{len(components)} component{'s' if len(components) != 1 else ''}"
    if summary.verdict is Verdict.NA:
        return f"{head}: the image holds no code to judge."
    if summary.verdict is Verdict.READY:
        verb = "builds for it as it is" if len(components) == 1 else "build for it as they are"
        return f"{head}: the {count} {where} {verb}."
    entry = {c.path for c in components if c.id in entry_ids(result)}
    behind = [c for c in components if c.verdicts.get(target) not in (Verdict.READY, Verdict.NA)]
    behind.sort(key=lambda c: (c.path not in entry, c.path))  # what the entrypoint starts first
    worst = [r for r in found if r.verdict is summary.verdict]
    # what the started program itself needs first, its design before its details
    # (as the top blockers), then what holds most components
    worst.sort(
        key=lambda r: (
            not entry & set(r.components),
            design_rank(r.rule_ids),
            -len(r.components),
            r.title,
        )
    )
    causes = list(dict.fromkeys(short_title(r.title) for r in worst))
    if len(behind) == len(components):
        held = "the only component" if len(behind) == 1 else f"all {count}"
    else:
        held = f"{len(behind)} of the {count}"
    verb = "is" if len(behind) == 1 else "are"
    text = f"{head}: {held} {where} {verb} not ready ({_names([c.path for c in behind])})"
    if causes:
        shown = "; ".join(causes[:CAUSES_SHOWN])
        more = f" and {len(causes) - CAUSES_SHOWN} more" if len(causes) > CAUSES_SHOWN else ""
        text += f"; {summary.verdict.value} because of {shown}{more}"
        if len(worst) == 1:  # one reason: say what it means
            text += f" ({worst[0].detail.rstrip('.')})"
    if not behind and worst:
        text = f"{head}: the image config needs work ({'; '.join(causes)})"
    effort = _effort(behind)
    if effort:
        text += f"; largest effort {effort}"
    blocked = [c.path for c in behind if c.verdicts.get(target) is Verdict.BLOCKED]
    if blocked:
        text += f"; or keep {_names(blocked)} in a container and move the rest"
    return text + "."


def answers(result: ScanResult) -> list[Answer]:
    """Per judged target, in the catalogue's order."""
    out = []
    for target in view.targets_of(result):
        summary = result.targets.get(target)
        if summary is None:
            continue
        found = reasons(result, target)
        out.append(
            Answer(target, summary.verdict, summary.score, sentence(result, target, found), found)
        )
    return out


def obstacles(result: ScanResult) -> list[Obstacle]:
    """What makes components of the scope rework or blocked, grouped by capability (by
    rule when a finding names none) across targets; worst first, then the design before
    the details (as the top blockers, score.design_rank), then the one on most targets,
    then the one in most components."""
    components, _ = scope(result)
    targets = view.targets_of(result)
    found: dict[str, Obstacle] = {}
    pairs = [(c.path, f) for c in components for t in targets for f in deciding(c, t)]
    pairs += [("image config", f) for f in result.image_findings]
    for path, f in pairs:
        if f.verdict not in view.BLOCKING:
            continue
        key = f.capability or f.rule_id
        ob = found.setdefault(key, Obstacle(key, _title(f)))
        if f.rule_id not in ob.rule_ids:
            ob.rule_ids.append(f.rule_id)
        ob.verdicts[f.target] = Verdict.worst([f.verdict, ob.verdicts.get(f.target, f.verdict)])
        if path not in ob.components:
            ob.components.append(path)
        for e in f.evidence:
            if e.chain and (not ob.chain or view.chain_rank(e.chain) < view.chain_rank(ob.chain)):
                ob.chain = e.chain  # the best by chain_rank, the first of equal rank
            item = (e.symbol or e.syscall or "").split("@", 1)[0] or e.detail or ""
            if item and item not in ob.items:
                ob.items.append(item)
    for ob in found.values():
        ob.rule_ids.sort()
        ob.verdicts = {t: ob.verdicts[t] for t in targets if t in ob.verdicts}
    return sorted(
        found.values(),
        key=lambda o: (
            o.worst.rank,
            design_rank(o.rule_ids),
            -len(o.verdicts),
            -len(o.components),
            o.key,
        ),
    )
