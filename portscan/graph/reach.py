"""What each program reaches of its libraries, function by function (docs/reachability.md).

A *unit* is an ELF file that no other ELF of the image loads: a program, a plugin, an
extension module, a library nothing loads. Its own imports are all reached (its code is
judged whole). Each import is bound, as the loader binds it, to the first object of the
unit's global scope that exports it: the unit, then its DT_NEEDED libraries breadth-first
(`load_order`), honouring a version tag when the import has one. An import bound to a
platform library (the C library, the loader, the C++ runtime) is a *platform function
reached*, the thing the targets are judged by; one that nothing exports is reached as it
is (judged as an unattributed symbol). An import bound to an application library is a
root in that library: its call graph (inspect/elf/callgraph.py) is walked on demand from
the root, and what the walk imports is bound the same way, library after library. Every
loaded library's constructors are roots too, and so are the functions of another
library that a file calling dlsym names in its read-only strings (`_dlsym_names`).

A library that cannot be walked (unsupported architecture, no function starts, the walk
bound hit, over MAX_WALKED_BYTES, its bytes not kept) is taken whole, every import
reached, and says so.
Results per (library digest, root) are cached for the process, so libraries shared by
several programs, or by several images of an audit, are walked once; with a
`ReachStore` (the scan cache, portscan.audit.cache) they outlive the process too.
The units are walked side by side in rounds, the walks of each round in two processes
(`reach_image`; docs/reachability.md says how and why the answers stay the same).
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from portscan.graph.digraph import DiGraph
from portscan.inspect.elf.callgraph import Reach
from portscan.inspect.elf.content import locate
from portscan.inspect.elf.walks import NOT_KEPT, WalkHelper, Walks, kept_strings
from portscan.knowledge.platform import is_platform_library, runtime_platforms, split_version
from portscan.model import WHOLE, Binary, ChainStep, file_node

try:  # `_reach_unit`'s binding loops in C (_binding.c), if it was built
    from portscan.graph import _binding
except ImportError:  # pragma: no cover - built by setup.py; the Python is the fallback
    _binding = None

CONSTRUCTORS = "<constructors>"  # the root label of a library's constructors


@dataclass
class LibraryReach:
    """What the image's units reach of one application library."""

    path: str
    imports: dict[str, tuple[ChainStep, ...]] = field(default_factory=dict)  # import -> chain
    whole: str = ""  # why the library was taken whole, if it was


@dataclass
class UnitReach:
    """What one unit reaches: `platform[name]` is the shortest chain from the unit to a
    platform function (or an import nothing exports), name as imported (`f@VERSION`)."""

    path: str
    platform: dict[str, tuple[ChainStep, ...]] = field(default_factory=dict)
    libraries: list[str] = field(default_factory=list)  # application libraries, load order
    whole: dict[str, str] = field(default_factory=dict)  # library -> why taken whole
    # library -> its imports (as it spells them) this unit reaches, each with a chain
    inside: dict[str, dict[str, tuple[ChainStep, ...]]] = field(default_factory=dict)


@dataclass
class ImageReach:
    """The reach of every unit, and of every application library over all units."""

    units: dict[str, UnitReach] = field(default_factory=dict)
    libraries: dict[str, LibraryReach] = field(default_factory=dict)


class ReachStore(Protocol):
    """Keeps walks across processes: (library digest, root or None) -> `Reach`, each in
    its stored form, `codec.pack(reach, walk_level)`, which the helper makes for the
    walks it answers (`packed`)."""

    walk_level: int

    def get_reach(self, digest: str, root: str | None) -> Reach | None: ...

    def put_reach(
        self, digest: str, root: str | None, reach: Reach, packed: bytes | None = None
    ) -> None: ...


class _Graphs:
    """The walks of an image's libraries, by content digest and root: from the process's
    cache, the store, else made in batches (`start`, `finish`), each file's here or in
    the helper (inspect/elf/walks.py), whichever has its graph open."""

    def __init__(
        self,
        content_dir: str | None,
        store: ReachStore | None = None,
        helper: subprocess.Popen[bytes] | None = None,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.idle = idle  # other work, a piece a call, while the helper works (False: none)
        self.here = Walks(content_dir)
        self.helper = None if helper is None else WalkHelper(content_dir, helper, self.here.budget)
        self.side: dict[str, int] = {}  # digest -> where its graph is: 0 here, 1 the helper
        self.shared = 0  # the sizes of the files shared out so far (`_share`)
        self.spent = [0.0, 0.0]  # seconds of walks made here, and in the helper
        self.other = 0.0  # seconds of other work here while the helper walked (`idle`)
        self.unwalked: dict[str, str] = {}  # digest -> why it has no graph
        self.sent: list[tuple[str, str | None]] = []  # walks the helper is making
        self.kept: set[tuple[str, str | None]] = set()  # process-cached walks seen in `store`
        self._strings: dict[str, frozenset[str] | None] = {}  # digest -> `strings`

    def strings(self, binary: Binary) -> frozenset[str] | None:
        """The identifier-like strings of the file's read-only data, read here from its
        headers and that data (walks.kept_strings: no call graph is built for them),
        once while the file is needed (`release`); None where they cannot be read."""
        digest = binary.sha256 or ""
        if digest not in self._strings:
            self._strings[digest] = kept_strings(self.here.content_dir, digest)
        return self._strings[digest]

    def _lost(self) -> None:
        """The helper died: its files' graphs open here from now on."""
        if self.helper is not None:
            self.helper.close()
            self.helper = None

    def release(self, digests: list[str]) -> None:
        """Forget the call graphs of `digests`: no later walk opens them (their walks
        stay cached), so an image's memory holds the graphs still needed, not all."""
        self.here.release(digests)
        for digest in digests:
            self._strings.pop(digest, None)
        if self.helper is not None:
            self.helper.release([d for d in digests if self.side.get(d) == 1])

    def close(self) -> None:
        if self.helper is not None:
            self.helper.close()
            self.helper = None

    def known(self, digest: str, root: str | None) -> Reach | str | None:
        """What `root` (None: the constructors) reaches in the file of this digest, or
        why unknown; None while the walk is still to be made (`start`)."""
        if not digest:
            return NOT_KEPT
        reason = self.unwalked.get(digest)
        if reason is not None:
            return reason
        key = (digest, root)
        cached = _REACH_CACHE.get(key)
        if cached is not None and self.store is not None and key not in self.kept:
            self.kept.add(key)  # walked earlier in this process: the store keeps it too
            if self.store.get_reach(digest, root) is None:
                self.store.put_reach(digest, root, cached)
        if cached is None and self.store is not None:
            cached = self.store.get_reach(digest, root)
            if cached is not None:
                self._remember(key, cached)
        if cached is None:
            return None
        if not cached.complete:
            return f"{cached.status}: {cached.note}"
        return cached

    def start(self, walks: set[tuple[str, str | None]]) -> None:
        """Make those of these walks not made yet, in one fixed order (each file's by
        root, its constructors first) whatever the split, a file's where its graph is:
        the helper's are handed to it, this side's made now; `finish` takes the
        helper's answers (the caller goes on meanwhile with what this side's allow)."""
        self.finish()
        batch = sorted(
            (w for w in walks if self.known(*w) is None),
            key=lambda w: (w[0], w[1] is not None, w[1] or ""),
        )
        self._share({w[0] for w in batch if w[0] not in self.side})
        there = [w for w in batch if self._there(w[0])]
        if there and self.helper is not None:
            self.helper.send(there, None if self.store is None else self.store.walk_level)
            self.sent = there
        began = time.perf_counter()
        for walk in batch:
            if not self._there(walk[0]):
                self._settle(walk, self.here.walk(*walk))
        self.spent[0] += time.perf_counter() - began
        self.here.drop_pages()

    def finish(self) -> None:
        """Take the helper's answers to the walks `start` handed it, if any."""
        there, self.sent = self.sent, []
        if not there or self.helper is None:
            return
        began = time.perf_counter()
        while self.idle is not None and not self.helper.answered() and self.idle():
            pass  # other work meanwhile
        self.other += time.perf_counter() - began
        try:
            answers, packed, seconds = self.helper.receive()
            self.spent[1] += seconds
        except EOFError:
            self._lost()
            answers = [self.here.walk(*walk) for walk in there]
            packed = [None] * len(answers)
        for walk, answer, form in zip(there, answers, packed, strict=True):
            self._settle(walk, answer, form)

    def _share(self, digests: set[str]) -> None:
        """Give each of these files, first walked now, to a side: the largest first, each
        to the side that has been busy for less time so far (walking, and here the other
        work done while the helper walked), counting what the files given it this round
        may cost (their sizes up to `_COST_CAP`, at the seconds per byte walked so far).
        Where a file goes changes no answer, only the time."""
        kept = {d: locate(self.here.content_dir, d) for d in digests}
        sizes = {d: min(k[2], _COST_CAP) if k else 0 for d, k in kept.items()}
        rate = sum(self.spent) / self.shared if self.shared else _SECONDS_PER_BYTE
        expected = [self.spent[0] + self.other, self.spent[1]]
        for digest in sorted(sizes, key=lambda d: (-sizes[d], d)):
            side = int(self.helper is not None and expected[1] < expected[0])
            self.side[digest] = side
            self.shared += sizes[digest]
            expected[side] += sizes[digest] * rate

    def _there(self, digest: str) -> bool:
        """Whether the helper walks this file (`_share`)."""
        return self.side[digest] == 1 and self.helper is not None

    def _settle(
        self, walk: tuple[str, str | None], answer: Reach | str, packed: bytes | None = None
    ) -> None:
        """Keep a walk's answer (`packed`: its stored form, when the helper made it)."""
        if isinstance(answer, str):
            self.unwalked[walk[0]] = answer
            return
        self._remember(walk, answer)
        if self.store is not None:
            self.store.put_reach(walk[0], walk[1], answer, packed)

    def _remember(self, key: tuple[str, str | None], reach: Reach) -> None:
        if len(_REACH_CACHE) >= _REACH_CACHE_SIZE:
            _REACH_CACHE.pop(next(iter(_REACH_CACHE)))
        _REACH_CACHE[key] = reach
        self.kept.add(key)


# What a file's walks cost grows with its size up to about this: past it, the budget of
# instructions disassembled (callgraph.GRAPH_BUDGET) ends them (postgres: 1 to 23 MiB).
_COST_CAP = 4 << 20
_SECONDS_PER_BYTE = 0.1 / (1 << 20)  # a first guess of what walking a file costs
# Units walked side by side, in path order, a wave at a time: more units share rounds
# (and the helper's answers), fewer keep fewer call graphs open at once (a graph is
# dropped when its last unit is done). postgres: 32 -> 232 MiB, all at once 276 MiB.
_WAVE = 32


_REACH_CACHE: dict[tuple[str, str | None], Reach] = {}
_REACH_CACHE_SIZE = 200_000


def load_order(graph: DiGraph, path: str) -> list[str]:
    """The libraries `path` loads, breadth-first over DT_NEEDED as the loader does."""
    order: list[str] = []
    seen = {file_node(path)}
    queue = deque([file_node(path)])
    while queue:
        node = queue.popleft()
        for target in graph.successors(node):
            if graph.edges[node, target].get("kind") != "needed" or target in seen:
                continue
            seen.add(target)
            library = graph.nodes[target].get("path")
            if library is not None:
                order.append(library)
                queue.append(target)
    return order


class _Symbols:
    """Per-image indexes of the ELF files' symbols, each built once on first use."""

    def __init__(self, binaries: Mapping[str, Binary]) -> None:
        self.binaries = binaries
        self._exports: dict[str, dict[str, tuple[str | None, ...]]] = {}
        self._versions: dict[str | None, tuple[str | None]] = {}
        self._imports: dict[str, dict[str, str]] = {}
        self._dlsym: dict[str, bool] = {}
        self._steps: dict[str, _Steps] = {}  # file -> function -> its step
        self._split: dict[str, tuple[str, str | None]] = {}
        self._scopes: dict[tuple[str, ...], _Scope] = {}
        self._walked: dict[tuple[str, str], tuple[Reach, list]] = {}
        self._named: dict[tuple[str, str], frozenset[str]] = {}  # `named`

    def split(self, symbol: str) -> tuple[str, str | None]:
        """`split_version(symbol)`, each symbol bound split once for the image."""
        found = self._split.get(symbol)
        if found is None:
            found = self._split[symbol] = split_version(symbol)
        return found

    def scope(self, members: list[str]) -> _Scope:
        """The one _Scope of these libraries (a load order) for the image: units loading
        the same libraries share it, and what it has bound."""
        key = tuple(members)
        found = self._scopes.get(key)
        if found is None:
            found = self._scopes[key] = _Scope(members, self)
        return found

    def exports(self, path: str) -> dict[str, tuple[str | None, ...]]:
        """name -> the versions `path` exports it under (None: unversioned). Tuples, not
        sets: most names have one version, and an image's indexes hold some 100k names."""
        found = self._exports.get(path)
        if found is None:
            found = self._exports[path] = {}
            for symbol in self.binaries[path].exported_symbols:
                name, version = split_version(symbol)  # once per file: not kept in `split`
                known = found.get(name)
                if known is None:  # one tuple (and version string) per version, shared
                    found[name] = self._versions.setdefault(version, (version,))
                elif version not in known:
                    found[name] = (*known, version)
        return found

    def step(self, file: str, function: str) -> ChainStep:
        """The one ChainStep of (file, function) for the image: units' chains share them."""
        return self.steps(file)[function]

    def steps(self, file: str) -> _Steps:
        """The ChainSteps of `file`'s functions, by name (`step`)."""
        found = self._steps.get(file)
        if found is None:
            found = self._steps[file] = _Steps(file)
        return found

    def walked(
        self, library: str, label: str, found: Reach
    ) -> list[tuple[str, str, tuple[ChainStep, ...]]]:
        """What the walk `found` from `label` in `library` imports, by name: (name, the
        import as `library` spells it, the steps from the root to the call), made once
        per (library, walk) for all the units that take it."""
        key = (library, label)
        made = self._walked.get(key)
        if made is None or made[0] is not found:
            of_file = self.steps(library)
            root, names, spelled = of_file[label], sorted(found.imports), self.spelled(library)
            if _binding is not None:
                entries = _binding.walk_entries(names, found.chains, of_file, root, spelled)
            else:
                entries = []
                for name in names:
                    inner = found.chains[name][1:-1]  # without the root label and the import
                    steps = (root, *map(of_file.__getitem__, inner))
                    entries.append((name, spelled.get(name, name), steps))
            made = self._walked[key] = (found, entries)
        return made[1]

    def named(
        self,
        path: str,
        member: str,
        exports: Mapping[str, object],
        strings: Callable[[], frozenset[str] | None],
    ) -> frozenset[str]:
        """The `strings()` of `path` (None: it has none) that `member` exports
        (`exports`), once per pair: the strings are asked for only then."""
        key = (path, member)
        found = self._named.get(key)
        if found is None:
            text = strings()
            found = self._named[key] = frozenset() if text is None else text.intersection(exports)
        return found

    def calls_dlsym(self, path: str) -> bool:
        """Whether `path` imports dlsym or dlvsym."""
        found = self._dlsym.get(path)
        if found is None:
            imports = self.binaries[path].imported_symbols
            found = self._dlsym[path] = any(split_version(s)[0] in DLSYM for s in imports)
        return found

    def spelled(self, path: str) -> dict[str, str]:
        """name -> the import of `path` as its facts spell it (with its version tag)."""
        found = self._imports.get(path)
        if found is None:
            found = self._imports[path] = {}
            for symbol in self.binaries[path].imported_symbols:
                found.setdefault(split_version(symbol)[0], symbol)
        return found


class _Steps(dict[str, ChainStep]):
    """One file's ChainSteps by function name, each made when first asked for."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def __missing__(self, function: str) -> ChainStep:
        found = self[function] = ChainStep(self.file, function)
        return found


class _Scope:
    """The libraries of a unit's global lookup scope, in load order (the unit itself is
    looked up before them: `_reach_unit`'s `provider`)."""

    def __init__(self, members: list[str], symbols: _Symbols) -> None:
        binaries = symbols.binaries
        self.members = [m for m in members if m in binaries and not binaries[m].error]
        self.exports = [symbols.exports(m) for m in self.members]
        self._split = symbols.split
        self._bound: dict[str, str | None] = {}

    def bind(self, symbol: str) -> str | None:
        """The member that provides `symbol` (`name` or `name@VERSION`), if any."""
        found = self._bound.get(symbol, _UNBOUND)
        if found is not _UNBOUND:
            return found
        name, version = self._split(symbol)
        found = None
        for member, exports in zip(self.members, self.exports, strict=True):
            versions = exports.get(name)
            if versions is not None and _exports_version(versions, version):
                found = member
                break
        self._bound[symbol] = found
        return found


_UNBOUND: Any = object()  # `_Scope.bind`: a symbol not bound yet


def _exports_version(versions: tuple[str | None, ...] | None, version: str | None) -> bool:
    """Whether a file exporting a name under `versions` (None: not at all) provides it
    for an import of `version` (None: unversioned)."""
    return versions is not None and (version is None or version in versions or None in versions)


def reach_image(
    graph: DiGraph,
    binaries: Mapping[str, Binary],
    content_dir: str | None,
    reached: set[str] | frozenset[str] = frozenset(),
    store: ReachStore | None = None,
    helper: subprocess.Popen[bytes] | None = None,
    done: Callable[[str, UnitReach], None] | None = None,
    idle: Callable[[], bool] | None = None,
) -> ImageReach:
    """Walk every unit of the image (see the module docstring). `reached` are the graph
    nodes the image's entry reaches: a library they load is judged by what they reach
    of it, another by what every unit that loads it reaches. `store` keeps and returns
    walks across processes. `helper`, a process serving walks (inspect/elf/walks.py),
    makes about half of them, and is stopped at the end. `done(path, unit)` is told
    each unit's reach once it is known; `idle()` does a piece of other work while this
    process waits for the helper (False: it has none), such as judging those units.

    The units run side by side, round by round: each goes as far as the walks made
    allow, and waits for the ones its queue needs next; those of every waiting unit are
    then made at once (`_Graphs.start`). A unit's answer depends only on the walks, and
    the walks only on the rounds, not on the process that made them."""
    graphs = _Graphs(content_dir, store, helper, idle)
    symbols = _Symbols(binaries)
    loaded = {
        graph.nodes[b].get("path")
        for a, b, kind in graph.edges(data="kind")
        if kind == "needed" and a != b
    }
    result = ImageReach()
    units = [p for p in sorted(binaries) if p not in loaded and _walkable_unit(p, binaries[p])]
    orders = {path: load_order(graph, path) for path in units}
    # the content digests each unit's walk may open, and how many unfinished units may
    opens = {
        path: {d for m in (path, *orders[path]) if m in binaries and (d := binaries[m].sha256)}
        for path in units
    }
    unfinished = Counter(d for path in units for d in opens[path])
    running: dict[str, Generator[_Queue, None, UnitReach]] = {}
    waiting: dict[str, _Queue] = {}  # the queue of each unit waiting for a walk
    finished: dict[str, UnitReach] = {}

    def advance(path: str) -> None:
        """Run the unit until it waits for a walk (`waiting`) or is done."""
        try:
            waiting[path] = next(running[path])
        except StopIteration as stop:
            finished[path] = stop.value
            if done is not None:
                done(path, stop.value)
            del running[path]
            waiting.pop(path, None)
            unfinished.subtract(opens[path])
            graphs.release([d for d in opens[path] if unfinished[d] == 0])

    try:
        for start in range(0, len(units), _WAVE):
            for path in units[start : start + _WAVE]:
                running[path] = _reach_unit(path, orders[path], symbols, graphs)
                advance(path)
            while running:  # a round: the walks the waiting units' queues hold
                graphs.start(
                    {(binaries[lib].sha256 or "", r) for q in waiting.values() for lib, r, _ in q}
                )
                for path in list(running):  # as far as this side's walks allow, meanwhile
                    advance(path)
                graphs.finish()
                for path in list(running):
                    advance(path)
    finally:
        graphs.close()
    result.units = {path: finished[path] for path in units}
    users: dict[str, list[UnitReach]] = {}
    for unit in result.units.values():
        for library in unit.libraries:
            users.setdefault(library, []).append(unit)
    for library, units in users.items():
        # A library the image's entry reaches is judged by the units it reaches.
        units = [u for u in units if file_node(u.path) in reached] or units
        result.libraries[library] = _library_reach(library, units)
    return result


def _walkable_unit(path: str, binary: Binary) -> bool:
    """A dynamically linked, non-platform ELF file that is not a runtime's own binary."""
    if binary.error or binary.linkage != "dynamic" or is_platform_library(path, binary.soname):
        return False
    return not (binary.runtime is not None and binary.runtime.name in runtime_platforms())


def _reach_unit(
    path: str, order: list[str], symbols: _Symbols, graphs: _Graphs
) -> Generator[_Queue, None, UnitReach]:
    """What the unit at `path` reaches, its libraries loaded in `order` (`load_order`).
    Where the walk it needs next is not made yet, it yields its queue (the walks it
    needs are among those of its items) and goes on once the walk is made."""
    binaries = symbols.binaries
    scope = symbols.scope(order)
    split = symbols.split
    own = symbols.exports(path)

    unit = UnitReach(path, libraries=[
        lib for lib in order
        if lib in binaries and not binaries[lib].error
        and not is_platform_library(lib, binaries[lib].soname)
    ])  # fmt: skip
    application = set(unit.libraries)
    step = symbols.step
    start = (step(path, ""),)
    queue: _Queue = deque()
    done: set[tuple[str, str | None]] = set()  # (library, root) walked
    seen: dict[str, set[str]] = {}  # library -> its imports bound

    def bind(
        symbol: str,
        chain: tuple[ChainStep, ...],
        steps: tuple[ChainStep, ...] = (),
        inside: dict[str, tuple[ChainStep, ...]] | None = None,
    ) -> None:
        """Bind `symbol`, reached by `chain` then `steps` (in a library's code, whose
        `unit.inside` entry is `inside`, or the unit's). The chain is put together only
        where it is kept. The provider is the first of the unit and its scope to export
        `symbol`, as the loader binds."""
        name, version = split(symbol)
        provider = path if _exports_version(own.get(name), version) else scope.bind(symbol)
        if provider in application:
            key = (provider, name)
            if key not in done:
                done.add(key)
                queue.append((provider, name, (*chain, *steps)))
        elif provider != path:  # the unit's own code is judged whole already
            known = unit.platform.get(symbol)
            # the shortest chain wins
            shorter = known is None or len(chain) + len(steps) + 1 < len(known)
            if shorter or (inside is not None and symbol not in inside):
                full = (*chain, *steps, step(provider or "", name))
                if shorter:
                    unit.platform[symbol] = full
                if inside is not None:
                    inside.setdefault(symbol, full)

    state = None if _binding is None else (
        path, own, scope._bound, scope.members, scope.exports, symbols._split, split,
        application, done, queue, unit.platform, symbols._steps, symbols.steps,
    )  # fmt: skip

    def bind_all(
        imported: list[str],
        chain: tuple[ChainStep, ...],
        steps: tuple[ChainStep, ...] = (),
        inside: dict[str, tuple[ChainStep, ...]] | None = None,
    ) -> None:
        """`bind` each of `imported`, in C where it was built."""
        if state is not None:
            _binding.bind_symbols(imported, chain, steps, inside, state)
        else:
            for symbol in imported:
                bind(symbol, chain, steps, inside)

    bind_all(binaries[path].imported_symbols, start)
    for library in unit.libraries:  # after the program's own calls: chains through
        done.add((library, None))  # them come first where lengths tie
        queue.append((library, None, start))
    looked_up = False
    while True:
        while queue:
            library, root, chain = queue[0]
            binary = binaries[library]
            found = graphs.known(binary.sha256 or "", root)
            if found is None:  # wait: the next round makes what the queue needs
                yield queue
                continue
            queue.popleft()
            label = root if root is not None else CONSTRUCTORS
            if isinstance(found, str):
                if library in unit.whole:
                    continue  # every import of it is bound already
                unit.whole[library] = found
                steps = (step(library, label), step(library, WHOLE))
                bind_all(binary.imported_symbols, chain, steps, unit.inside.setdefault(library, {}))
                continue
            bound = seen.get(library)
            if bound is None:
                bound = seen[library] = set()
            inside = unit.inside.setdefault(library, {})
            entries = symbols.walked(library, label, found)
            if state is not None:  # the loop below, in C
                _binding.bind_walked(entries, bound, chain, inside, state)
                continue
            for name, symbol, steps in entries:
                if name in bound:  # bound already, by a chain at most as long
                    continue
                bound.add(name)
                bind(symbol, chain, steps, inside)
        looked = [s for s in unit.platform if split(s)[0] in DLSYM]
        if looked_up or not looked:
            return unit
        looked_up = True  # names the unit may look up by string: roots too
        for name, library in _dlsym_names(unit, scope, application, graphs, symbols):
            bind(name, (*unit.platform[looked[0]][:-1], ChainStep(library, f"dlsym({name})")))


DLSYM = frozenset({"dlsym", "dlvsym"})
# a unit's walks to take: (library, root or None for its constructors, chain so far)
_Queue = deque[tuple[str, str | None, tuple[ChainStep, ...]]]


def _dlsym_names(
    unit: UnitReach,
    scope: _Scope,
    application: set[str],
    graphs: _Graphs,
    symbols: _Symbols,
) -> list[tuple[str, str]]:
    """(name, file whose strings hold it) for every string of a file that calls dlsym
    (the unit, or a library it walked that imports dlsym) naming a function that another
    application library of the scope exports: what `dlsym(handle, "name")` can reach
    without importing it. A library's strings naming its own exports (error tables,
    OpenSSL's function names) are not taken."""
    callers = [unit.path] + [
        library
        for library in unit.libraries
        if library not in unit.whole and symbols.calls_dlsym(library)
    ]
    found: dict[str, str] = {}
    for path in callers:
        strings = functools.partial(graphs.strings, symbols.binaries[path])
        for member, exports in zip(scope.members, scope.exports, strict=True):
            if member in application and member != path:
                for text in symbols.named(path, member, exports, strings):
                    found.setdefault(text, path)
    return sorted(found.items())


def _library_reach(library: str, units: list[UnitReach]) -> LibraryReach:
    """What `units` reach of `library`'s imports, the shortest chain over the units."""
    found = LibraryReach(library)
    for unit in units:
        if library in unit.whole:
            found.whole = unit.whole[library]
        for symbol, chain in unit.inside.get(library, {}).items():
            known = found.imports.get(symbol)
            if known is None or len(chain) < len(known):
                found.imports[symbol] = chain
    return found
