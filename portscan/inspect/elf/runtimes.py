"""Which language runtime an ELF file is or carries, from signatures/runtimes-markers.json.

Recognition is data: each runtime lists markers (path, soname, DT_NEEDED, symbols,
.comment, sections, notes, byte literals) and version markers. Code is only for what
data cannot say: Go's buildinfo and package list, Rust's toolchain commit, and
busybox's applet table. Detection runs inside the ELF analysis, on the same bytes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portscan.inspect.elf.gobuildinfo import MAGIC, parse_buildinfo
from portscan.inspect.elf.gopclntab import go_functions
from portscan.inspect.elf.layout import ElfView, find_all
from portscan.knowledge import tables as signatures
from portscan.model import Runtime

MARKERS = "runtimes-markers.json"
GO_BUILDINFO_SPAN = 64 * 1024  # the inline strings follow the header; modinfo is small
MAX_APPLETS = 2000
_RUSTC_COMMIT = re.compile(rb"/rustc/([0-9a-f]{40})/")
_APPLET = re.compile(rb"[\w.\[\]-]{1,64}")


@dataclass
class RuntimeClues:
    """What the ELF analysis already knows about the file, for the markers to test."""

    view: ElfView
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    symbols: frozenset[str] = frozenset()  # exported dynamic symbols and defined functions
    comments: list[str] = field(default_factory=list)
    note_owners: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Marker:
    kind: str
    pattern: re.Pattern[str] | None = None  # path, soname, needed, comment
    name: str = ""  # section, note
    names: frozenset[str] = frozenset()  # symbol
    literal: str = ""  # bytes (latin-1; may hold {version})
    sections: tuple[str, ...] = ()
    version: re.Pattern[bytes] | None = None
    window: int = 128


@dataclass(frozen=True)
class RuntimeSignature:
    name: str
    identify: tuple[Marker, ...]
    version: tuple[Marker, ...]
    parser: str | None = None


def _marker(doc: dict[str, Any]) -> Marker:
    pattern = doc.get("pattern")
    version = doc.get("version")
    return Marker(
        kind=doc["kind"],
        pattern=re.compile(pattern) if pattern else None,
        name=doc.get("name", ""),
        names=frozenset(doc.get("names", ())),
        literal=doc.get("literal", ""),
        sections=tuple(doc.get("in", ())),
        version=re.compile(version.encode("latin-1"), re.DOTALL) if version else None,
        window=int(doc.get("window", 128)),
    )


@functools.cache
def load_signatures() -> tuple[RuntimeSignature, ...]:
    """The runtime table (signatures/runtimes-markers.json), in the order it is tried."""
    document = signatures.load(MARKERS)
    table = []
    for doc in document["runtimes"]:
        parser = doc.get("parser")
        if parser is not None and parser not in PARSERS:
            raise signatures.SignaturesError(
                f"{MARKERS}: runtime {doc['name']} names unknown parser {parser!r}"
            )
        table.append(
            RuntimeSignature(
                doc["name"],
                tuple(_marker(m) for m in doc["identify"]),
                tuple(_marker(m) for m in doc.get("version", ())),
                parser,
            )
        )
    return tuple(table)


def detect_runtime(clues: RuntimeClues) -> Runtime | None:
    """The first runtime in the table that one of its markers recognises, with its version
    and details; None for a file that is no known runtime."""
    for signature in load_signatures():
        evidence = [e for e in (_identify(m, clues) for m in signature.identify) if e]
        if not evidence:
            continue
        runtime = Runtime(signature.name, _version(signature.version, clues), evidence)
        if signature.parser:
            PARSERS[signature.parser](clues, runtime)
        return runtime
    return None


# --------------------------------------------------------------------------- markers


def _strings_for(marker: Marker, clues: RuntimeClues) -> list[str]:
    if marker.kind == "path":
        return [clues.view.path]
    if marker.kind == "soname":
        return [clues.soname] if clues.soname else []
    if marker.kind == "needed":
        return clues.needed
    if marker.kind == "comment":
        return clues.comments
    return []


def _identify(marker: Marker, clues: RuntimeClues) -> str | None:
    """A line of evidence when `marker` matches, else None."""
    if marker.pattern is not None:
        for text in _strings_for(marker, clues):
            if marker.pattern.search(text):
                return f"{marker.kind} {text}"
        return None
    if marker.kind == "section":
        return f"section {marker.name}" if clues.view.layout.section(marker.name) else None
    if marker.kind == "note":
        return f"note owner {marker.name}" if marker.name in clues.note_owners else None
    if marker.kind == "symbol":
        found = sorted(marker.names & clues.symbols)
        return f"symbol {found[0]}" if found else None
    if marker.kind == "bytes":
        offset = _find(clues.view, marker.literal.encode("latin-1"), marker.sections)
        return None if offset is None else f"bytes {marker.literal!r} at offset {offset:#x}"
    raise ValueError(f"unknown marker kind {marker.kind!r}")


def _version(markers: tuple[Marker, ...], clues: RuntimeClues) -> str | None:
    """The first version found, refined by later markers that extend it (3.11 -> 3.11.2)."""
    best: str | None = None
    for marker in markers:
        found = _version_from(marker, clues, best)
        if found is not None and (best is None or found.startswith(best + ".")):
            best = found
    return best


def _version_from(marker: Marker, clues: RuntimeClues, known: str | None) -> str | None:
    if marker.pattern is not None:
        for text in _strings_for(marker, clues):
            match = marker.pattern.search(text)
            if match and match.group("version"):
                return match.group("version")
        return None
    if marker.kind != "bytes" or marker.version is None:
        return None
    if "{version}" in marker.literal:
        if known is None:
            return None
        literal = marker.literal.replace("{version}", known)
    else:
        literal = marker.literal
    needle = literal.encode("latin-1")
    data = clues.view.data
    for start, end in clues.view.section_ranges(list(marker.sections)):
        for offset in find_all(data, needle, start, end):
            match = marker.version.search(data, offset, min(offset + marker.window, end))
            if match:
                return match.group("version").decode("latin-1")
    return None


def _find(view: ElfView, needle: bytes, sections: tuple[str, ...]) -> int | None:
    for start, end in view.section_ranges(list(sections)):
        for offset in find_all(view.data, needle, start, end):
            return offset
    return None


# --------------------------------------------------------------------------- parsers


def _parse_go(clues: RuntimeClues, runtime: Runtime) -> None:
    """Buildinfo (toolchain, modules, build settings) and the packages linked in; fills
    the view's functions from the pclntab when the symbol table was stripped."""
    view = clues.view
    section = view.layout.section(".go.buildinfo")
    start = section.offset if section is not None and section.in_file else view.data.find(MAGIC)
    if start >= 0:
        info = parse_buildinfo(view.data[start : start + GO_BUILDINFO_SPAN], view.read)
        if info is not None:
            runtime.version = info.go_version.removeprefix("go")
            runtime.details.update(
                go_version=info.go_version,
                main_package=info.path,
                main_module=info.main.as_dict() if info.main else None,
                dependencies=[dep.as_dict() for dep in info.deps],
                build_settings=info.settings,
            )
            runtime.evidence.append(f"buildinfo at offset {start:#x}")
    if not view.functions:
        functions = go_functions(view)
        if functions:
            view.set_functions(functions)
            runtime.evidence.append("function names from the pclntab")
    packages = {go_package(name) for _start, _size, name in view.functions}
    packages.discard("")
    runtime.details["packages"] = sorted(packages)


def go_package(symbol: str) -> str:
    """The import path of a Go function symbol, as debug/gosym's `PackageName` reads it:
    `net/http.(*Server).Serve` -> `net/http`; "" for linker-made symbols (`type:.eq.T`)."""
    name = symbol
    bracket = name.find("[")
    if bracket >= 0:  # generic instantiation: `pkg.F[...]`
        name = name[:bracket]
    if name.startswith(("go:", "type:", "go.", "type.")):
        return ""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    return name[:dot] if dot > 0 else ""


def _parse_rust(clues: RuntimeClues, runtime: Runtime) -> None:
    """The rustc commit from the `/rustc/<commit>/library/...` paths of std's panics."""
    view = clues.view
    for start, end in view.section_ranges([".rodata"]):
        match = _RUSTC_COMMIT.search(view.data, start, end)
        if match:
            runtime.details["rustc_commit"] = match.group(1).decode()
            return


def _parse_busybox(clues: RuntimeClues, runtime: Runtime) -> None:
    """The applet names: busybox keeps them as one NUL-separated, sorted string that
    starts with the `[` and `[[` applets."""
    view = clues.view
    offset = _find(view, b"[\0[[\0", (".rodata",))
    if offset is None:
        return
    applets = []
    for raw in view.data[offset : offset + 64 * MAX_APPLETS].split(b"\0"):
        if not raw or not _APPLET.fullmatch(raw) or len(applets) >= MAX_APPLETS:
            break
        applets.append(raw.decode("latin-1"))
    runtime.details["applets"] = applets


PARSERS: dict[str, Callable[[RuntimeClues, Runtime], None]] = {
    "go": _parse_go,
    "rust": _parse_rust,
    "busybox": _parse_busybox,
}
