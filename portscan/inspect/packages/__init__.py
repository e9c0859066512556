"""Package catalogers: one module per ecosystem, one walk over the tree for all of them.

    inventory = catalog(tree)          # Inventory(packages, owner_of, warnings)
    needs_bytes("/var/lib/dpkg/status")  # True: the keep policy must keep these bytes

`needs_bytes` is the keep policy's half of the contract: layers stream once, so every
file a cataloger parses or reads must be kept while its layer goes by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from portscan.inspect.packages import apk, dpkg, go, java, node, python, rpm
from portscan.inspect.packages.base import (
    OS_RELEASE_PATHS,
    PARSE_ERRORS,
    Cataloger,
    Env,
    GlobSet,
    Inventory,
    owner_map,
)
from portscan.layers import NOT_READ, Tree
from portscan.model import FileEntry, FileKind, Package

__all__ = ["CATALOGERS", "Inventory", "catalog", "needs_bytes", "owner_map"]

CATALOGERS: tuple[Cataloger, ...] = (
    dpkg.CATALOGER,
    apk.CATALOGER,
    rpm.CATALOGER,
    python.CATALOGER,
    node.CATALOGER,
    java.CATALOGER,
    go.CATALOGER,
)


@dataclass(frozen=True)
class _Plan:
    """Catalogers compiled into two glob sets: dispatch (path -> catalogers that parse
    it, and whether they need its bytes) and keep (every path whose bytes are read)."""

    dispatch: GlobSet[tuple[Cataloger, bool]]
    keep: GlobSet[bool]
    by_fact: tuple[Cataloger, ...]

    @classmethod
    def of(cls, catalogers: Sequence[Cataloger]) -> _Plan:
        dispatch: GlobSet[tuple[Cataloger, bool]] = GlobSet()
        keep: GlobSet[bool] = GlobSet()
        for path in OS_RELEASE_PATHS:
            keep.add(path, True)
        for cataloger in catalogers:
            for glob in cataloger.globs:
                dispatch.add(glob, (cataloger, True))
                keep.add(glob, True)
            for glob in cataloger.sees:
                dispatch.add(glob, (cataloger, False))
            for glob in cataloger.reads:
                keep.add(glob, True)
        return cls(dispatch, keep, tuple(c for c in catalogers if c.fact))


_DEFAULT = _Plan.of(CATALOGERS)


def needs_bytes(path: str) -> bool:
    """Whether a cataloger reads the bytes of the file at `path` (a keep policy test)."""
    return path in _DEFAULT.keep


def _parse_one(cataloger: Cataloger, entry: FileEntry, data: Any, env: Env) -> list[Package]:
    if cataloger.max_bytes and isinstance(data, bytes) and len(data) > cataloger.max_bytes:
        env.warn(
            f"{entry.path}: {len(data)} bytes, more than the {cataloger.max_bytes} the "
            f"{cataloger.name} cataloger parses; not parsed"
        )
        return []
    try:
        found = cataloger.parse(entry.path, data, env)
    except PARSE_ERRORS as exc:
        env.warn(f"{entry.path}: {cataloger.name} cataloger could not parse it: {exc}")
        return []
    for package in found:
        package.layer = entry.layer
        package.source = package.source or entry.path
    return found


def catalog(tree: Tree, catalogers: Sequence[Cataloger] = CATALOGERS) -> Inventory:
    """Walk the tree once, parse every file a cataloger asked for, index ownership.

    A malformed file becomes a warning, not an error: the rest of the image is still
    catalogued. A file whose bytes were not kept is counted and reported once.
    """
    plan = _DEFAULT if catalogers is CATALOGERS else _Plan.of(catalogers)
    env = Env.for_tree(tree)
    inventory = Inventory()
    not_kept: Counter[str] = Counter()
    for entry in tree.entries():
        if entry.kind is not FileKind.FILE:
            continue
        jobs: list[tuple[Cataloger, Any]] = []
        for cataloger, wants_bytes in plan.dispatch.match(entry.path):
            data = entry.data if entry.size else b""
            if wants_bytes and data is None:
                if NOT_READ not in entry.facts:  # else the layer reader said why
                    not_kept[cataloger.name] += 1
            else:
                jobs.append((cataloger, data))
        if entry.facts:
            jobs += [(c, entry.facts[c.fact]) for c in plan.by_fact if c.fact in entry.facts]
        for cataloger, data in jobs:
            inventory.packages.extend(_parse_one(cataloger, entry, data, env))
    for name, count in sorted(not_kept.items()):
        env.warn(
            f"{name} cataloger: the bytes of {count} file(s) were not kept while the layers "
            "streamed; use a keep policy that includes packages.needs_bytes"
        )
    inventory.owner_of = owner_map(inventory.packages)
    inventory.warnings = env.warnings
    return inventory
