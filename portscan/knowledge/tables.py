"""The signatures/ data, parsed once and read through typed accessors.

Every accessor is cached: a JSON file is read on first use and shared afterwards. Set
PORTSCAN_SIGNATURES to another directory to read a different copy (then `clear_cache()`).
signatures/README.md describes each file and how it is made.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portscan.errors import SignaturesError, UsageError
from portscan.knowledge import SIGNATURES_ENV, signatures_dir
from portscan.model import Capability, Target, Verdict


@functools.cache
def load(name: str) -> dict[str, Any]:
    """One JSON document of signatures/, parsed."""
    path = signatures_dir() / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SignaturesError(
            f"cannot read signature data {path}: {exc}",
            f"reinstall portscan or point {SIGNATURES_ENV} at a signatures directory",
        ) from exc


@dataclass(frozen=True)
class Reference:
    """A cited source: a URL, or a path of material shipped beside portscan."""

    id: str
    title: str
    url: str | None = None
    path: str | None = None

    @property
    def location(self) -> str:
        return self.url or self.path or ""


@dataclass(frozen=True)
class Support:
    """What one target gives a capability (or a rule or runtime): verdict and how."""

    verdict: Verdict
    how: str
    uses: str | None = None  # a library of wasi-libc.json: emulation or excluded library
    flags: tuple[str, ...] = ()
    missing: frozenset[str] = frozenset()  # functions this target's libc lacks (no list)


@dataclass(frozen=True)
class TargetInfo:
    target: Target
    title: str
    summary: str
    libc_list: str | None
    references: tuple[str, ...]


@dataclass(frozen=True)
class Library:
    """A wasi-libc library whose functions need flags: an emulation library, or one that
    upstream leaves out of the symbol lists (libsetjmp, libdl)."""

    name: str
    flags: tuple[str, ...]
    libs: tuple[str, ...]
    symbols: tuple[str, ...]
    note: str
    in_lists: bool  # True for emulation libraries, whose symbols the lists include


@dataclass(frozen=True)
class Added:
    """When a function appeared in wasi-libc (ISO date or month)."""

    symbol: str
    added: str
    wasi_sdk: str | None


@dataclass(frozen=True)
class Lowered:
    """A function the compiler turns into another in some lists (wasix-libc's -eh
    flavours: clang rewrites setjmp into __wasm_setjmp), so calling it builds there."""

    symbol: str
    to: str
    flags: tuple[str, ...]
    note: str
    lists: frozenset[str]


WASI_LIBC = "wasi-libc"
WASIX_LIBC = "wasix-libc"


@dataclass(frozen=True)
class Libc:
    """Which functions each target's C library defines, generated from upstream's lists:
    wasi-libc's targets (wasi-libc.json) and wasix-libc's flavours (wasix-libc.json).

    `lists` holds every list, wasi-libc's first; `c_library` says whose each one is.
    The emulation and excluded libraries, `history` and `known` are wasi-libc's.
    """

    lists: tuple[str, ...]
    membership: Mapping[str, str]  # symbol -> one character per list: 1 = defined
    list_for_target: Mapping[Target, str]  # the list that stands for a target by default
    libraries: Mapping[str, Library]
    history: Mapping[str, Added]
    provenance: Mapping[str, Mapping[str, Any]]  # per C library: generated_*, source, lists
    c_library: Mapping[str, str]  # list -> WASI_LIBC or WASIX_LIBC
    flavours: Mapping[Target, tuple[str, ...]]  # the lists a user may pick for a target
    lowered: Mapping[str, Lowered]

    def list_symbols(self, list_name: str) -> frozenset[str]:
        """Every symbol one list defines."""
        column = self.lists.index(list_name)
        return frozenset(s for s, mask in self.membership.items() if mask[column] == "1")

    def list_of(self, target: Target, flavour: str | None = None) -> str | None:
        """The list judged for `target`: `flavour` when given (one of the target's
        flavours), else the target's default; None when the target has no list."""
        if flavour is None or target not in self.flavours:
            return self.list_for_target.get(target)
        if flavour not in self.flavours[target]:
            choices = ", ".join(self.flavours[target])
            raise UsageError(f"{target.value} has no C-library flavour {flavour!r} ({choices})")
        return flavour

    def known(self, symbol: str) -> bool:
        """Defined by at least one wasi-libc list (the C library whose spellings symbol
        normalisation maps glibc's onto: wasix-libc also defines glibc-style aliases)."""
        mask = self.membership.get(symbol)
        return mask is not None and "1" in mask[: self._wasi_libc_columns]

    @functools.cached_property
    def _wasi_libc_columns(self) -> int:
        return sum(1 for name in self.lists if self.c_library[name] == WASI_LIBC)

    def defines(
        self, symbol: str, target: Target, as_of: str | None = None, flavour: str | None = None
    ) -> bool | None:
        """Whether the target's C library defines `symbol` (None: no list for the target).

        `flavour` picks another of the target's lists (wasix: a wasix-libc flavour). With
        `as_of` (an ISO date), a function that appeared in wasi-libc later counts as absent.
        A function the compiler lowers to one the list defines counts as defined.
        """
        list_name = self.list_of(target, flavour)
        if list_name is None:
            return None
        mask = self.membership.get(symbol)
        if mask is None or mask[self.lists.index(list_name)] != "1":
            lowered = self.lowered.get(symbol)
            return lowered is not None and list_name in lowered.lists
        if self.c_library[list_name] != WASI_LIBC:
            return True
        added = self.history.get(symbol)
        return not (as_of and added and added.added > as_of)

    def library_for(
        self, symbol: str, target: Target | None = None, flavour: str | None = None
    ) -> Library | None:
        """The wasi-libc emulation or excluded library that provides `symbol`, if any;
        None for a target whose list is not wasi-libc's (wasix-libc links its emulation
        into every program and lists setjmp and the dl* functions where it has them)."""
        if target is not None:
            list_name = self.list_of(target, flavour)
            if list_name is None or self.c_library[list_name] != WASI_LIBC:
                return None
        for library in self.libraries.values():
            if symbol in library.symbols:
                return library
        return None


@dataclass(frozen=True)
class CapabilityInfo:
    capability: Capability
    title: str
    summary: str
    symbols: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    syscalls: tuple[str, ...]
    weak_syscalls: frozenset[str]
    support: Mapping[Target, Support]
    provided_by: str | None  # a library other than the C library (libc++): lists do not apply
    references: tuple[str, ...]
    # symbols that only keep books on the capability (pthread_join): they reveal it only
    # next to one of the other symbols, which create it (pthread_create)
    bookkeeping: frozenset[str] = frozenset()

    def created_by(self, names: frozenset[str]) -> bool:
        """Whether `names` hold a symbol that creates the capability (not bookkeeping)."""
        return any(s in names for s in self.symbols if s not in self.bookkeeping)


@dataclass(frozen=True)
class CapabilityMap:
    capabilities: Mapping[Capability, CapabilityInfo]
    by_symbol: Mapping[str, Capability]
    by_syscall: Mapping[str, Capability]
    hints: Mapping[str, str]  # advice for a function a target lacks

    def for_symbol(self, name: str) -> CapabilityInfo | None:
        """The capability a C-library-level name reveals: exact names, then patterns."""
        capability = self.by_symbol.get(name)
        if capability is not None:
            return self.capabilities[capability]
        for info, pattern in self._patterned:
            if pattern.search(name):
                return info
        return None

    @functools.cached_property
    def _patterned(self) -> tuple[tuple[CapabilityInfo, re.Pattern[str]], ...]:
        """Each capability that has patterns, in order, with one pattern matching where
        any of its patterns does (most names are tried against them all)."""
        return tuple(
            (info, re.compile("|".join(f"(?:{p.pattern})" for p in info.patterns)))
            for info in self.capabilities.values()
            if info.patterns
        )

    def for_syscall(self, name: str) -> tuple[CapabilityInfo, bool] | None:
        """The capability a system call reveals, and whether the evidence is weak."""
        capability = self.by_syscall.get(name)
        if capability is None:
            return None
        info = self.capabilities[capability]
        return info, name in info.weak_syscalls


@dataclass(frozen=True)
class Normalisation:
    """How an imported name becomes the C-library function it stands for."""

    platform_prefixes: tuple[str, ...]
    ignored: Mapping[str, str]
    aliases: Mapping[str, str]
    rewrites: tuple[tuple[re.Pattern[str], str], ...]
    static_prefixes: tuple[str, ...]

    def is_platform_version(self, version: str) -> bool:
        """True for version tags of the C and C++ platform libraries (GLIBC_2.34)."""
        return version.startswith(self.platform_prefixes)


@dataclass(frozen=True)
class RuntimeInfo:
    id: str
    title: str
    summary: str
    support: Mapping[Target, Support]
    references: tuple[str, ...]
    interpreted: bool = False  # its native binary never runs on Wasm: never ready


@dataclass(frozen=True)
class PathSignature:
    path: str
    capability: Capability
    hint: str

    def matches(self, text: str) -> bool:
        """Equal to the path, or under it when the signature ends with '/'."""
        if self.path.endswith("/"):
            return text.startswith(self.path) and len(text) > len(self.path)
        return text == self.path


def parse_support(entries: Mapping[str, Any], where: str) -> dict[Target, Support]:
    """A per-target block ({"wasip1": {"verdict": ..., "how": ...}, ...}), for every target."""
    support = {}
    for target in Target:
        entry = entries.get(target.value)
        if entry is None:
            raise SignaturesError(f"{where}: no entry for target {target.value}")
        support[target] = Support(
            verdict=Verdict(entry["verdict"]),
            how=entry["how"],
            uses=entry.get("uses"),
            flags=tuple(entry.get("flags", ())),
            missing=frozenset(entry.get("missing", ())),
        )
    return support


@functools.cache
def references() -> dict[str, Reference]:
    doc = load("references.json")["references"]
    return {key: Reference(key, v["title"], v.get("url"), v.get("path")) for key, v in doc.items()}


@functools.cache
def targets() -> dict[Target, TargetInfo]:
    doc = load("targets.json")["targets"]
    return {
        Target(t["id"]): TargetInfo(
            Target(t["id"]), t["title"], t["summary"], t["libc"], tuple(t["references"])
        )
        for t in doc
    }


@dataclass(frozen=True)
class Road:
    """A migration road (targets.json "roads"): taken when `when` holds of the verdicts."""

    id: str
    when: Mapping[str, Any]
    target: str | None  # a target id, "first" (the first whose verdict meets `when`), or None
    effort: str
    summary: str  # may hold {count} and {target}
    large_from: int | None = None  # effort L from this many capabilities to rework

    def meeting(
        self, verdicts: Mapping[Target, Verdict], rules: Mapping[Target, set[str]]
    ) -> list[Target]:
        """The targets whose verdicts (and the rule ids deciding them) make `when` hold,
        in target order; none when it does not hold."""
        when = self.when
        if "decided_by" in when:
            rule, allowed = when["decided_by"], when["in"]
            return [t for t, v in verdicts.items() if v.value in allowed and rule in rules[t]]
        if "every" in when:
            ok = all(v.value in when["every"] for v in verdicts.values())
            return list(verdicts) if ok else []
        if "any" in when:
            return [t for t, v in verdicts.items() if v.value in when["any"]]
        if "target" in when:
            target = Target(when["target"])
            return [target] if verdicts[target].value in when["in"] else []
        if "best" in when:
            best = max(verdicts.values(), key=lambda v: v.rank)
            if best.value not in when["best"]:
                return []
            return [t for t, v in verdicts.items() if v is best]
        return list(verdicts)


@functools.cache
def roads() -> tuple[tuple[Road, ...], tuple[str, ...]]:
    """The migration roads in the order they are checked, and the order reports show them."""
    doc = load("targets.json")["roads"]
    ladder = tuple(
        Road(r["id"], r["when"], r["target"], r["effort"], r["summary"], r.get("large_from"))
        for r in doc["ladder"]
    )
    return ladder, tuple(doc["shown"])


def _provenance(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {key: doc[key] for key in ("generated_by", "generated_on", "source", "lists")}


@functools.cache
def libc() -> Libc:
    doc = load("wasi-libc.json")
    wasix = load("wasix-libc.json")
    libraries = {
        name: Library(
            name,
            tuple(entry["flags"]),
            tuple(entry["libs"]),
            tuple(entry["symbols"]),
            entry.get("limits") or entry.get("note", ""),
            in_lists=group == "emulation",
        )
        for group in ("emulation", "excluded_libraries")
        for name, entry in doc[group].items()
    }
    history = {
        sym: Added(sym, entry["added"], entry.get("wasi_sdk"))
        for sym, entry in doc["history"].items()
    }
    wasi_lists = tuple(entry["name"] for entry in doc["lists"])
    wasix_lists = tuple(entry["name"] for entry in wasix["lists"])
    if set(wasi_lists) & set(wasix_lists):
        raise SignaturesError("wasi-libc.json and wasix-libc.json name the same list")
    no_wasi, no_wasix = "0" * len(wasi_lists), "0" * len(wasix_lists)
    membership = {  # one column per list: wasi-libc's, then wasix-libc's
        symbol: doc["symbols"].get(symbol, no_wasi) + wasix["symbols"].get(symbol, no_wasix)
        for symbol in sorted(doc["symbols"].keys() | wasix["symbols"].keys())
    }
    list_for_target = {
        Target(t): name for part in (doc, wasix) for t, name in part["list_for_target"].items()
    }
    lowered = {
        symbol: Lowered(
            symbol, entry["to"], tuple(entry["flags"]), entry["note"], frozenset(entry["lists"])
        )
        for symbol, entry in wasix["lowered"].items()
    }
    return Libc(
        lists=wasi_lists + wasix_lists,
        membership=membership,
        list_for_target=list_for_target,
        libraries=libraries,
        history=history,
        provenance={WASI_LIBC: _provenance(doc), WASIX_LIBC: _provenance(wasix)},
        c_library=dict.fromkeys(wasi_lists, WASI_LIBC) | dict.fromkeys(wasix_lists, WASIX_LIBC),
        flavours={Target(t): wasix_lists for t in wasix["list_for_target"]},
        lowered=lowered,
    )


def capability_id(name: str, where: str) -> Capability:
    """`name` as a capability id, or SignaturesError when capabilities.json lacks it."""
    if name not in capability_map().capabilities:
        raise SignaturesError(f"{where}: unknown capability {name!r} (see capabilities.json)")
    return Capability(name)


@functools.cache
def capability_map() -> CapabilityMap:
    document = load("capabilities.json")
    doc = document["capabilities"]
    capabilities: dict[Capability, CapabilityInfo] = {}
    by_symbol: dict[str, Capability] = {}
    by_syscall: dict[str, Capability] = {}
    for key, entry in doc.items():
        capability = Capability(key)  # the file defines the ids
        info = CapabilityInfo(
            capability=capability,
            title=entry["title"],
            summary=entry["summary"],
            symbols=tuple(entry["symbols"]),
            patterns=tuple(re.compile(p) for p in entry.get("patterns", ())),
            syscalls=tuple(entry["syscalls"]),
            weak_syscalls=frozenset(entry.get("weak_syscalls", ())),
            support=parse_support(entry["targets"], f"capabilities.json {key}"),
            provided_by=entry.get("provided_by"),
            references=tuple(entry["references"]),
            bookkeeping=frozenset(entry.get("bookkeeping", ())),
        )
        capabilities[capability] = info
        for symbol in info.symbols:
            if by_symbol.setdefault(symbol, capability) != capability:
                raise SignaturesError(f"capabilities.json: {symbol} is in two capabilities")
        for syscall in info.syscalls:
            if by_syscall.setdefault(syscall, capability) != capability:
                raise SignaturesError(f"capabilities.json: syscall {syscall} is in two places")
    return CapabilityMap(capabilities, by_symbol, by_syscall, document["hints"]["symbols"])


@functools.cache
def normalisation() -> Normalisation:
    doc = load("symbol-normalisation.json")
    return Normalisation(
        platform_prefixes=tuple(doc["platform_versions"]["prefixes"]),
        ignored=doc["ignore"]["symbols"],
        aliases=doc["aliases"]["symbols"],
        rewrites=tuple((re.compile(r["pattern"]), r["replace"]) for r in doc["rewrites"]["rules"]),
        static_prefixes=tuple(doc["static_platform_prefixes"]["prefixes"]),
    )


@functools.cache
def runtimes() -> dict[str, RuntimeInfo]:
    doc = load("language-runtimes.json")["runtimes"]
    found = {
        key: RuntimeInfo(
            key,
            entry["title"],
            entry["summary"],
            parse_support(entry["targets"], f"language-runtimes.json {key}"),
            tuple(entry["references"]),
            bool(entry.get("interpreted", False)),
        )
        for key, entry in doc.items()
    }
    for info in found.values():
        wrong = [
            t.value
            for t, s in info.support.items()
            if s.verdict in (Verdict.READY, Verdict.UNKNOWN)
        ]
        if info.interpreted and wrong:
            raise SignaturesError(
                f"language-runtimes.json {info.id}: an interpreted runtime is never ready (its "
                "native binary does not run on Wasm) nor unknown (no known build is rework, "
                f"with the alternatives named), but is one of them on {', '.join(wrong)}"
            )
    return found


@functools.cache
def path_signatures() -> tuple[PathSignature, ...]:
    doc = load("paths.json")["paths"]
    return tuple(
        PathSignature(p["path"], capability_id(p["capability"], "paths.json"), p["hint"])
        for p in doc
    )


@dataclass(frozen=True)
class SemanticsRow:
    """A row of runtime-semantics.json: functions that link on some targets but misbehave
    there at run time, the condition, and the verdict it implies per target."""

    id: str
    functions: tuple[str, ...]
    rule: str  # a rule of rules.json marked "semantics"
    capability: Capability | None
    condition: str
    support: Mapping[Target, Support]  # only the targets where the row holds
    since: str | None  # ISO date of the wasi-libc change from which it holds
    references: tuple[str, ...]
    note: str = ""

    def applies(self, target: Target, as_of: str | None = None) -> bool:
        """Whether the row holds for `target` with wasi-libc as of `as_of` (None: newest)."""
        if target not in self.support:
            return False
        return not (as_of and self.since and as_of < self.since)


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _semantics_row(entry: Mapping[str, Any], semantics_rules: frozenset[str]) -> SemanticsRow:
    row_id = entry.get("id") or "?"
    where = f"runtime-semantics.json {row_id}"
    functions = tuple(entry.get("functions") or ())
    if not functions or not entry.get("condition"):
        raise SignaturesError(f"{where}: a row needs 'functions' and a 'condition'")
    if entry.get("rule") not in semantics_rules:
        raise SignaturesError(
            f"{where}: unknown rule {entry.get('rule')!r} (a rules.json rule marked 'semantics')"
        )
    targets = entry.get("targets") or {}
    known_targets = {t.value for t in Target}
    unknown = sorted(set(targets) - known_targets)
    if not targets or unknown:
        raise SignaturesError(f"{where}: unknown or no targets {unknown or ''}".rstrip())
    refs = tuple(entry.get("references") or ())
    known = references()
    if not refs:
        raise SignaturesError(f"{where}: no reference (every row must cite its source)")
    missing = [r for r in refs if r not in known]
    if missing:
        raise SignaturesError(f"{where}: unknown reference(s) {', '.join(missing)}")
    if not any((known[r].url or "").startswith("https://") for r in refs):
        raise SignaturesError(f"{where}: no reference with an https URL")
    since = entry.get("since")
    if since is not None and not _ISO_DATE.match(since):
        raise SignaturesError(f"{where}: 'since' must be an ISO date, not {since!r}")
    capability = entry.get("capability")
    support = _partial_support(targets, where)
    return SemanticsRow(
        id=row_id,
        functions=functions,
        rule=entry["rule"],
        capability=capability_id(capability, where) if capability else None,
        condition=entry["condition"],
        support=support,
        since=since,
        references=refs,
        note=entry.get("note", ""),
    )


def _partial_support(entries: Mapping[str, Any], where: str) -> dict[Target, Support]:
    """A per-target block that covers only some targets."""
    support = {}
    for target in Target:
        entry = entries.get(target.value)
        if entry is None:
            continue
        try:
            verdict = Verdict(entry["verdict"])
        except (KeyError, ValueError) as exc:
            raise SignaturesError(f"{where}: bad verdict for {target.value}") from exc
        if not entry.get("how"):
            raise SignaturesError(f"{where}: no 'how' for {target.value}")
        support[target] = Support(
            verdict=verdict,
            how=entry["how"],
            uses=entry.get("uses"),
            flags=tuple(entry.get("flags", ())),
        )
    return support


@functools.cache
def runtime_semantics() -> tuple[SemanticsRow, ...]:
    """The rows of runtime-semantics.json, validated: each names a semantics rule of
    rules.json, known targets and capability, and at least one reference, all of which
    exist and one of which has an https URL (SignaturesError otherwise)."""
    semantics_rules = frozenset(
        rule["id"] for rule in load("rules.json")["rules"] if rule.get("semantics")
    )
    rows = tuple(
        _semantics_row(entry, semantics_rules) for entry in load("runtime-semantics.json")["rows"]
    )
    ids = [row.id for row in rows]
    if len(set(ids)) != len(ids):
        raise SignaturesError("runtime-semantics.json: repeated row id")
    seen: dict[tuple[str, Target], str] = {}
    for row in rows:
        for function in row.functions:
            for target in row.support:
                other = seen.setdefault((function, target), row.id)
                if other != row.id:
                    raise SignaturesError(
                        f"runtime-semantics.json: {function} on {target.value} is in rows "
                        f"{other} and {row.id}"
                    )
    return rows


@dataclass(frozen=True)
class MethodRule:
    """A method name that reveals an API when its file imports one of `modules`."""

    name: str
    modules: frozenset[str]


@dataclass(frozen=True)
class Api:
    """One entry of a language's API table (go-stdlib.json, python-modules.json,
    javascript-modules.json): the names that reveal it, its capability, per-target support."""

    id: str
    title: str
    capability: Capability
    imports: frozenset[str]  # importing one of these modules is the evidence
    uses: re.Pattern[str]  # qualified names (patterns; `*` is a wildcard except in `(*T)`)
    methods: tuple[MethodRule, ...]
    outside_stdlib: bool  # Go: match only functions of non-standard-library packages
    support: Mapping[Target, Support]
    references: tuple[str, ...]


@dataclass(frozen=True)
class ApiTable:
    language: str
    runtime: str | None  # the runtime id (runtimes-markers.json) that runs this language
    globals: frozenset[str]  # names the language defines without an import (fetch)
    apis: tuple[Api, ...]


def _name_pattern(patterns: list[str]) -> re.Pattern[str]:
    """One regex for names and wildcard patterns; `(*T)` (a Go pointer receiver) is literal."""
    parts = [
        re.escape(p).replace(r"\(\*", "\0").replace(r"\*", ".*").replace("\0", r"\(\*")
        for p in patterns
    ]
    return re.compile("|".join(f"(?:{part})" for part in parts) or "(?!)")


@functools.cache
def api_table(name: str) -> ApiTable:
    """A language's API table, e.g. `api_table("python-modules.json")`."""
    doc = load(name)
    apis = []
    for entry in doc["apis"]:
        where = f"{name} {entry['id']}"
        apis.append(
            Api(
                id=entry["id"],
                title=entry["title"],
                capability=capability_id(entry["capability"], where),
                imports=frozenset(entry.get("imports", ())),
                uses=_name_pattern(entry.get("uses") or entry.get("functions") or []),
                methods=tuple(
                    MethodRule(m["name"], frozenset(m["modules"])) for m in entry.get("methods", ())
                ),
                outside_stdlib=bool(entry.get("outside_stdlib", False)),
                support=parse_support(entry["targets"], where),
                references=tuple(entry.get("references", ())),
            )
        )
    globals_ = frozenset(doc.get("globals", ()))
    return ApiTable(doc["language"], doc.get("runtime"), globals_, tuple(apis))


_DEPENDENT_CACHES: list[Any] = []


def register_cache(cached: Any) -> Any:
    """Have `clear_cache` also clear a cache built from this data (a functools cache)."""
    _DEPENDENT_CACHES.append(cached)
    return cached


def clear_cache() -> None:
    """Forget everything loaded (after changing PORTSCAN_SIGNATURES)."""
    for accessor in (
        *_DEPENDENT_CACHES,
        load,
        references,
        targets,
        libc,
        capability_map,
        normalisation,
        runtimes,
        path_signatures,
        api_table,
        runtime_semantics,
    ):
        accessor.cache_clear()


@dataclass(frozen=True)
class PortTarget:
    """A maintained WebAssembly build of a program for one target (ports.json)."""

    port: str  # what the port is and where it comes from
    lacks: tuple[Capability, ...]  # capabilities the port does not provide
    note: str  # its limits, in one line
    references: tuple[str, ...]  # ids of references.json, at least one
    checked: str  # ISO date the references were last checked
    from_version: str | None = None  # the oldest version of the program the port exists for


@dataclass(frozen=True)
class Port:
    """A program or runtime with known ports, and how a component is matched to it."""

    id: str
    title: str
    packages: tuple[str, ...]  # package names or fnmatch globs
    binaries: tuple[str, ...]  # basename fnmatch globs
    runtimes: tuple[str, ...]  # runtime ids of language-runtimes.json
    targets: Mapping[Target, PortTarget]


@register_cache
@functools.cache
def _port_globs() -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """One regex of every port row's package globs and one of their binary globs, each
    row's a group `row_INDEX`: a match's group is the first row whose globs match (the
    alternatives are tried in order), as trying the rows one by one would find it."""

    def joined(globs: list[tuple[int, tuple[str, ...]]]) -> re.Pattern[str] | None:
        parts = [f"(?P<row_{i}>{pattern.pattern})" for i, g in globs if (pattern := _globs(g))]
        return re.compile("|".join(parts)) if parts else None

    rows = list(enumerate(ports()))
    return joined([(i, r.packages) for i, r in rows]), joined([(i, r.binaries) for i, r in rows])


@functools.lru_cache(maxsize=1024)
def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex that matches what any of the fnmatch `patterns` matches (case-sensitive,
    as fnmatchcase), or None for no patterns."""
    import fnmatch

    return re.compile("|".join(map(fnmatch.translate, patterns))) if patterns else None


def _port_target(entry: Mapping[str, Any], where: str) -> PortTarget:
    import datetime

    refs = tuple(entry.get("references") or ())
    if not refs:
        raise SignaturesError(f"{where}: a port needs at least one reference")
    known = references()
    for ref in refs:
        if ref not in known:
            raise SignaturesError(f"{where}: unknown reference {ref!r} (see references.json)")
    checked = entry.get("checked", "")
    try:
        datetime.date.fromisoformat(checked)
    except (TypeError, ValueError) as exc:
        raise SignaturesError(f"{where}: 'checked' must be an ISO date, not {checked!r}") from exc
    return PortTarget(
        port=entry["port"],
        lacks=tuple(capability_id(name, where) for name in entry.get("lacks", ())),
        note=entry["note"],
        references=refs,
        checked=checked,
        from_version=entry.get("from_version"),
    )


@register_cache
@functools.cache
def ports() -> tuple[Port, ...]:
    """The known ports (ports.json), validated: capabilities, references, dates, runtimes."""
    doc = load("ports.json")["ports"]
    known_runtimes = runtimes()
    result, seen = [], set()
    for row in doc:
        where = f"ports.json {row.get('id')}"
        if row["id"] in seen:
            raise SignaturesError(f"{where}: duplicate port id")
        seen.add(row["id"])
        match = row["match"]
        for runtime in match.get("runtimes", ()):
            if runtime not in known_runtimes:
                raise SignaturesError(f"{where}: unknown runtime {runtime!r}")
        targets_: dict[Target, PortTarget] = {}
        for name, entry in row["targets"].items():
            try:
                target = Target(name)
            except ValueError as exc:
                raise SignaturesError(f"{where}: unknown target {name!r}") from exc
            targets_[target] = _port_target(entry, f"{where} {name}")
        if not targets_:
            raise SignaturesError(f"{where}: a port row needs at least one target")
        result.append(
            Port(
                id=row["id"],
                title=row["title"],
                packages=tuple(match.get("packages", ())),
                binaries=tuple(match.get("binaries", ())),
                runtimes=tuple(match.get("runtimes", ())),
                targets=targets_,
            )
        )
    return tuple(result)


def port_for(
    package: str | None = None, binary_path: str | None = None, runtime: str | None = None
) -> Port | None:
    """The port row for a component: by package name first, then the binary's basename,
    then the runtime name; None when nothing matches."""
    rows = ports()
    packages, binaries = _port_globs()
    found = None
    if package and packages is not None:
        found = packages.match(package)
    if found is None and binary_path and binaries is not None:
        found = binaries.match(binary_path.rstrip("/").rsplit("/", 1)[-1])
    if found is not None:
        assert found.lastgroup is not None
        return rows[int(found.lastgroup[4:])]
    if runtime:
        for row in rows:
            if runtime in row.runtimes:
                return row
    return None
