"""A Python application's own code, read with Python's `ast` (never imported or run).

`read_python` turns one file into `SourceFacts`: the modules it imports, every name it
references once its import aliases are resolved (`import subprocess as sp; sp.Popen`
-> subprocess.Popen; `from os import fork; fork()` -> os.fork), and the methods it calls
on objects (`sock.listen()`). `python_files` follows the imports from the entry file to
the modules found under the search roots (the entry's directory, the working directory,
site-packages and dist-packages): the standard library is never read, its modules are
what the table judges. Aliases are per file, not per scope: a name rebound locally is
still read as the module it was imported as.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Callable, Iterable, Mapping

from portscan.inspect.apps.source import SourceFacts

MAX_FILES = 3000  # files read for one application
ReadFn = Callable[[str], bytes | None]


class _Reader(ast.NodeVisitor):
    def __init__(self, package: str) -> None:
        self.package = package  # the dotted package of the file, for relative imports
        self.aliases: dict[str, str] = {}
        self.facts = SourceFacts()

    # -- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.facts.add_import(alias.name, node.lineno)
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".", 1)[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = self._absolute(node.module or "", node.level)
        if module is None:
            return
        if module:
            self.facts.add_import(module, node.lineno)
        for alias in node.names:
            if alias.name == "*":
                continue
            qualified = f"{module}.{alias.name}" if module else alias.name
            self.aliases[alias.asname or alias.name] = qualified
            self.facts.specifiers.append(qualified)  # it may be a submodule

    def _absolute(self, module: str, level: int) -> str | None:
        if not level:
            return module
        parts = self.package.split(".") if self.package else []
        if level - 1 > len(parts):
            return None
        base = parts[: len(parts) - (level - 1)]
        return ".".join([*base, module] if module else base)

    # -- names
    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases:
            self.facts.add_reference(self.aliases[node.id], node.lineno)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = _chain(node)
        if chain and chain[0] in self.aliases:
            qualified = ".".join([self.aliases[chain[0]], *chain[1:]])
            self.facts.add_reference(qualified, node.lineno)
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute):
            self.facts.add_method(node.func.attr, node.lineno)
        self.generic_visit(node)


def _chain(node: ast.expr) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None when the base is not a plain name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def read_python(data: bytes, package: str = "", filename: str = "<app>") -> SourceFacts:
    """The facts of one source file; SyntaxError or ValueError when it does not parse."""
    tree = ast.parse(data, filename=filename)
    reader = _Reader(package)
    reader.visit(tree)
    return reader.facts


def module_of(path: str, roots: Iterable[str]) -> str:
    """The dotted module a file is under the first root that holds it (`a/b/__init__.py`
    -> `a.b`); "" outside every root."""
    for root in roots:
        prefix = root.rstrip("/") + "/"
        if path.startswith(prefix):
            relative = path[len(prefix) : -len(".py")].split("/")
            if relative[-1] == "__init__":
                relative.pop()
            return ".".join(relative)
    return ""


def resolve_module(module: str, roots: Iterable[str], exists: Callable[[str], bool]) -> str | None:
    """The file that holds `module` under the first root that has it."""
    relative = module.replace(".", "/")
    for root in roots:
        for candidate in (f"{root}/{relative}.py", f"{root}/{relative}/__init__.py"):
            if exists(candidate):
                return candidate
    return None


def python_files(
    entries: Iterable[str],
    roots: list[str],
    read: ReadFn,
    exists: Callable[[str], bool],
    extensions: Mapping[str, str] | None = None,
) -> tuple[dict[str, SourceFacts], dict[str, str], dict[str, str]]:
    """Read the entry files and, transitively, every module they import that a search
    root holds. Returns the facts per file, per file that could not be read why, and the
    native extension modules imported (module -> .so path, from `extensions`)."""
    facts: dict[str, SourceFacts] = {}
    unread: dict[str, str] = {}
    native: dict[str, str] = {}
    queue = list(dict.fromkeys(entries))
    seen = set(queue)
    while queue and len(facts) + len(unread) < MAX_FILES:
        path = queue.pop(0)
        data = read(path)
        if data is None:
            unread[path] = "its bytes were not kept while the layers streamed"
            continue
        module = module_of(path, roots)
        package = module if path.endswith("/__init__.py") else module.rpartition(".")[0]
        try:
            found = read_python(data, package, path)
        except (SyntaxError, ValueError) as exc:
            unread[path] = f"does not parse: {exc}"
            continue
        facts[path] = found
        for specifier in found.specifiers:
            parts = specifier.split(".")
            for depth in range(1, len(parts) + 1):  # a.b.c imports a and a.b too
                name = ".".join(parts[:depth])
                target = resolve_module(name, roots, exists)
                if target is not None and target not in seen:
                    seen.add(target)
                    queue.append(target)
                elif target is None and extensions and name in extensions:
                    native[name] = extensions[name]
    return facts, unread, native


def entry_module_file(module: str, roots: list[str], exists: Callable[[str], bool]) -> str | None:
    """What `python -m module` runs: the package's __main__.py, or the module file."""
    package = resolve_module(module, roots, exists)
    if package is not None and package.endswith("/__init__.py"):
        main = posixpath.join(posixpath.dirname(package), "__main__.py")
        return main if exists(main) else package
    return package
