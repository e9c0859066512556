"""The house plan holds: stages import only down the pipeline, and nothing imports in a circle.

Read from the source's AST, every import counts, top-level or inside a function. The
order is DESIGN's pipeline with the data everything shares at the bottom:
README.md ("Layout") says what each place does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "portscan"
# Lowest first: a module may import its own stage and the stages before it, never after.
STAGES = (
    "__init__",  # the version
    "errors",
    "lifecycle",
    "model",
    "knowledge",
    "codec",
    "sources",
    "layers",
    "inspect",
    "graph",
    "lint",
    "score",
    "waivers",
    "scan",
    "audit",
    "report",
    "cli",
    "__main__",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The portscan modules `path` imports (`from pkg import mod` counts as mod only)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            submodules = {f"{source}.{alias.name}" for alias in node.names} & modules
            found |= submodules or {source}  # `from pkg import mod` imports mod
    return {m for m in found if m in modules and m != name}


def _graph() -> nx.DiGraph:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in files.items():
        graph.add_node(name)
        for target in _imports(path, name, set(files)):
            graph.add_edge(name, target)
    return graph


def _stage(module: str) -> int:
    parts = module.split(".")
    return STAGES.index(parts[1] if len(parts) > 1 else "__init__")


def test_every_module_belongs_to_a_stage() -> None:
    for module in _graph():
        parts = module.split(".")
        assert len(parts) == 1 or parts[1] in STAGES, f"{module}: not a stage in STAGES"


def test_no_stage_imports_a_later_one() -> None:
    backwards = sorted(f"{a} -> {b}" for a, b in _graph().edges if _stage(b) > _stage(a))
    assert backwards == []


def test_no_import_circles() -> None:
    cycles = sorted(" -> ".join(c) for c in nx.simple_cycles(_graph()))
    assert cycles == []
