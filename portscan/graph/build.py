"""The dependency graph of an image, from its entrypoint down to packages (graph/digraph.py).

Nodes are keyed by strings: `image`, `file:/abs/path`, `missing:NAME`, `pkg:PURL`.
Edges carry a `kind`:
  entrypoint   image -> the program its ENTRYPOINT/CMD starts (exec or shell form)
  shell        image -> the shell of a shell-form command
  interpreter  script -> its `#!` interpreter; ELF -> its PT_INTERP loader
  exec         wrapper script -> what it `exec`s (a literal command, or CMD for "$@")
  needed       ELF -> the library its DT_NEEDED resolves to (ldpath.py), or `missing:`
  package      file -> the package that owns it
  application  image -> the application code a runtime runs (apps/find.py)
  extension    application -> a native extension module its code imports
Every ELF in the image gets its library edges, reachable or not, so components outside
the entrypoint's reach are still judged; `reachable()` says which ones the image runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from portscan.graph.digraph import DiGraph, descendants
from portscan.graph.ldpath import LoaderContext, find_library, loader_context, search_dirs
from portscan.inspect.commands import CommandWalker, Step, is_shell_command
from portscan.knowledge.platform import runtime_platforms
from portscan.layers import Tree
from portscan.model import IMAGE, Application, Binary, ImageConfig, Script, file_node, package_node


@dataclass
class GraphInputs:
    """What the graph is built from: the merged tree and the inspectors' facts."""

    tree: Tree
    config: ImageConfig
    binaries: Mapping[str, Binary]  # path -> ELF facts
    scripts: Mapping[str, Script] = field(default_factory=dict)
    owner_of: Mapping[str, str] = field(default_factory=dict)  # path -> package purl


class _Builder:
    def __init__(self, inputs: GraphInputs) -> None:
        self.inputs = inputs
        self.tree = inputs.tree
        self.graph = DiGraph()
        self.walker = CommandWalker(inputs.tree, inputs.config, inputs.scripts)
        self.workdir = self.walker.workdir
        self.env = inputs.config.env_dict()
        self._contexts: dict[tuple[int, str, str], LoaderContext] = {}
        self._found: dict[tuple[str, tuple[str, ...], int, str], str | None] = {}

    # -- nodes
    def add_file(self, path: str) -> str:
        node = file_node(path)
        if node not in self.graph:
            entry = self.tree.get(path)
            binary = self.inputs.binaries.get(path)
            kind = "script" if path in self.inputs.scripts else "file"
            if binary is not None:
                kind = "library" if binary.file_type == "shared-library" else "executable"
            self.graph.add_node(node, kind=kind, path=path, layer=entry.layer if entry else None)
            purl = self.inputs.owner_of.get(path)
            if purl:
                self.graph.add_node(package_node(purl), kind="package", purl=purl)
                self.graph.add_edge(node, package_node(purl), kind="package")
        return node

    # -- commands
    def add_steps(self, steps: Iterable[Step]) -> None:
        """Link each step of a command chain to who runs it; scripts get their
        interpreter edge before the walk descends into their `exec` lines."""
        for step in steps:
            source = IMAGE if step.parent is None else file_node(step.parent)
            if step.path is None:
                missing = f"missing:{step.argv[0]}"
                self.graph.add_node(missing, kind="missing", name=step.argv[0])
                self.graph.add_edge(source, missing, kind=step.kind)
                continue
            node = self.add_file(step.path)
            self.graph.add_edge(source, node, kind=step.kind)
            script = self.inputs.scripts.get(step.path)
            if script is not None and not is_shell_command(step.argv):
                self.add_interpreter(node, script)

    def add_interpreter(self, node: str, script: Script) -> None:
        if script.resolved_interpreter:
            interp = self.add_file(script.resolved_interpreter)
            self.graph.add_edge(node, interp, kind="interpreter")
        else:
            missing = f"missing:{script.interpreter}"
            self.graph.add_node(missing, kind="missing", name=script.interpreter)
            self.graph.add_edge(node, missing, kind="interpreter")

    # -- libraries
    def _context(self, binary: Binary) -> LoaderContext:
        key = (binary.elf_class, binary.machine, binary.libc)
        if key not in self._contexts:
            self._contexts[key] = loader_context(self.tree, self.env, *key)
        return self._contexts[key]

    def add_libraries(self, path: str, loaders: list[tuple[str, list[str]]]) -> None:
        binary = self.inputs.binaries.get(path)
        if binary is None or binary.error:
            return
        node = self.add_file(path)
        if binary.interpreter:
            interp = self.tree.resolve(binary.interpreter)
            target = self.add_file(interp) if interp else f"missing:{binary.interpreter}"
            if not interp:
                self.graph.add_node(target, kind="missing", name=binary.interpreter)
            self.graph.add_edge(node, target, kind="interpreter")
        if not binary.needed:
            return
        context = self._context(binary)
        dirs = tuple(search_dirs(path, binary.rpath, binary.runpath, loaders, context))
        next_loaders = [(path, binary.rpath), *loaders] if not binary.runpath else loaders
        for name in binary.needed:
            found = self._find(name, dirs, binary)
            if found is None:
                missing = f"missing:{name}"
                self.graph.add_node(missing, kind="missing", name=name)
                self.graph.add_edge(node, missing, kind="needed")
                continue
            already = file_node(found) in self.graph and any(
                k == "needed" for _, _, k in self.graph.in_edges(file_node(found), data="kind")
            )
            self.graph.add_edge(node, self.add_file(found), kind="needed")
            if not already:
                self.add_libraries(found, next_loaders)

    def _find(self, name: str, dirs: tuple[str, ...], loader: Binary) -> str | None:
        key = (name, dirs, loader.elf_class, loader.machine)
        if key not in self._found:

            def compatible(candidate: str) -> bool:
                other = self.inputs.binaries.get(candidate)
                return other is not None and (other.elf_class, other.machine) == (
                    loader.elf_class,
                    loader.machine,
                )

            self._found[key] = find_library(self.tree, name, dirs, compatible, self.workdir)
        return self._found[key]


def build_graph(inputs: GraphInputs) -> DiGraph:
    """The image's dependency graph; see the module docstring for nodes and edges."""
    builder = _Builder(inputs)
    graph = builder.graph
    graph.add_node(IMAGE, kind="image")
    config = inputs.config
    argv = [*config.entrypoint, *config.cmd] if config.entrypoint else list(config.cmd)
    if argv:
        builder.add_steps(builder.walker.walk(argv))
    for path in sorted(inputs.binaries):
        builder.add_libraries(path, [])
    for path, script in sorted(inputs.scripts.items()):
        node = builder.add_file(path)
        if not any(k == "interpreter" for _, _, k in graph.out_edges(node, data="kind")):
            builder.add_interpreter(node, script)
            builder.add_steps(builder.walker.script_steps(script, [], 0))
    return graph


def reachable(graph: DiGraph) -> set[str]:
    """Nodes the image's entrypoint reaches (packages included)."""
    return descendants(graph, IMAGE) if IMAGE in graph else set()


def unresolved(graph: DiGraph) -> list[tuple[str, str]]:
    """(who, missing name) for every command, interpreter or library not found."""
    return sorted(
        (source, graph.nodes[target]["name"])
        for source, target in graph.edges
        if graph.nodes[target].get("kind") == "missing"
    )


def link_applications(graph: DiGraph, applications: list[Application]) -> None:
    """Put each application into the graph: the image runs it (`application` edge), it
    needs its runtime (`interpreter` edge) and loads its native extension modules
    (`extension` edge); the verdicts of both flow into it."""
    for app in applications:
        node = file_node(app.entry)
        if node not in graph:
            graph.add_node(node, kind="application", path=app.entry)
        graph.add_edge(IMAGE, node, kind="application")
        if app.runtime is not None:
            runtime = file_node(app.runtime)
            if runtime not in graph:
                graph.add_node(runtime, kind="executable", path=app.runtime)
            if not graph.has_edge(node, runtime):
                graph.add_edge(node, runtime, kind="interpreter")
        for path in app.extensions.values():  # native code the application loads
            extension = file_node(path)
            if extension not in graph:
                graph.add_node(extension, kind="library", path=path)
            graph.add_edge(node, extension, kind="extension")


def judged_graph(graph: DiGraph, binaries: Mapping[str, Binary]) -> DiGraph:
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
