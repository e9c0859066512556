"""Node packages: every `package.json` with a name and a version, whether in
`node_modules/`, in a distribution's module directory or the application's own.

A package owns the files under its directory except nested `node_modules/` trees.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from portscan.inspect.packages import purl
from portscan.inspect.packages.base import Cataloger, Env
from portscan.layers import Tree
from portscan.model import FileKind, Package


def licenses(doc: dict[str, Any]) -> list[str]:
    """`license` (a string or the old `{"type": ...}` object) or the old `licenses` list."""
    found: list[str] = []
    raw = doc.get("license")
    items = [raw] if raw else doc.get("licenses") or []
    for item in items if isinstance(items, list) else []:
        value = item.get("type") if isinstance(item, dict) else item
        if isinstance(value, str) and value:
            found.append(value)
    return found


def owned_files(tree: Tree, directory: str) -> list[str]:
    """Non-directory entries under `directory`, not descending into `node_modules`."""
    out: list[str] = []
    pending = [directory]
    while pending:
        current = pending.pop()
        for name in tree.children(current):
            path = f"{current}/{name}"
            entry = tree.get(path)
            if entry is None:
                continue
            if entry.kind is FileKind.DIR:
                if name != "node_modules":
                    pending.append(path)
            else:
                out.append(path)
    return sorted(out)


def parse(path: str, data: bytes | None, env: Env) -> list[Package]:
    """The package one package.json describes; none when it has no name or version
    (a `{"type": "module"}` marker, a template)."""
    doc = json.loads(data or b"{}")
    if not isinstance(doc, dict):
        return []
    name, version = doc.get("name"), doc.get("version")
    if not (isinstance(name, str) and isinstance(version, str) and name and version):
        return []
    scope, _, bare = name.rpartition("/")
    directory = posixpath.dirname(path)
    return [
        Package(
            name=name,
            version=version,
            ecosystem="npm",
            purl=purl.build("npm", bare, version, namespace=scope),
            licenses=licenses(doc),
            source=path,
            files=owned_files(env.tree, directory) if directory != "/" else [path],
        )
    ]


CATALOGER = Cataloger(name="node", globs=("**/package.json",), parse=parse)
