"""Findings for every component and for the image config, from signatures/ data.

A component is an ELF file or a script. What is judged (DESIGN.md, "What is judged"):
- the platform (C library, loader, compiler and C++ runtimes; signatures/platform-
  libraries.json) is never judged by its contents: it is replaced by wasi-libc;
- a language runtime's own binaries are judged by the runtime's WASI story (PS41x),
  and the libraries they load are the runtime's (`judged_graph` leaves them out of
  what the image must port); a Go binary adds what its program links in of the
  standard library (inspect/goapp.py), never its runtime's syscalls;
- the application code a runtime runs (inspect/apps.py) by what it uses of its
  language's library (appjudge.py), as a component of kind `application`;
- a dynamic program or application library by the C-library-level symbols it
  imports; symbols that its own (non-platform) libraries export are theirs, and
  their verdict flows to it through the graph (score.py);
- a static program by the libc functions its code calls (inspect/program.py), else by
  its syscall sites (weaker evidence, said so by PS905);
- long-running patterns (signatures/patterns.json) from the same names;
- path strings (/dev, /proc) that a sandbox lacks;
- the image config: exposed ports, volumes, user, stop signal, shell entrypoints.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from portscan import appjudge, judge, rules
from portscan import signatures as sig
from portscan.graph import IMAGE, file_node
from portscan.inspect.goapp import go_uses
from portscan.model import (
    Application,
    Binary,
    Component,
    Evidence,
    Finding,
    ImageConfig,
    Script,
    Target,
)
from portscan.platform import is_platform_library, runtime_platforms

TARGETS: tuple[Target, ...] = tuple(Target)
MALFORMED = "PS901"
UNRESOLVED_LIBRARY = "PS902"
UNSUPPORTED = "PS904"
SHELL_ENTRYPOINT = "PS507"


@functools.cache
def _runtime_rules() -> dict[str, rules.Rule]:
    return {rule.runtime: rule for rule in rules.all_rules() if rule.runtime}


@functools.cache
def _patterns() -> tuple[tuple[str, tuple[frozenset[str], ...]], ...]:
    doc = sig.load("patterns.json")["patterns"]
    return tuple((p["rule"], tuple(frozenset(group) for group in p["all"])) for p in doc)


@dataclass(frozen=True)
class Where:
    """Where a component lives: for the evidence of its findings."""

    path: str
    package: str | None
    layer: int | None


def rule_findings(
    rule_id: str, where: Where, message: str, detail: str = "", targets: Sequence[Target] = TARGETS
) -> list[Finding]:
    """One finding per target for a rule whose verdict per target is data."""
    rule = rules.get_rule(rule_id)
    evidence = Evidence(where.path, package=where.package, layer=where.layer, detail=detail)
    return [
        Finding(rule.id, target, rule.verdict(target), rule.capability, message, [evidence])
        for target in targets
    ]


def pattern_findings(functions: Iterable[str], where: Where) -> list[Finding]:
    """PS50x patterns that the set of function names completes."""
    names = {judge.split_version(name)[0] for name in functions}
    names |= {judge.normalise(name)[0] for name in names}
    findings = []
    for rule_id, groups in _patterns():
        if all(group & names for group in groups):
            used = sorted(set().union(*(group & names for group in groups)))
            rule = rules.get_rule(rule_id)
            message = f"{rule.title}: {where.path} uses {', '.join(used)}"
            findings += rule_findings(rule_id, where, message, detail="uses " + ", ".join(used))
    return findings


def exported_names(binary: Binary) -> frozenset[str]:
    """A library's exported names without their versions."""
    return frozenset(judge.split_version(s)[0] for s in binary.exported_symbols)


def _application_libraries(graph: nx.DiGraph, path: str) -> list[str]:
    """The non-platform libraries `path` loads, directly or through others."""
    libraries = []
    for node in nx.descendants(graph, file_node(path)):
        library = graph.nodes[node].get("path")
        if graph.nodes[node].get("kind") == "library" and not is_platform_library(library):
            libraries.append(library)
    return libraries


def _own_imports(
    binary: Binary, path: str, graph: nx.DiGraph, binaries: Mapping[str, Binary]
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
    graph: nx.DiGraph,
    binaries: Mapping[str, Binary],
    as_of: str | None = None,
) -> list[Finding]:
    """Findings for one ELF component (empty for the platform: it is not judged)."""
    if binary.error:
        return rule_findings(MALFORMED, where, f"{where.path}: {binary.error}", binary.error)
    if is_platform_library(where.path, binary.soname):
        return []
    findings: list[Finding] = []
    runtime = binary.runtime.name if binary.runtime else None
    if runtime in _runtime_rules():
        rule = _runtime_rules()[runtime]
        version = f" {binary.runtime.version}" if binary.runtime.version else ""
        message = f"{where.path} is {rule.title}{version}"
        findings += rule_findings(rule.id, where, message, detail=f"runtime {runtime}{version}")
        if runtime == "go":  # the program's own use of the standard library
            findings += appjudge.judge_uses(
                go_uses(binary, where.path),
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
        own = _own_imports(binary, where.path, graph, binaries)
        findings += judge.judge_symbols(
            own, file=where.path, package=where.package, layer=where.layer, as_of=as_of
        )
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
        )
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


def _missing_libraries(where: Where, graph: nx.DiGraph) -> list[Finding]:
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


def lint_config(
    config: ImageConfig, graph: nx.DiGraph, scripts: Mapping[str, Script]
) -> list[Finding]:
    """Findings of the image configuration itself."""
    image = Where("(image config)", None, None)
    findings: list[Finding] = []
    if config.exposed_ports:
        ports = ", ".join(config.exposed_ports)
        findings += rule_findings("PS510", image, f"exposes {ports}", f"ExposedPorts: {ports}")
    if config.volumes:
        volumes = ", ".join(config.volumes)
        findings += rule_findings("PS511", image, f"declares volumes {volumes}", volumes)
    if config.user in ("", "0", "root", "0:0", "root:root"):
        findings += rule_findings("PS512", image, "runs as root", f"User: {config.user or '-'}")
    for _, target, kind in graph.out_edges(IMAGE, data="kind") if IMAGE in graph else ():
        path = graph.nodes[target].get("path")
        if kind == "entrypoint" and path in scripts:
            interpreter = scripts[path].interpreter_line
            message = f"the entrypoint {path} is a script ({interpreter})"
            findings += rule_findings(SHELL_ENTRYPOINT, image, message, interpreter)
    return findings


def lint_image(
    config: ImageConfig,
    graph: nx.DiGraph,
    binaries: Mapping[str, Binary],
    scripts: Mapping[str, Script],
    owner_of: Mapping[str, str],
    layer_of: Mapping[str, int],
    reachable: set[str],
    as_of: str | None = None,
    applications: Sequence[Application] = (),
) -> tuple[list[Component], list[Finding]]:
    """Every ELF file and script as a `Component` with its findings, every application
    as one of kind `application` (at its entry file: a script there becomes it), plus
    the findings of the image config. Verdicts and plans are score.py's. `as_of` (ISO
    date) judges against wasi-libc as it was then (signatures/wasi-libc-notes.json)."""
    components = []
    for path in sorted({*binaries, *scripts}):
        where = Where(path, owner_of.get(path), layer_of.get(path))
        binary = binaries.get(path)
        if binary is not None:
            platform = not binary.error and is_platform_library(path, binary.soname)
            kind = "platform" if platform else _elf_kind(binary)
            findings = lint_binary(binary, where, graph, binaries, as_of)
            runtime = binary.runtime.name if binary.runtime else None
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


def judged_graph(graph: nx.DiGraph, binaries: Mapping[str, Binary]) -> nx.DiGraph:
    """The graph as the verdicts see it: the libraries a language runtime loads (libuv
    and OpenSSL under node, libexpat under python) are the runtime's, replaced with it,
    so the `needed` edges out of runtime binaries are cut. What else loads them still
    reaches them, and every library keeps its own findings."""
    runtimes = {
        file_node(path)
        for path, binary in binaries.items()
        if binary.runtime is not None and binary.runtime.name in runtime_platforms()
    }
    view = graph.copy()
    view.remove_edges_from(
        [(a, b) for a, b, kind in graph.edges(data="kind") if kind == "needed" and a in runtimes]
    )
    return view


def _elf_kind(binary: Binary) -> str:
    return "library" if binary.file_type == "shared-library" else "executable"
