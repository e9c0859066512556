"""A Node.js application's own JavaScript, read with tree-sitter's JavaScript grammar.

tree-sitter (PyPI wheels `tree-sitter` and `tree-sitter-javascript`) is a real, current
grammar (ES2024, JSX, top-level await, both module systems), compiled C, and it recovers
from errors instead of giving up on a whole file; the pure-Python ECMAScript parsers on
PyPI stop at ES2017 and are unmaintained.

`read_javascript` turns one file into `SourceFacts`: the modules it requires or imports
(`node:` dropped), every name it references once those bindings are resolved
(`const { spawn } = require('child_process'); spawn()` -> child_process.spawn), names
of globals the table lists (`fetch`), and the methods it calls on objects (`.listen()`).
`javascript_files` follows relative requires and imports from the entry file through
the application's own files; a bare specifier (`express`) is a dependency, recorded by
name and judged by the table, never read: node_modules is not walked.
"""

from __future__ import annotations

import functools
import json
import posixpath
from collections.abc import Callable, Iterable, Iterator

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

from portscan.inspect.apps.source import SourceFacts

MAX_FILES = 2000
EXTENSIONS = (".js", ".mjs", ".cjs")
ReadFn = Callable[[str], bytes | None]


@functools.cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_javascript.language()))


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


def _string(node: Node | None) -> str | None:
    """The value of a plain string literal."""
    if node is None or node.type != "string":
        return None
    return "".join(_text(c) for c in node.children if c.type == "string_fragment")


def module_name(specifier: str) -> str:
    return specifier.removeprefix("node:")


def _required(call: Node) -> str | None:
    """The specifier of `require('x')` or `import('x')`."""
    function = call.child_by_field_name("function")
    if function is None or not (
        (function.type == "identifier" and _text(function) == "require")
        or function.type == "import"
    ):
        return None
    arguments = call.child_by_field_name("arguments")
    first = arguments.named_children[0] if arguments and arguments.named_children else None
    return _string(first)


class _Bindings:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.facts = SourceFacts()

    def bind_pattern(self, pattern: Node, base: str) -> None:
        if pattern.type == "identifier":
            self.names[_text(pattern)] = base
            return
        for child in pattern.named_children if pattern.type == "object_pattern" else ():
            if child.type == "shorthand_property_identifier_pattern":
                self.names[_text(child)] = f"{base}.{_text(child)}"
            elif child.type == "pair_pattern":
                key, value = child.child_by_field_name("key"), child.child_by_field_name("value")
                if value is not None and value.type == "identifier":
                    self.names[_text(value)] = f"{base}.{_text(key)}"

    def require(self, call: Node, specifier: str) -> None:
        module = module_name(specifier)
        self.facts.add_import(module, call.start_point[0] + 1)
        node, base = call, module
        parent = node.parent
        while parent is not None and parent.type in ("member_expression", "await_expression"):
            if parent.type == "member_expression":
                base = f"{base}.{_text(parent.child_by_field_name('property'))}"
            node, parent = parent, parent.parent
        if parent is not None and parent.type == "variable_declarator":
            name = parent.child_by_field_name("name")
            if name is not None:
                self.bind_pattern(name, base)

    def import_statement(self, node: Node) -> None:
        specifier = _string(node.child_by_field_name("source"))
        if specifier is None:
            return
        module = module_name(specifier)
        self.facts.add_import(module, node.start_point[0] + 1)
        clause = next((c for c in node.named_children if c.type == "import_clause"), None)
        for child in clause.named_children if clause is not None else ():
            if child.type == "identifier":  # default import
                self.names[_text(child)] = module
            elif child.type == "namespace_import":
                name = next((c for c in child.named_children if c.type == "identifier"), None)
                if name is not None:
                    self.names[_text(name)] = module
            elif child.type == "named_imports":
                for spec in child.named_children:
                    imported = spec.child_by_field_name("name")
                    local = spec.child_by_field_name("alias") or imported
                    self.names[_text(local)] = f"{module}.{_text(imported)}"


def _chain(node: Node) -> list[str] | None:
    parts: list[str] = []
    while node.type == "member_expression":
        prop = node.child_by_field_name("property")
        obj = node.child_by_field_name("object")
        if prop is None or obj is None or prop.type != "property_identifier":
            return None
        parts.append(_text(prop))
        node = obj
    if node.type != "identifier":
        return None
    return [_text(node), *reversed(parts)]


def read_javascript(data: bytes, globals_: frozenset[str] = frozenset()) -> SourceFacts:
    """The facts of one JavaScript file (a file with syntax errors is read as far as
    tree-sitter recovers; `has_error` is for the caller to report)."""
    root = _parser().parse(data).root_node
    bindings = _Bindings()
    for node in _walk(root):
        if node.type == "call_expression":
            specifier = _required(node)
            if specifier is not None:
                bindings.require(node, specifier)
        elif node.type in ("import_statement", "export_statement"):
            bindings.import_statement(node)
    facts, names = bindings.facts, bindings.names
    skip: set[int] = set()
    for node in _walk(root):
        line = _line(node)
        if node.type == "call_expression":
            function = node.child_by_field_name("function")
            if function is not None and function.type == "member_expression":
                facts.add_method(_text(function.child_by_field_name("property")), _line(function))
        if node.id in skip:
            continue
        if node.type == "member_expression":
            chain = _chain(node)
            if chain and (chain[0] in names or chain[0] in globals_):
                facts.add_reference(".".join([names.get(chain[0], chain[0]), *chain[1:]]), line)
                skip.update(n.id for n in _walk(node))
        elif node.type == "identifier":
            name = _text(node)
            if name in names and not _declares(node):
                facts.add_reference(names[name], line)
            elif name in globals_ and not _declares(node):
                facts.add_reference(name, line)
    return facts


def _line(node: Node) -> int:
    """The line a name is on: a member expression's is its property's (`.listen` on its
    own line of a chained call)."""
    if node.type == "member_expression":
        prop = node.child_by_field_name("property")
        node = prop if prop is not None else node
    return node.start_point[0] + 1


def has_errors(data: bytes) -> bool:
    return _parser().parse(data).root_node.has_error


def _declares(node: Node) -> bool:
    parent = node.parent
    return parent is not None and (
        (parent.type == "variable_declarator" and parent.child_by_field_name("name") == node)
        or (parent.type == "pair_pattern" and parent.child_by_field_name("value") == node)
        or parent.type in ("import_clause", "import_specifier", "namespace_import")
    )


def resolve_relative(
    specifier: str, directory: str, exists: Callable[[str], bool], read: ReadFn
) -> str | None:
    """The file a relative or absolute specifier names, as Node resolves it: the path,
    the path plus an extension, or the directory's package.json `main` or index file."""
    base = posixpath.normpath(posixpath.join(directory, specifier))
    candidates = [base, *(base + ext for ext in EXTENSIONS)]
    for candidate in candidates:
        if candidate.endswith(EXTENSIONS) and exists(candidate):
            return candidate
    main = package_main(base, read)
    if main is not None and main != base:
        found = resolve_relative(main, base, exists, read)
        if found is not None:
            return found
    for ext in EXTENSIONS:
        if exists(f"{base}/index{ext}"):
            return f"{base}/index{ext}"
    return None


def package_main(directory: str, read: ReadFn) -> str | None:
    """`main` of the directory's package.json, if it has one."""
    data = read(posixpath.join(directory, "package.json"))
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        return None
    main = doc.get("main") if isinstance(doc, dict) else None
    return main if isinstance(main, str) and main else None


def is_relative(specifier: str) -> bool:
    return specifier.startswith(("./", "../", "/")) or specifier in (".", "..")


def package_of(specifier: str) -> str:
    """The npm package a bare specifier names (`@scope/pkg/sub` -> `@scope/pkg`)."""
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") else parts[0]


def javascript_files(
    entries: Iterable[str],
    read: ReadFn,
    exists: Callable[[str], bool],
    globals_: frozenset[str] = frozenset(),
) -> tuple[dict[str, SourceFacts], dict[str, str], list[str]]:
    """Read the entry files and the application files they require or import. Returns
    the facts per file, the files not read (and why), and the bare specifiers named."""
    facts: dict[str, SourceFacts] = {}
    unread: dict[str, str] = {}
    bare: dict[str, None] = {}
    queue = list(dict.fromkeys(entries))
    seen = set(queue)
    while queue and len(facts) + len(unread) < MAX_FILES:
        path = queue.pop(0)
        data = read(path)
        if data is None:
            unread[path] = "its bytes were not kept while the layers streamed"
            continue
        found = read_javascript(data, globals_)
        if has_errors(data):
            unread[path] = "has syntax errors: read as far as the parser recovered"
        facts[path] = found
        for specifier in found.specifiers:
            if not is_relative(specifier):
                bare.setdefault(specifier, None)
                continue
            target = resolve_relative(specifier, posixpath.dirname(path), exists, read)
            if target is not None and target not in seen and "/node_modules/" not in target:
                seen.add(target)
                queue.append(target)
    return facts, unread, list(bare)
