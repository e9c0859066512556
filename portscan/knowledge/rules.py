"""The rule catalogue: every PS rule with its documentation, read from signatures/rules.json.

A rule that names a capability takes its title, per-target verdicts and remediation from
signatures/capabilities.json, one that names a runtime from language-runtimes.json, one
marked "semantics" from the rows of runtime-semantics.json that name it (each row carries
its own verdict per target; the rule shows the worst); the others carry their own.
report/rules.py renders a rule as `portscan explain PSxxx` prints it.

The registry: `emitter(rule)` says how each rule is emitted, derived from the data: the
capability's rule, the runtime's rule, a pattern of signatures/patterns.json, a config
check, a row of signatures/runtime-semantics.json, or the lint function that names its id
in knowledge/ruleids.py. The catalogue does not load unless every
rule has exactly one emitter and every id code or patterns name is catalogued.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from portscan.errors import UnknownRuleError
from portscan.knowledge import ruleids
from portscan.knowledge import tables as sig
from portscan.model import Capability, Target, Verdict

RULE_ID = re.compile(r"^PS[1-9]\d{2}$")
CAPABILITY, RUNTIME, PATTERN, CONFIG = "capability", "runtime", "pattern", "config"  # data
SEMANTICS = "semantics"  # the rows of runtime-semantics.json that name the rule


@dataclass(frozen=True)
class ConfigCheck:
    """A rule that checks one image-config field: it fires when the field is set (or, with
    `values`, when the field is one of them); {value} is filled in `message` and `detail`."""

    field: str
    message: str
    detail: str
    values: tuple[str, ...] | None = None
    empty: str = ""  # how an empty value is written

    def value_of(self, config: object) -> str | None:
        """The field's value as text when the check fires, else None."""
        value = getattr(config, self.field)
        fires = value in self.values if self.values is not None else bool(value)
        if not fires:
            return None
        text = ", ".join(value) if isinstance(value, list) else str(value)
        return text or self.empty


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    title: str
    family: str
    capability: Capability | None
    runtime: str | None
    summary: str
    rationale: str
    evidence: tuple[str, ...]
    example: str
    support: Mapping[Target, sig.Support]
    references: tuple[sig.Reference, ...]
    config: ConfigCheck | None = None  # a check of the image config (rules.json "config")
    messages: tuple[str, str] = ("", "")  # templates: (a ready or n/a verdict, any other)
    supersedes: bool = False  # its finding alone decides the component's verdict on a target

    def verdict(self, target: Target) -> Verdict:
        return self.support[target].verdict

    def message(
        self,
        target: Target,
        verdict: Verdict,
        names: str,
        count: int,
        support: sig.Support | None = None,
        **fields: str,
    ) -> str:
        """A finding's message from the rule's template (rules.json "messages"), about
        `count` names quoted as `names` (`listed`). `support` replaces the rule's own
        for {remedy} (a runtime-semantics row's); `fields` fill further placeholders
        ({condition})."""
        ready = verdict in (Verdict.READY, Verdict.NA)
        template = self.messages[0] if ready else self.messages[1]
        remedy = "" if ready else remediation_text(support or self.support[target])
        return template.format(
            title=self.title,
            names=names,
            count=count,
            target=target.value,
            remedy=remedy,
            **fields,
        )

    def remediation(self, target: Target) -> str:
        """What to do on `target`, with the flags and libraries a shim needs."""
        return remediation_text(self.support[target])


SHOWN = 8  # names a finding's message quotes


def listed(names: Collection[str]) -> str:
    """The names a message quotes: the first SHOWN, and how many more."""
    more = len(names) - SHOWN
    return ", ".join(itertools.islice(names, SHOWN)) + (f" and {more} more" if more > 0 else "")


def remediation_text(support: sig.Support) -> str:
    """`how`, plus the compile and link flags when the verdict is shim."""
    text = support.how
    if support.verdict is not Verdict.SHIM:
        return text
    flags, libs = list(support.flags), []
    if support.uses:
        library = sig.libc().libraries[support.uses]
        flags += library.flags
        libs += library.libs
    if flags:
        text += f" Compile with {' '.join(flags)}."
    if libs:
        text += f" Link with {' '.join(libs)}."
    return text


def _build(entry: dict, families: Mapping[str, str], defaults: Mapping[str, str]) -> Rule:
    rule_id = entry["id"]
    capability = (
        sig.capability_id(entry["capability"], f"rules.json {rule_id}")
        if "capability" in entry
        else None
    )
    runtime = entry.get("runtime")
    refs = list(entry.get("references", ()))
    title, summary = entry.get("title", ""), ""
    if "targets" in entry:
        support = sig.parse_support(entry["targets"], f"rules.json {rule_id}")
    elif runtime is not None:
        info = sig.runtimes()[runtime]
        support, title, summary = info.support, title or info.title, info.summary
        refs += info.references
    elif entry.get("semantics"):
        support = semantics_support(rule_id)
        rows = [row for row in sig.runtime_semantics() if row.rule == rule_id]
        refs += [ref for row in rows for ref in row.references]
    elif capability is not None:
        cap = sig.capability_map().capabilities[capability]
        support, title, summary = cap.support, title or cap.title, cap.summary
        refs += cap.references
    else:
        raise sig.SignaturesError(f"rules.json {rule_id}: no targets, capability or runtime")
    if capability is not None and not summary:
        summary = sig.capability_map().capabilities[capability].summary
    known = sig.references()
    return Rule(
        id=rule_id,
        name=entry["name"],
        title=title,
        family=families[rule_id[:3]],
        capability=capability,
        runtime=runtime,
        summary=summary,
        rationale=entry["rationale"],
        evidence=tuple(entry["evidence"]),
        example=entry["example"],
        support=support,
        references=tuple(known[r] for r in dict.fromkeys(refs)),
        config=_config_check(entry.get("config")),
        supersedes=bool(entry.get("supersedes", False)),
        messages=(
            entry.get("message_ready", defaults["ready"]),
            entry.get("message", defaults["default"]),
        ),
    )


def semantics_support(rule_id: str) -> dict[Target, sig.Support]:
    """A semantics rule's verdict per target: the worst of the runtime-semantics.json rows
    that name it there, with each row's functions and advice; n/a where no row holds."""
    support = {}
    for target in Target:
        rows = [r for r in sig.runtime_semantics() if r.rule == rule_id and target in r.support]
        if not rows:
            how = "No row of signatures/runtime-semantics.json names this target."
            support[target] = sig.Support(Verdict.NA, how)
            continue
        verdict = Verdict.worst(row.support[target].verdict for row in rows)
        how = " ".join(
            f"{', '.join(row.functions)} ({row.support[target].verdict.value}): "
            f"{row.support[target].how}"
            for row in rows
        )
        support[target] = sig.Support(verdict, how)
    return support


def _config_check(doc: dict | None) -> ConfigCheck | None:
    if doc is None:
        return None
    values = tuple(doc["in"]) if "in" in doc else None
    return ConfigCheck(doc["field"], doc["message"], doc["detail"], values, doc.get("empty", ""))


@sig.register_cache
@functools.cache
def _catalogue() -> dict[str, Rule]:
    doc = sig.load("rules.json")
    rules = {}
    for entry in doc["rules"]:
        if not RULE_ID.match(entry["id"]) or entry["id"] in rules:
            raise sig.SignaturesError(f"rules.json: bad or repeated id {entry['id']!r}")
        rules[entry["id"]] = _build(entry, doc["families"], doc["messages"])
    _check_emitters(doc["rules"])  # the registry must agree with the catalogue
    return rules


def pattern_rule_ids() -> frozenset[str]:
    """The rules that signatures/patterns.json emits."""
    return frozenset(p["rule"] for p in sig.load("patterns.json")["patterns"])


def _check_emitters(entries: list[dict]) -> dict[str, str]:
    """Rule id -> how it is emitted (see the module docstring), or SignaturesError."""
    patterns = pattern_rule_ids()
    emitters = {}
    for entry in entries:
        rule_id = entry["id"]
        ways = [
            way
            for way, applies in (
                (ruleids.EMITTED_BY.get(rule_id), rule_id in ruleids.EMITTED_BY),
                (RUNTIME, "runtime" in entry),
                (PATTERN, rule_id in patterns),
                (CAPABILITY, "capability" in entry and "targets" not in entry),
                (CONFIG, "config" in entry),
                (SEMANTICS, bool(entry.get("semantics"))),
            )
            if applies
        ]
        if len(ways) != 1:
            raise sig.SignaturesError(f"rules.json {rule_id}: emitted by {ways or 'nothing'}")
        emitters[rule_id] = ways[0]
    unknown = sorted((set(ruleids.EMITTED_BY) | patterns) - set(emitters))
    if unknown:
        raise sig.SignaturesError(f"rule ids not in rules.json: {', '.join(unknown)}")
    rowless = sorted(
        rule_id
        for rule_id, way in emitters.items()
        if way == SEMANTICS and not any(row.rule == rule_id for row in sig.runtime_semantics())
    )
    if rowless:
        raise sig.SignaturesError(f"semantics rules no row names: {', '.join(rowless)}")
    return emitters


@sig.register_cache
@functools.cache
def _emitters() -> dict[str, str]:
    return _check_emitters(sig.load("rules.json")["rules"])


def emitter(rule: Rule) -> str:
    """How `rule` is emitted: "capability", "runtime", "pattern", "config", "semantics", or
    the lint function (as "lint.module.function") that emits it by its name in
    knowledge/ruleids.py."""
    return _emitters()[rule.id]


def all_rules() -> tuple[Rule, ...]:
    """Every rule, in id order."""
    return tuple(sorted(_catalogue().values(), key=lambda rule: rule.id))


@sig.register_cache
@functools.cache
def runtime_rules() -> dict[str, Rule]:
    """The rule of each language runtime, by runtime id (language-runtimes.json)."""
    return {rule.runtime: rule for rule in all_rules() if rule.runtime}


@sig.register_cache
@functools.cache
def superseding_ids() -> frozenset[str]:
    """The rules whose finding alone decides a component's verdict on its target."""
    return frozenset(rule.id for rule in all_rules() if rule.supersedes)


def get_rule(rule_id: str) -> Rule:
    """The rule with this id (case-insensitive), or UnknownRuleError."""
    rule = _catalogue().get(rule_id.strip().upper())
    if rule is None:
        raise UnknownRuleError(f"no rule {rule_id!r}", "run `portscan rules` to see every rule id")
    return rule


@sig.register_cache
@functools.cache
def rule_for_capability(capability: Capability) -> Rule:
    """The rule that reports a capability found from symbols or syscalls: the one that
    takes its verdicts from the capability map."""
    doc = {e["id"]: e for e in sig.load("rules.json")["rules"]}
    for rule in all_rules():
        entry = doc[rule.id]
        if rule.capability == capability and "targets" not in entry:
            return rule
    raise sig.SignaturesError(f"rules.json: no rule reports capability {capability}")
