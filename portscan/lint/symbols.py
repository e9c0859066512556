"""Judge what a component asks of its platform against each WASI target.

Pure functions over the signatures/ data: names in, Findings out, nothing printed.
`judge_symbols` takes the C-library-level names a component imports (or, for a static
binary, the libc functions linked into it) and returns, per target, one Finding per rule
and verdict with one Evidence per symbol. `judge_paths` and `judge_syscalls` do the same
for path strings and system-call sites. A name is normalised first (version tag dropped,
glibc spellings such as __printf_chk or open64 mapped to the function they stand for,
start-up symbols ignored) using signatures/symbol-normalisation.json.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from portscan.knowledge import rules
from portscan.knowledge import tables as sig
from portscan.knowledge.platform import capability_of, parse_name
from portscan.knowledge.ruleids import (
    LIBC_AVAILABLE,
    LIBC_EMULATED,
    LIBC_MISSING,
    NO_TARGET_DATA,
    SYSCALLS_ONLY,
    UNKNOWN_SYMBOL,
)
from portscan.model import (
    TARGET_ORDER,
    VERDICT_RANK,
    Capability,
    ChainStep,
    Evidence,
    Finding,
    Target,
    Verdict,
)

try:  # the grouping loops in C (_grouping.c), if it was built; else in Python, alike
    from portscan.lint._grouping import group as _group
except ImportError:  # pragma: no cover - built by setup.py; the Python is the fallback
    _group = None

_Item = TypeVar("_Item")
_Plain = tuple[str, str, str]  # a symbol, its detail after "imported", its judgement's note


@dataclass(frozen=True, eq=False)  # identity: judge_function caches each one
class Judgement:
    """One function judged for one target."""

    rule_id: str
    verdict: Verdict
    capability: Capability | None
    note: str = ""


def _missing_note(
    function: str, target: Target, as_of: str | None, flavour: str | None = None
) -> str:
    libc = sig.libc()
    list_name = libc.list_of(target, flavour)
    if list_name:
        where = f"{libc.c_library[list_name]} ({list_name})"
    else:
        where = f"{target.value}'s C library"
    note = f"{function} is not defined by {where}"
    added = libc.history.get(function)
    if added and as_of and added.added > as_of and libc.defines(function, target, None, flavour):
        sdk = f", wasi-sdk {added.wasi_sdk}" if added.wasi_sdk else ""
        note = f"{function} was added to wasi-libc in {added.added}{sdk}, after {as_of}"
    hint = sig.capability_map().hints.get(function)
    return f"{note}; {hint}" if hint else note


def _no_list_note(target: Target) -> str:
    """What data PS906 misses: the target's C-library symbol list."""
    return (
        f"no defined-symbol list of {target.value}'s C library in signatures/ "
        "(list_for_target of wasi-libc.json or wasix-libc.json names none)"
    )


@sig.register_cache
@functools.lru_cache(maxsize=65536)
def judge_function(
    function: str,
    target: Target,
    *,
    platform: bool = True,
    as_of: str | None = None,
    wasix_libc: str | None = None,
    bookkeeping_alone: bool = False,
) -> Judgement:
    """Judge one normalised function name for one target.

    `platform` says the name is known to come from the C library (a platform version tag,
    or the caller resolved it there): then a function the target lacks is a link error
    (PS601, rework) rather than an unattributed symbol (PS903, unknown). `wasix_libc`
    picks a wasix-libc flavour other than the default for the wasix target.
    `bookkeeping_alone`: the function only keeps books on a capability that nothing the
    component uses creates (pthread_join without pthread_create): judged as a plain C
    library function.
    """
    libc = sig.libc()
    flavour = wasix_libc if target is Target.WASIX else None
    info = None if bookkeeping_alone else capability_of(function)
    defined = libc.defines(function, target, as_of, flavour)
    library = libc.library_for(function, target, flavour)
    if info is not None:
        support = info.support[target]
        absent = (
            function in support.missing
            if defined is None
            else not defined and not (library is not None and not library.in_lists)
        )
        if absent and info.provided_by is None and support.verdict.rank > Verdict.REWORK.rank:
            note = _missing_note(function, target, as_of, flavour)
            return Judgement(LIBC_MISSING, Verdict.REWORK, info.capability, note)
        rule = rules.rule_for_capability(info.capability)
        return Judgement(rule.id, support.verdict, info.capability)
    if defined is None:  # the target has no symbol list
        if platform:
            return Judgement(NO_TARGET_DATA, Verdict.UNKNOWN, None, _no_list_note(target))
        return Judgement(UNKNOWN_SYMBOL, Verdict.UNKNOWN, None)
    if defined:
        if library is not None and library.in_lists:
            flags = " ".join(library.flags + library.libs)
            return Judgement(LIBC_EMULATED, Verdict.SHIM, None, f"{library.name}: {flags}")
        return Judgement(LIBC_AVAILABLE, Verdict.READY, None)
    if platform:
        note = _missing_note(function, target, as_of, flavour)
        return Judgement(LIBC_MISSING, Verdict.REWORK, None, note)
    return Judgement(UNKNOWN_SYMBOL, Verdict.UNKNOWN, None)


_Row = tuple[tuple["_Key", bool, str], ...]  # per target: group key, ready?, note


def _row(
    function: str,
    targets: tuple[Target, ...],
    platform: bool,
    as_of: str | None,
    wasix_libc: str | None,
    alone: bool,
) -> _Row:
    """`judge_function` for each of `targets`, as `_symbol_plan` groups it: the key of
    the group the function goes in there, whether it is ready (named in the message,
    no evidence of its own), and the judgement's note."""
    row = []
    for target in targets:
        j = judge_function(
            function,
            target,
            platform=platform,
            as_of=as_of,
            wasix_libc=wasix_libc,
            bookkeeping_alone=alone,
        )
        row.append(
            ((target, j.rule_id, j.capability, j.verdict), j.verdict is Verdict.READY, j.note)
        )
    return tuple(row)


def _message(rule_id: str, target: Target, names: Collection[str], verdict: Verdict) -> str:
    """One sentence: what was found, then what to do on this target (nothing to do when
    ready: `portscan explain` still tells how the target provides it). The wording is
    the rule's template in signatures/rules.json."""
    return _worded(rule_id, target, verdict, rules.listed(names), len(names))


@sig.register_cache
@functools.lru_cache(maxsize=16384)
def _worded(rule_id: str, target: Target, verdict: Verdict, names: str, count: int) -> str:
    """`_message`'s sentence, made once per wording (an image's components repeat them:
    nginx 6,400 distinct in 22,000)."""
    return rules.get_rule(rule_id).message(target, verdict, names, count)


def judge_symbols(
    symbols: Iterable[str],
    *,
    file: str,
    targets: Sequence[Target] = tuple(Target),
    package: str | None = None,
    layer: int | None = None,
    as_of: str | None = None,
    assume_libc: bool | None = None,
    origin: str = "imported",
    wasix_libc: str | None = None,
    chains: Mapping[str, tuple[ChainStep, ...]] | None = None,
) -> list[Finding]:
    """Findings for the C-library-level symbols of one component, for each target.

    Symbols may carry version tags (`fork@GLIBC_2.2.5`); one tagged with another
    library's version (`SSL_new@OPENSSL_3.0.0`) belongs to that library and is skipped.
    An unversioned name the C library would lack is a link error (PS601) when
    `assume_libc` is true (musl binaries, names the caller resolved to libc) and
    unattributed (PS903) when false. By default it is true unless some symbol carries
    a platform version: glibc versions every function it exports, so next to GLIBC_
    imports an unversioned one comes from another library.
    `as_of` (ISO date) judges against wasi-libc as it was then, for functions whose
    appearance signatures/wasi-libc-notes.json records. `origin` words the evidence
    ("imported", "linked in"). `wasix_libc` judges wasix by another wasix-libc flavour
    than the default (signatures/wasix-libc.json). `chains[symbol]`, when given, is how
    the component reaches the symbol through its libraries (graph/reach.py): it goes
    into the evidence, worded "reached" when it passes through a library.
    The judging is `_symbol_plan`'s, once per distinct symbol set; this adds the file's
    evidence.
    """
    chains = chains or {}
    plan = _symbol_plan(
        tuple(dict.fromkeys(symbols)), tuple(targets), as_of, assume_libc, wasix_libc, origin
    )
    findings = []
    made: dict[_Plain, Evidence] = {}  # the targets' findings share their equal evidence
    ready: dict[str, Evidence] = {}  # and their equal evidence of ready names
    for group in plan:
        if group.items:
            evidence = []
            for item in group.items:
                found = made.get(item)
                if found is None:
                    raw, rest, note = item
                    chain = chains.get(raw, ())
                    found = made[item] = Evidence(
                        file,
                        symbol=raw,
                        package=package,
                        layer=layer,
                        detail=("reached" if len(chain) > 2 else origin)
                        + rest
                        + (f"; {note}" if note else ""),
                        chain=chain,
                    )
                evidence.append(found)
        else:  # ready names: one evidence for all, named in the message
            found = ready.get(group.summary)
            if found is None:
                found = ready[group.summary] = Evidence(
                    file, package=package, layer=layer, detail=group.summary
                )
            evidence = [found]
        findings.append(
            Finding(
                group.rule_id,
                group.target,
                group.verdict,
                group.capability,
                group.message,
                evidence,
            )
        )
    return findings


@dataclass(slots=True)  # not frozen: a frozen __init__ sets each field through
class _Group:  # object.__setattr__ (nginx: 22,000 groups); nothing changes one
    """One Finding of a symbol set, without the file: `items` (raw symbol, the rest of
    its evidence's detail, its judgement's note) per evidence, or none for ready names,
    which share one evidence detailed `summary` ("" where there are items)."""

    target: Target
    rule_id: str
    capability: Capability | None
    verdict: Verdict
    message: str
    items: tuple[_Plain, ...]
    summary: str


@sig.register_cache
@functools.lru_cache(maxsize=1024)  # some ten KiB each
def _symbol_plan(
    symbols: tuple[str, ...],
    targets: tuple[Target, ...],
    as_of: str | None,
    assume_libc: bool | None,
    wasix_libc: str | None,
    origin: str,
) -> tuple[_Group, ...]:
    """`judge_symbols`' findings for distinct `symbols`, without the file: components of
    an image often import the same set."""
    names = [n for s in symbols if (n := _judged_name(s)) is not None]
    if assume_libc is None:
        assume_libc = not any(n[2] for n in names)
    groups = _grouped(names, assume_libc, targets, as_of, wasix_libc)
    plan = []
    for (target, rule_id, capability, verdict), names, items in _ordered(groups):
        summary = ""  # ready names' one evidence says how many there are
        if not items:
            listed = f"{len(names)} function(s)"
            summary = f"{origin}, {listed}" if origin else listed
        message = _message(rule_id, target, names, verdict)
        plan.append(_Group(target, rule_id, capability, verdict, message, tuple(items), summary))
    return tuple(plan)


_Name = tuple[str, tuple[str, str], bool, "sig.CapabilityInfo | None"]  # `_judged_name`


def _grouped(
    names: list[_Name],
    assume_libc: bool,
    targets: tuple[Target, ...],
    as_of: str | None,
    wasix_libc: str | None,
) -> dict[_Key, _Items[_Plain]]:
    """`_symbol_plan`'s groups: each name judged once for every target (its function's
    row), the names of one function (judged alike) batched, then each batch put in its
    group per (target, rule, capability, verdict), for one target in the order of the
    batches, which `_ordered` keeps among equals. In C (`_grouping.c`) when built."""
    rows = _rows(targets, as_of, wasix_libc)
    functions: frozenset[str] | None = None  # made only when a bookkeeping function asks

    def uncreated(bookkeeping: sig.CapabilityInfo) -> bool:
        """Whether nothing of the set creates what `bookkeeping` keeps books on."""
        nonlocal functions
        functions = functions or frozenset(n[0] for n in names)
        return not bookkeeping.created_by(functions)

    def make_row(function: str, platform: bool, alone: bool) -> _Row:
        return _row(function, targets, platform, as_of, wasix_libc, alone)

    if _group is not None:
        return _group(names, assume_libc, rows, make_row, uncreated)
    batches: dict[tuple[str, bool, bool], tuple[_Row, list[tuple[str, str]]]] = {}
    for function, named, platform, bookkeeping in names:
        key = (
            function,
            platform or assume_libc,
            bookkeeping is not None and uncreated(bookkeeping),
        )
        batch = batches.get(key)
        if batch is None:
            row = rows.get(key)
            if row is None:
                row = rows[key] = make_row(*key)
            batch = batches[key] = (row, [])
        batch[1].append(named)
    groups: dict[_Key, _Items[_Plain]] = {}
    for (function, _, _), (row, batch) in batches.items():
        for key, ready, note in row:
            group = groups.get(key)
            if group is None:
                group = groups[key] = ({}, [])
            group[0][function] = None  # a name seen before keeps its place
            if not ready:  # (the message names the ready ones)
                items = group[1]
                for raw, rest in batch:
                    items.append((raw, rest, note))
    return groups


@sig.register_cache
@functools.lru_cache(maxsize=64)
def _rows(
    targets: tuple[Target, ...], as_of: str | None, wasix_libc: str | None
) -> dict[tuple[str, bool, bool], _Row]:
    """The rows made so far for these targets and options, by (function, platform,
    alone): `_grouped` fills it, and it goes with the signatures it was judged by."""
    return {}


@sig.register_cache
@functools.lru_cache(maxsize=65536)
def _judged_name(
    symbol: str,
) -> tuple[str, tuple[str, str], bool, sig.CapabilityInfo | None] | None:
    """What `_symbol_plan` needs of an imported symbol, worked out once: its function,
    (the symbol, its evidence's detail after the origin), whether its version tag is
    the C library's, and the capability it keeps books on (pthread_join: judged so only
    next to a function creating it); None for a symbol that says nothing (ignored, or
    versioned by another library)."""
    name = parse_name(symbol)
    if name.ignored is not None or name.platform is False:
        return None
    function = name.function
    info = capability_of(function)
    bookkeeping = info if info is not None and function in info.bookkeeping else None
    rest = "" if function == name.name else f", as {function}"
    return function, (symbol, rest), bool(name.platform), bookkeeping


_Key = tuple[Target, str, Capability | None, Verdict]
_Items = tuple[dict[str, None], list[_Item]]  # a group's names (in first-seen order), items


def _ordered(
    groups: dict[_Key, _Items[_Item]],
) -> list[tuple[_Key, dict[str, None], list[_Item]]]:
    """Groups per (target, rule, capability, verdict), worst first per target."""
    result = [(key, labels, items) for key, (labels, items) in groups.items()]
    result.sort(key=lambda g: (TARGET_ORDER[g[0][0]], VERDICT_RANK[g[0][3]], g[0][1]))
    return result


def _collect(judged: Iterable[tuple[Target, Judgement, Evidence, str]]) -> list[Finding]:
    """Findings from judged evidence, one per (target, rule, capability, verdict), its
    evidence without repeats."""
    groups: dict[_Key, _Items[Evidence]] = {}
    for target, judgement, item, label in judged:
        key = (target, judgement.rule_id, judgement.capability, judgement.verdict)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ({}, [])
        group[0][label] = None
        group[1].append(item)
    findings = []
    for (target, rule_id, capability, verdict), names, items in _ordered(groups):
        message = _message(rule_id, target, names, verdict)
        evidence = list(dict.fromkeys(items))
        findings.append(Finding(rule_id, target, verdict, capability, message, evidence))
    return findings


def judge_paths(
    strings: Iterable[str],
    *,
    file: str,
    targets: Sequence[Target] = tuple(Target),
    package: str | None = None,
    layer: int | None = None,
) -> list[Finding]:
    """Findings for path strings found in a file (/dev/urandom, /proc/self/...)."""
    matched = []
    for text in dict.fromkeys(strings):
        for signature in sig.path_signatures():
            if signature.matches(text):
                matched.append((text, signature))
                break

    def judged() -> Iterable[tuple[Target, Judgement, Evidence, str]]:
        for target in targets:
            for text, signature in matched:
                rule = rules.rule_for_capability(signature.capability)
                verdict = rule.verdict(target)
                judgement = Judgement(rule.id, verdict, signature.capability)
                detail = f"string {text!r}; {signature.hint}"
                evidence = Evidence(file, package=package, layer=layer, detail=detail)
                yield target, judgement, evidence, text

    return _collect(judged())


def judge_syscalls(
    sites: Iterable[tuple[str, int | None]],
    *,
    file: str,
    targets: Sequence[Target] = tuple(Target),
    package: str | None = None,
    layer: int | None = None,
) -> list[Finding]:
    """Findings for the system-call sites (name, address) of a binary without symbols.

    Mapped syscalls raise their capability's rule; the weak ones every libc issues for
    itself are left out. PS905 (unknown) is always added: syscall sites alone cannot
    show that a binary is ready.
    """
    sites = list(sites)
    capmap = sig.capability_map()

    def judged() -> Iterable[tuple[Target, Judgement, Evidence, str]]:
        for target in targets:
            for name, address in sites:
                found = capmap.for_syscall(name)
                if found is None or found[1]:
                    continue
                info = found[0]
                rule = rules.rule_for_capability(info.capability)
                judgement = Judgement(rule.id, info.support[target].verdict, info.capability)
                evidence = Evidence(
                    file, syscall=name, address=address, package=package, layer=layer
                )
                yield target, judgement, evidence, name
            summary = Evidence(file, package=package, layer=layer, detail=f"{len(sites)} sites")
            yield target, Judgement(SYSCALLS_ONLY, Verdict.UNKNOWN, None), summary, "syscalls"

    return _collect(judged())
