"""The generic cataloger machinery: what an ecosystem module declares, and what it gets.

An ecosystem module declares one `Cataloger`: a name, the globs of the files it parses,
the globs of further files whose bytes its parser reads through `Env` (dpkg's `.list`
files), and `parse(path, data, env) -> list[Package]` for one file. The walk over the
tree, the bytes bookkeeping and the file -> package index live in `packages/__init__`.

Globs: `*` matches within one path component, `**/` any number of directories.
`GlobSet` compiles the common shapes (exact path, `**/NAME`, `**/*SUFFIX`, `DIR/*SUFFIX`)
to set look-ups and one `str.endswith`, so asking it about every path is cheap.
"""

from __future__ import annotations

import re
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from portscan.layers import Tree
from portscan.model import FileKind, Package

V = TypeVar("V")

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")


class ParseError(ValueError):
    """A package database or metadata file is malformed; the message says how."""


# What a parser may raise on malformed input; `catalog` turns these into warnings.
PARSE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,  # ParseError, UnicodeDecodeError, json.JSONDecodeError
    struct.error,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    sqlite3.Error,
    EOFError,
    NotImplementedError,  # zipfile: an unsupported compression method
)


@dataclass(frozen=True)
class Distro:
    """The distribution from os-release: `ID` and `VERSION_ID`."""

    id: str
    version_id: str = ""

    @property
    def qualifier(self) -> str:
        """The purl `distro` qualifier as syft writes it: `debian-12`, `alpine-3.19.1`."""
        return f"{self.id}-{self.version_id}" if self.version_id else self.id


def parse_os_release(data: bytes) -> Distro | None:
    """`ID` and `VERSION_ID` of an os-release file (freedesktop.org os-release(5))."""
    values: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'")
    return Distro(values["ID"], values.get("VERSION_ID", "")) if values.get("ID") else None


@dataclass
class Env:
    """What a parser may use besides its own file: the tree, the distro, warnings."""

    tree: Tree
    distro: Distro | None = None
    warnings: list[str] = field(default_factory=list)
    _dirs: dict[str, str | None] = field(default_factory=dict, repr=False)

    @classmethod
    def for_tree(cls, tree: Tree) -> Env:
        for path in OS_RELEASE_PATHS:
            data = tree.read(path)
            if data:
                return cls(tree, parse_os_release(data))
        return cls(tree)

    def read(self, path: str) -> bytes | None:
        """Kept bytes of `path` (symlinks followed); None when absent or not kept."""
        return self.tree.read(path)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def owned(self, path: str) -> str | None:
        """The tree path of a file a package database lists, or None when the tree has
        no such entry or it is a directory (or a symlink to one: usrmerge's `/bin`).
        Parent directories are resolved through symlinks (usrmerge: `/lib/x/libc.so.6`
        is `/usr/lib/x/libc.so.6`); a listed symlink to a file is owned as itself."""
        parent, sep, base = path.rpartition("/")
        if not sep or base in ("", ".", ".."):
            return None
        real = self._dirs.get(parent, "")
        if real == "":
            real = self.tree.resolve(parent) if parent else ""
            self._dirs[parent] = real
        if real is None:
            return None
        full = f"{real}/{base}"
        entry = self.tree.get(full)
        if entry is None or entry.kind is FileKind.DIR:
            return None
        if entry.kind is FileKind.SYMLINK:
            target = self.tree.resolve(full)
            target_entry = self.tree.get(target) if target else None
            if target_entry is not None and target_entry.kind is FileKind.DIR:
                return None
        return full

    def owned_all(self, paths: Iterable[str]) -> list[str]:
        """`owned` over many listed paths, without duplicates, in listing order."""
        out: dict[str, None] = {}
        for path in paths:
            real = self.owned(path)
            if real is not None:
                out[real] = None
        return list(out)


ParseFn = Callable[[str, Any, Env], list[Package]]  # (path, bytes or fact, env)


@dataclass(frozen=True)
class Cataloger:
    """One ecosystem: which files it parses (`globs`), which other files' bytes its
    parser reads through `env` (`reads`), which files it only needs to see, not read
    (`sees`: e.g. an unsupported database to warn about), and how to parse one file.
    A cataloger with a `fact` parses, instead of bytes, the fact that analyser left on
    every file that has one (Go modules from the `elf` analyser's Binary).
    `max_bytes` (0: none) is the largest file `parse` is given: parsing text costs a
    few times its size, so a larger file is skipped with a warning (docs/security.md)."""

    name: str
    globs: tuple[str, ...]
    parse: ParseFn
    reads: tuple[str, ...] = ()
    sees: tuple[str, ...] = ()
    fact: str = ""
    max_bytes: int = 0


# --------------------------------------------------------------------------- globs


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for one glob: `*` within a component, `**/` across directories, `?`."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def _literal(text: str) -> bool:
    return not any(ch in text for ch in "*?[")


class GlobSet(Generic[V]):
    """Globs, each with a value; `match(path)` gives the values of every glob matching."""

    def __init__(self) -> None:
        self._exact: dict[str, list[V]] = {}
        self._names: dict[str, list[V]] = {}
        self._suffixes: list[tuple[str, V]] = []
        self._suffix_tuple: tuple[str, ...] = ()
        self._in_dir: dict[str, list[tuple[str, V]]] = {}
        self._other: list[tuple[str, str, re.Pattern[str], V]] = []

    def add(self, pattern: str, value: V) -> None:
        if _literal(pattern):
            self._exact.setdefault(pattern, []).append(value)
        elif pattern.startswith("**/") and _literal(pattern[3:]) and "/" not in pattern[3:]:
            self._names.setdefault(pattern[3:], []).append(value)
        elif pattern.startswith("**/*") and _literal(pattern[4:]):
            self._suffixes.append((pattern[4:], value))
            self._suffix_tuple = tuple(s for s, _ in self._suffixes)
        elif pattern.count("*") == 1 and "/*" in pattern and _literal(pattern.replace("*", "")):
            directory, _, suffix = pattern.partition("/*")
            if "/" not in suffix:
                self._in_dir.setdefault(directory or "/", []).append((suffix, value))
                return
            self._add_other(pattern, value)
        else:
            self._add_other(pattern, value)

    def _add_other(self, pattern: str, value: V) -> None:
        first = min((pattern.find(c) for c in "*?[" if c in pattern), default=len(pattern))
        last = max(pattern.rfind(c) for c in "*?[")
        self._other.append((pattern[:first], pattern[last + 1 :], glob_regex(pattern), value))

    def match(self, path: str) -> list[V]:
        found: list[V] = list(self._exact.get(path, ()))
        directory, _, name = path.rpartition("/")
        found += self._names.get(name, ())
        if self._suffix_tuple and path.endswith(self._suffix_tuple):
            found += [v for s, v in self._suffixes if path.endswith(s)]
        for suffix, value in self._in_dir.get(directory or "/", ()):
            if name.endswith(suffix):
                found.append(value)
        for prefix, suffix, regex, value in self._other:
            if path.startswith(prefix) and path.endswith(suffix) and regex.match(path):
                found.append(value)
        return found

    def __contains__(self, path: object) -> bool:
        """Whether any glob matches; cheaper than `match` (the keep policy's question)."""
        if not isinstance(path, str):
            return False
        if path in self._exact or (self._suffix_tuple and path.endswith(self._suffix_tuple)):
            return True
        directory, _, name = path.rpartition("/")
        if name in self._names:
            return True
        for suffix, _value in self._in_dir.get(directory or "/", ()):
            if name.endswith(suffix):
                return True
        return any(
            path.startswith(prefix) and path.endswith(suffix) and regex.match(path)
            for prefix, suffix, regex, _ in self._other
        )


# --------------------------------------------------------------------------- results


@dataclass
class Inventory:
    """What `catalog` found: the packages, the file -> package index, and warnings."""

    packages: list[Package] = field(default_factory=list)
    owner_of: dict[str, str] = field(default_factory=dict)  # tree path -> purl
    warnings: list[str] = field(default_factory=list)


OS_ECOSYSTEMS = frozenset({"deb", "apk", "rpm"})


def owner_map(packages: Iterable[Package]) -> dict[str, str]:
    """Tree path -> purl of the package that owns it. An OS package (deb, apk, rpm)
    wins over language packages, the first listed among OS packages; among language
    packages the one whose metadata file lies deepest wins, so a package nested in
    another's directory owns its own files."""
    os_owners: dict[str, str] = {}
    language: list[Package] = []
    for package in packages:
        if package.ecosystem in OS_ECOSYSTEMS:
            for path in package.files:
                os_owners.setdefault(path, package.purl)
        else:
            language.append(package)
    owners: dict[str, str] = {}
    for package in sorted(language, key=lambda p: p.source.count("/")):
        owners.update(dict.fromkeys(package.files, package.purl))
    owners.update(os_owners)
    return owners
