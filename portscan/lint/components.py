"""Findings for every component and for the image config, from signatures/ data.

A component is an ELF file or a script. What is judged (DESIGN.md, "What is judged"):
- the platform (C library, loader, compiler and C++ runtimes; signatures/platform-
  libraries.json) is never judged by its contents: it is replaced by wasi-libc;
- a language runtime's own binaries are judged by the runtime's WASI story (PS41x),
  and the libraries they load are the runtime's (graph.build.judged_graph leaves them out of
  what the image must port); a Go binary adds what its program links in of the
  standard library (inspect/apps/go.py, through inspect_tree), never its runtime's syscalls;
- the application code a runtime runs (inspect/apps/find.py) by what it uses of its
  language's library (lint/uses.py), as a component of kind `application`;
- a dynamic program by the C-library functions it reaches, itself and through its
  libraries, each with the call chain that reaches it (graph/reach.py); an application
  library by those of its imports that some program reaches, the others listed as
  latent (PS908); a file that no program loads or whose code cannot be walked by all it
  imports (PS909). Without reachability (`reach` None) symbols that a component's own
  libraries export are theirs, and their verdict flows to it through the graph (score.py);
- a static program by the libc functions its code calls (inspect/elf/program.py), else by
  its syscall sites (weaker evidence, said so by PS905);
- long-running patterns (signatures/patterns.json) from the same names;
- functions among those names that link but misbehave at run time (signatures/runtime-
  semantics.json, lint/semantics.py);
- path strings (/dev, /proc) that a sandbox lacks;
- the image config: exposed ports, volumes, user, stop signal, shell entrypoints.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence

from portscan.graph.digraph import DiGraph, descendants
from portscan.graph.reach import ImageReach, UnitReach
from portscan.inspect.packages import purl
from portscan.knowledge import rules
from portscan.knowledge import tables as sig
from portscan.knowledge.platform import (
    is_platform_library,
    runtime_platforms,
    split_version,
)
from portscan.knowledge.ruleids import (
    JUDGED_WHOLE,
    LATENT_IMPORTS,
    MALFORMED,
    PORT_EXISTS,
    UNRESOLVED_LIBRARY,
    UNSUPPORTED,
)
from portscan.lint import symbols as judge
from portscan.lint import uses as appjudge
from portscan.lint.config import lint_config
from portscan.lint.findings import Where, pattern_findings, rule_findings
from portscan.lint.semantics import judge_semantics
from portscan.model import (
    ApiUse,
    Application,
    Binary,
    ChainStep,
    Component,
    Evidence,
    Finding,
    ImageConfig,
    Runtime,
    Script,
    Verdict,
    file_node,
)


def exported_names(binary: Binary) -> frozenset[str]:
    """A library's exported names without their versions."""
    return frozenset(split_version(s)[0] for s in binary.exported_symbols)


def _application_libraries(graph: DiGraph, path: str) -> list[str]:
    """The non-platform libraries `path` loads, directly or through others."""
    libraries = []
    for node in descendants(graph, file_node(path)):
        library = graph.nodes[node].get("path")
        if graph.nodes[node].get("kind") == "library" and not is_platform_library(library):
            libraries.append(library)
    return libraries


def _own_imports(
    binary: Binary, path: str, graph: DiGraph, binaries: Mapping[str, Binary]
) -> list[str]:
    """Imports not satisfied by the component's own libraries (those are theirs to
    answer for). Versioned names are kept: the version tag names their library."""
    unversioned = [s for s in binary.imported_symbols if "@" not in s]
    if not unversioned:
        return list(binary.imported_symbols)
    exports = [exported_names(binaries[lib]) for lib in _application_libraries(graph, path)]
    theirs = {s for s in unversioned if any(s in names for names in exports)}
    return [s for s in binary.imported_symbols if s not in theirs]


def lint_binary(
    binary: Binary,
    where: Where,
    graph: DiGraph,
    binaries: Mapping[str, Binary],
    as_of: str | None = None,
    go_uses: Sequence[ApiUse] = (),
    wasix_libc: str | None = None,
    reach: ImageReach | None = None,
) -> list[Finding]:
    """Findings for one ELF component (empty for the platform: it is not judged).
    `go_uses` are what a Go program links in of the standard library; `wasix_libc` picks
    the wasix-libc flavour wasix is judged by (None: the default); `reach` is what the
    image's programs reach of their libraries (None: judge each file by all it imports).
    What the native build needs comes first; a known Wasm port of the program (PS430)
    then decides the targets it covers."""
    if binary.error:
        return rule_findings(MALFORMED, where, f"{where.path}: {binary.error}", binary.error)
    if is_platform_library(where.path, binary.soname):
        return []
    native = _native_findings(binary, where, graph, binaries, as_of, go_uses, wasix_libc, reach)
    return native + port_findings(where, binary.runtime, native)


def port_findings(
    where: Where, runtime: Runtime | None, native: Sequence[Finding]
) -> list[Finding]:
    """PS430 per target that a known port of the component covers (signatures/ports.json):
    shim when the native build needs nothing the port lacks, else the native verdict,
    with what the port lacks named; a component older than the port says to upgrade."""
    _, _, package, package_version = purl.key(where.package) if where.package else ("",) * 4
    version = (runtime.version if runtime else None) or package_version
    port = sig.port_for(package or None, where.path, runtime.name if runtime else None)
    if port is None:
        return []
    rule = rules.get_rule(PORT_EXISTS)
    findings = []
    for target, info in port.targets.items():
        at = [f for f in native if f.target is target]
        short = sorted({f.capability for f in at if f.capability in info.lacks})
        verdict = rule.verdict(target)
        if short:
            verdict = Verdict.worst([verdict, *(f.verdict for f in at if f.capability in short)])
        urls = ", ".join(sig.references()[r].location for r in info.references)
        lacks = f"; it lacks {', '.join(info.lacks)}" if info.lacks else ""
        uses = f", and this program uses {', '.join(short)}" if short else ""
        older = info.from_version and version and _older(version, info.from_version)
        upgrade = f"; it is of {info.from_version} or later, this is {version}: upgrade first"
        message = f"{where.path}: {info.port} exists ({urls}){lacks}{uses}"
        message += upgrade if older else ""
        evidence = Evidence(where.path, package=where.package, layer=where.layer, detail=info.port)
        findings.append(Finding(rule.id, target, verdict, None, message, [evidence]))
    return findings


def _older(version: str, floor: str) -> bool:
    """Whether a version (`3.11.2`, Debian's `3.11.2-6+deb12u2`, `1:7.4.33-1`) is older
    than `floor`, comparing their leading numbers."""

    def numbers(text: str) -> tuple[int, ...]:
        text = text.split(":", 1)[-1].split("-", 1)[0]
        return tuple(int(n) for n in re.findall(r"\d+", text)[:3])

    return numbers(version) < numbers(floor)


def _native_findings(
    binary: Binary,
    where: Where,
    graph: DiGraph,
    binaries: Mapping[str, Binary],
    as_of: str | None,
    go_uses: Sequence[ApiUse],
    wasix_libc: str | None,
    reach: ImageReach | None = None,
) -> list[Finding]:
    """What the native build of one (non-platform, well-formed) ELF file asks for."""
    findings: list[Finding] = []
    runtime = binary.runtime.name if binary.runtime else None
    if runtime in rules.runtime_rules():
        rule = rules.runtime_rules()[runtime]
        version = f" {binary.runtime.version}" if binary.runtime.version else ""
        message = f"{where.path} is {rule.title}{version}"
        findings += rule_findings(rule.id, where, message, detail=f"runtime {runtime}{version}")
        if runtime == "go":  # the program's own use of the standard library
            findings += appjudge.judge_uses(
                go_uses,
                "go",
                f"the Go program {where.path}",
                lambda _path: where.package,
                lambda _path: where.layer,
                "linked in: the Go linker keeps only reachable functions",
            )
        if runtime in runtime_platforms():
            return findings
    findings += _missing_libraries(where, graph)
    if binary.imported_symbols:
        own, chains, notes = _judged_imports(binary, where, graph, binaries, reach)
        findings += notes
        findings += judge.judge_symbols(
            own,
            file=where.path,
            package=where.package,
            layer=where.layer,
            as_of=as_of,
            wasix_libc=wasix_libc,
            chains=chains,
        )
        findings += judge_semantics(own, where, as_of=as_of, chains=chains)
        if binary.file_type != "shared-library":
            findings += pattern_findings(own, where)
    elif binary.linked_calls:
        findings += judge.judge_symbols(
            binary.linked_calls,
            file=where.path,
            package=where.package,
            layer=where.layer,
            assume_libc=True,
            origin="linked in",
            as_of=as_of,
            wasix_libc=wasix_libc,
        )
        findings += judge_semantics(binary.linked_calls, where, as_of=as_of, origin="linked in")
        findings += pattern_findings(binary.linked_calls, where)
    elif binary.syscalls is not None and binary.syscalls.resolved:
        sites = [(s.name or f"#{s.number}", s.address) for s in binary.syscalls.resolved]
        findings += judge.judge_syscalls(
            sites, file=where.path, package=where.package, layer=where.layer
        )
    elif binary.linkage.startswith("static") or binary.file_type == "relocatable":
        findings += rule_findings(
            UNSUPPORTED, where, f"{where.path}: nothing to judge it by", "no symbols, no syscalls"
        )
    findings += judge.judge_paths(
        binary.path_strings, file=where.path, package=where.package, layer=where.layer
    )
    return findings


def _judged_imports(
    binary: Binary,
    where: Where,
    graph: DiGraph,
    binaries: Mapping[str, Binary],
    reach: ImageReach | None,
) -> tuple[list[str], Mapping[str, tuple[ChainStep, ...]], list[Finding]]:
    """The imports a component is judged by, the chains that reach them, and the notes
    (PS908, PS909) that say how they were chosen."""
    if reach is None:
        return _own_imports(binary, where.path, graph, binaries), {}, []
    unit = reach.units.get(where.path)
    if unit is not None:
        notes = []
        if binary.file_type == "shared-library":
            why = "no program of the image loads it"
            message = f"{where.path}: {why}; judged on everything it imports"
            notes = rule_findings(JUDGED_WHOLE, where, message, why)
        return list(unit.platform), unit.platform, notes
    own = _own_imports(binary, where.path, graph, binaries)
    library = reach.libraries.get(where.path)
    if library is None or library.whole:
        why = library.whole if library else "no program whose reach was worked out loads it"
        message = f"{where.path}: {why}; judged on everything it imports"
        return own, {}, rule_findings(JUDGED_WHOLE, where, message, why)
    latent = [s for s in own if s not in library.imports]
    notes = []
    if latent:
        names = [split_version(s)[0] for s in latent]
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        message = f"{where.path}: no program reaches {shown}"
        notes = rule_findings(LATENT_IMPORTS, where, message, "not reached: " + ", ".join(names))
    return [s for s in own if s in library.imports], library.imports, notes


def _missing_libraries(where: Where, graph: DiGraph) -> list[Finding]:
    node = file_node(where.path)
    if node not in graph:
        return []
    missing = [  # a missing platform library does not matter: wasi-libc replaces it
        graph.nodes[target]["name"]
        for _, target, kind in graph.out_edges(node, data="kind")
        if kind == "needed"
        and graph.nodes[target].get("kind") == "missing"
        and not is_platform_library(graph.nodes[target]["name"])
    ]
    if not missing:
        return []
    names = ", ".join(missing)
    return rule_findings(UNRESOLVED_LIBRARY, where, f"{where.path} needs {names}: not found", names)


def lint_script(script: Script, where: Where) -> list[Finding]:
    """A script with no interpreter in the image cannot start (PS902 as for libraries)."""
    if script.resolved_interpreter:
        return []
    message = f"{where.path}: interpreter {script.interpreter} is not in the image"
    return rule_findings(UNRESOLVED_LIBRARY, where, message, script.interpreter_line)


def lint_image(
    config: ImageConfig,
    graph: DiGraph,
    binaries: Mapping[str, Binary],
    scripts: Mapping[str, Script],
    owner_of: Mapping[str, str],
    layer_of: Mapping[str, int],
    reachable: set[str],
    as_of: str | None = None,
    applications: Sequence[Application] = (),
    go_uses: Mapping[str, Sequence[ApiUse]] | None = None,
    wasix_libc: str | None = None,
    reach: ImageReach | None = None,
    early: EarlyJudge | None = None,
) -> tuple[list[Component], list[Finding]]:
    """Every ELF file and script as a `Component` with its findings, every application
    as one of kind `application` (at its entry file: a script there becomes it), plus
    the findings of the image config. Verdicts and plans are score.py's. `as_of` (ISO
    date) judges against wasi-libc as it was then (signatures/wasi-libc-notes.json);
    `wasix_libc` judges wasix by that wasix-libc flavour (signatures/wasix-libc.json);
    `reach` judges programs and libraries by what the programs reach (graph/reach.py).
    `early`, made with the same inputs, holds programs judged already (scan.py)."""
    components = []
    judge = early or EarlyJudge(graph, binaries, owner_of, layer_of, as_of, go_uses, wasix_libc)
    for path in sorted({*binaries, *scripts}):
        where = Where(path, owner_of.get(path), layer_of.get(path))
        binary = binaries.get(path)
        judged_on = ""
        if binary is not None:
            platform = not binary.error and is_platform_library(path, binary.soname)
            kind = "platform" if platform else _elf_kind(binary)
            findings = judge.findings.get(path)
            if findings is None:
                findings = judge.judge(path, reach)
            runtime = binary.runtime.name if binary.runtime else None
            if reach is not None and path in reach.units:
                judged_on = "reach" if binary.file_type != "shared-library" else "whole"
            elif reach is not None and kind == "library":
                library = reach.libraries.get(path)
                judged_on = "reach" if library is not None and not library.whole else "whole"
        else:
            kind, findings, runtime = "script", lint_script(scripts[path], where), None
        components.append(
            Component(
                id=file_node(path),
                kind=kind,
                path=path,
                layer=where.layer,
                package=where.package,
                reachable=file_node(path) in reachable,
                runtime=runtime,
                findings=findings,
                judged_on=judged_on,
            )
        )
    by_id = {component.id: component for component in components}
    for app in applications:
        findings = appjudge.lint_application(app, owner_of.get, layer_of.get)
        component = by_id.get(file_node(app.entry))
        if component is None:
            component = Component(
                id=file_node(app.entry),
                kind="application",
                path=app.entry,
                layer=layer_of.get(app.entry),
                package=owner_of.get(app.entry),
                reachable=file_node(app.entry) in reachable,
            )
            components.append(component)
        component.kind = "application"
        component.findings += findings
    return components, lint_config(config, graph, scripts)


class EarlyJudge:
    """How an image's ELF files are judged (`judge`, which `lint_image` calls), and
    programs judged as soon as their reach is known (graph/reach.py's `done`), a piece
    at a time while the reachability stage waits for its helper (`step`), so the
    process's waits judge what `lint_image` would judge after: `findings`, by path. A
    program's findings depend on its own reach alone, so they are the same whenever
    they are made."""

    def __init__(
        self,
        graph: DiGraph,
        binaries: Mapping[str, Binary],
        owner_of: Mapping[str, str],
        layer_of: Mapping[str, int],
        as_of: str | None = None,
        go_uses: Mapping[str, Sequence[ApiUse]] | None = None,
        wasix_libc: str | None = None,
    ) -> None:
        self._inputs = (graph, binaries, owner_of, layer_of, as_of, go_uses or {}, wasix_libc)
        self._ready: deque[tuple[str, UnitReach]] = deque()
        self.findings: dict[str, list[Finding]] = {}

    def done(self, path: str, unit: UnitReach) -> None:
        """`path`'s reach is known: it can be judged."""
        self._ready.append((path, unit))

    def step(self) -> bool:
        """Judge one program whose reach is known; False when none waits."""
        if not self._ready:
            return False
        path, unit = self._ready.popleft()
        self.findings[path] = self.judge(path, ImageReach(units={path: unit}))
        return True

    def judge(self, path: str, reach: ImageReach | None) -> list[Finding]:
        """`lint_binary` of the ELF file at `path`, with this image's inputs."""
        graph, binaries, owner_of, layer_of, as_of, go_uses, wasix_libc = self._inputs
        where = Where(path, owner_of.get(path), layer_of.get(path))
        uses = go_uses.get(path, ())
        return lint_binary(binaries[path], where, graph, binaries, as_of, uses, wasix_libc, reach)


def _elf_kind(binary: Binary) -> str:
    return "library" if binary.file_type == "shared-library" else "executable"
