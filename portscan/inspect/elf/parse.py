"""What an ELF file is: the `elf` analyser, run on each ELF file while its layer streams by.

`read_layout` (layout.py) checks the header and tables first, so a truncated or
corrupt file becomes a `Binary` with `error` set, never an exception. direct.py then
reads the dynamic section, symbols with versions and notes with `struct`, as plain
facts (`ElfFacts`), following lief's rules; lief reads the files it declines (lief is
imported then, and only then: most images need it for none). Runtime detection and the
syscall scan run in the same pass, on the same bytes, and land in `Binary.runtime` and
`Binary.syscalls`.

Memory: direct.py reads over `data` (a read-only map of the file when it is on disk)
and keeps only the facts; lief, where it is asked, reads the whole file into a buffer of
its own (given `file`, from disk, so the file is in anonymous memory once, not twice),
and its objects are dropped before the scans that touch every byte (runtimes, syscalls,
path strings).
"""

from __future__ import annotations

import functools
import io
import posixpath
from typing import TYPE_CHECKING, Any

from portscan.inspect.elf.direct import DynamicFacts, DynamicSymbols, ElfFacts, read_direct
from portscan.inspect.elf.layout import (
    ET_NAMES,
    Bytes,
    ElfLayout,
    ElfView,
    MalformedElf,
    header_only,
    plt_stubs,
    read_layout,
    release,
)
from portscan.inspect.elf.runtimes import RuntimeClues, detect_runtime
from portscan.inspect.elf.syscalls import (
    is_wrapper_name,
    scan_syscalls,
    wrapper_spellings,
)
from portscan.knowledge import tables as signatures
from portscan.knowledge.platform import is_platform_library
from portscan.model import Binary

if TYPE_CHECKING:
    import lief

# Functions only one C library defines: how a static binary's libc is told apart.
STATIC_LIBC_FUNCTIONS = {
    "glibc": frozenset({"__libc_setup_tls", "_dl_relocate_static_pie", "__libc_start_call_main"}),
    "musl": frozenset({"__init_libc", "__libc_start_init", "__init_tp", "__copy_tls"}),
}
GLIBC_STRING = b"GLIBC_TUNABLES"  # glibc's startup reads it, in static binaries too


def analyse_elf(path: str, data: Bytes, file: str | None = None) -> Binary:
    """Describe one ELF file; malformed input gives a Binary with `error` set. `file`,
    when given, is where the same bytes are on disk (lief then reads them from there)."""
    try:
        layout = read_layout(data)
    except MalformedElf as exc:
        return header_only(data, str(exc))
    try:
        return _analyse(path, data, layout, file)
    except Exception as exc:  # untrusted bytes: a failure is a finding, not a crash
        return header_only(data, f"malformed ELF ({type(exc).__name__}: {exc})")


def parse_with_lief(data: Bytes, file: str | None) -> lief.ELF.Binary | None:
    """lief's view of the file: read from `file` when it is on disk (no second copy)."""
    lief, config = _lief()
    if file is not None:
        return lief.ELF.parse(file, config)
    return lief.ELF.parse(io.BytesIO(data), config)


@functools.cache
def _lief() -> tuple[Any, lief.ELF.ParserConfig]:
    """lief, imported on first use (about 50 MiB and half a second), quiet, and the
    parser configuration: relocations and overlays are skipped, nothing here needs them."""
    import lief

    lief.logging.disable()
    config = lief.ELF.ParserConfig()
    config.parse_relocations = False
    config.parse_overlay = False
    return lief, config


def _analyse(path: str, data: Bytes, layout: ElfLayout, file: str | None) -> Binary:
    view = ElfView(path, data, layout)
    read = _read_direct(view)
    if read is None:
        read = _read_with_lief(view, file)
    if read is None:
        return header_only(data, "lief could not parse the file")
    binary, clues = read  # lief's objects are gone: the scans below touch every byte
    binary.runtime = detect_runtime(clues)  # for Go, may add pclntab names to the view
    go = binary.runtime if binary.runtime and binary.runtime.name == "go" else None
    if binary.linkage in ("static", "static-pie") or go is not None:  # Go: what it links in
        binary.defined_functions = sorted({name for _start, _size, name in view.functions})
    binary.libc = _libc(binary, view, path)
    release(data)  # the pages read so far: a large file is not kept resident whole
    if _issues_syscalls(binary, go is not None) and not is_platform_library(path, binary.soname):
        binary.syscalls = scan_syscalls(view, go.version if go else None)
        release(data)
    return binary


def _read_with_lief(view: ElfView, file: str | None) -> tuple[Binary, RuntimeClues] | None:
    """The file's facts as lief reads them; None when lief cannot parse the file."""
    facts = _lief_facts(view.data, file)
    return _describe(view, facts) if facts is not None else None


def _read_direct(view: ElfView) -> tuple[Binary, RuntimeClues] | None:
    """The same facts read without lief (direct.py); None where lief must be asked."""
    facts = read_direct(view.data, view.layout)
    return _describe(view, facts) if facts is not None else None


def _lief_facts(data: Bytes, file: str | None) -> ElfFacts | None:
    """What lief reads (dynamic section, symbols, notes), as plain facts; None when lief
    cannot parse the file. lief's objects live only as long as this call."""
    elf = parse_with_lief(data, file)
    if elf is None:
        return None
    return ElfFacts(
        dynamic=_read_dynamic(elf),
        interpreter=_text(elf.interpreter) if elf.has_interpreter else None,
        dynamic_symbols=_lief_dynamic_symbols(elf),
        symtab_functions=_symtab_functions(elf),
        note_owners=_note_owners(elf),
        build_id=_build_id(elf),
    )


def _describe(view: ElfView, facts: ElfFacts) -> tuple[Binary, RuntimeClues]:
    """The Binary and the runtime clues that follow from the facts of one file."""
    layout = view.layout
    dynamic, interpreter = facts.dynamic, facts.interpreter
    file_type = _file_type(layout, dynamic, interpreter)
    imported, exported = facts.dynamic_symbols.imported, facts.dynamic_symbols.exported
    view.set_functions(_functions(facts, view, imported))
    toolchain = _comment(view)
    binary = Binary(
        machine=layout.machine,
        elf_class=layout.elf_class,
        endianness="little" if layout.little_endian else "big",
        file_type=file_type,
        linkage=_linkage(layout, file_type, dynamic, interpreter),
        interpreter=interpreter,
        stripped=layout.section(".symtab") is None,
        soname=dynamic.soname,
        needed=dynamic.needed,
        rpath=dynamic.rpath,
        runpath=dynamic.runpath,
        imported_symbols=imported,
        exported_symbols=exported,
        build_id=facts.build_id,
        toolchain=toolchain,
    )
    clues = RuntimeClues(
        view=view,
        soname=dynamic.soname,
        needed=dynamic.needed,
        symbols=frozenset([*_bare(exported), *(name for _start, _size, name in view.functions)]),
        comments=toolchain,
        note_owners=facts.note_owners,
    )
    return binary, clues


def _issues_syscalls(binary: Binary, is_go: bool) -> bool:
    """Whether the program may enter the kernel itself: static binaries, Go (its runtime
    makes raw syscalls), and dynamic ones importing a syscall wrapper (`syscall()`).
    Other dynamic programs reach the kernel only through libc, whose imports say more;
    scanning their code for opcode bytes cost most of the ELF analysis time."""
    if binary.file_type in ("relocatable", "core"):
        return False
    if binary.linkage.startswith("static") or is_go:
        return True
    return any(map(_imports_wrapper, binary.imported_symbols))


@signatures.register_cache
@functools.lru_cache(maxsize=1 << 13)
def _imports_wrapper(symbol: str) -> bool:
    """Whether an imported `name@VERSION` is a syscall wrapper (`is_wrapper_name` of its
    name). Cached: every dynamic file's imports are asked about, most of them libc's."""
    return is_wrapper_name(symbol.partition("@")[0])


def _functions(facts: ElfFacts, view: ElfView, imported: list[str]) -> list[tuple[int, int, str]]:
    """Functions from .symtab, plus the PLT stubs of imported syscall wrappers
    (`syscall@plt`) so that the syscall scan can follow calls to them."""
    functions = list(facts.symtab_functions)
    # a wrapper's spelling is a wrapper's name: most files import none, and skip the rest
    if any(map(_imports_wrapper, imported)) and wrapper_spellings().intersection(_bare(imported)):
        wrappers = {
            index: name
            for index, name in facts.dynamic_symbols.imported_names.items()
            if is_wrapper_name(name)
        }
        functions += plt_stubs(view, wrappers)
    return functions


def _text(value: str | bytes) -> str:
    """lief gives names that are not valid UTF-8 as bytes."""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _read_dynamic(elf: lief.ELF.Binary) -> DynamicFacts:
    """Entries are told apart by lief's class, not by tag: comparing an unknown tag value
    with the TAG enum warns."""
    lief = _lief()[0]
    dynamic = DynamicFacts()
    for entry in elf.dynamic_entries:
        if isinstance(entry, lief.ELF.DynamicEntryLibrary):
            dynamic.needed.append(_text(entry.name))
        elif isinstance(entry, lief.ELF.DynamicSharedObject):
            dynamic.soname = _text(entry.name)
        elif isinstance(entry, lief.ELF.DynamicEntryRpath):
            dynamic.rpath.extend(_text(p) for p in entry.paths)
        elif isinstance(entry, lief.ELF.DynamicEntryRunPath):
            dynamic.runpath.extend(_text(p) for p in entry.paths)
        elif isinstance(entry, lief.ELF.DynamicEntryFlags):
            dynamic.pie_flag |= entry.has(lief.ELF.DynamicEntryFlags.FLAG.PIE)
    return dynamic


def _file_type(layout: ElfLayout, dynamic: DynamicFacts, interpreter: str | None) -> str:
    kind = ET_NAMES[layout.e_type]
    if kind != "shared":
        return kind
    # ET_DYN is both: DF_1_PIE says executable; else a SONAME says library (libc.so.6
    # has an interpreter too, to print its version); else an interpreter says PIE.
    if dynamic.pie_flag:
        return "pie"
    if dynamic.soname is None and interpreter is not None:
        return "pie"
    return "shared-library"


def _linkage(
    layout: ElfLayout, file_type: str, dynamic: DynamicFacts, interpreter: str | None
) -> str:
    if file_type in ("relocatable", "core"):
        return "none"
    if interpreter is not None or dynamic.needed or file_type == "shared-library":
        return "dynamic"
    return "static-pie" if file_type == "pie" else "static"


def _versioned(symbol: lief.ELF.Symbol) -> str:
    name = _text(symbol.name)
    version = symbol.symbol_version
    if version is not None:
        aux = version.symbol_version_auxiliary
        if aux is not None and aux.name:
            return f"{name}@{_text(aux.name)}"
    return name


def _lief_dynamic_symbols(elf: lief.ELF.Binary) -> DynamicSymbols:
    """lief's imported and exported dynamic symbols with a name (`name@VERSION`)."""
    symbols = DynamicSymbols()
    imported: set[str] = set()
    exported: set[str] = set()
    for index, symbol in enumerate(elf.dynamic_symbols):
        name = _text(symbol.name)
        if not name:
            continue
        if symbol.imported:
            imported.add(_versioned(symbol))
            symbols.imported_names[index] = name
        elif symbol.exported:
            exported.add(_versioned(symbol))
    symbols.imported, symbols.exported = sorted(imported), sorted(exported)
    return symbols


def _bare(symbols: list[str]) -> list[str]:
    return [s.partition("@")[0] for s in symbols]


STT_FUNC, STT_GNU_IFUNC = 2, 10


def _symtab_functions(elf: lief.ELF.Binary) -> list[tuple[int, int, str]]:
    """(address, size, name) of functions defined in .symtab (types read from st_info:
    comparing an unknown type with lief's enum warns)."""
    return [
        (symbol.value, symbol.size, _text(symbol.name))
        for symbol in elf.symtab_symbols
        if symbol.information & 0xF in (STT_FUNC, STT_GNU_IFUNC)
        and symbol.shndx != 0
        and symbol.name
    ]


def _note_owners(elf: lief.ELF.Binary) -> frozenset[str]:
    owners = set()
    for note in elf.notes:
        try:
            owners.add(_text(note.name))
        except UnicodeDecodeError:  # lief decodes some owners itself, and may fail
            continue
    return frozenset(owners)


def _build_id(elf: lief.ELF.Binary) -> str | None:
    lief = _lief()[0]
    for note in elf.notes:
        if note.type == lief.ELF.Note.TYPE.GNU_BUILD_ID:
            return bytes(note.description).hex()
    return None


def _comment(view: ElfView) -> list[str]:
    """The distinct entries of .comment (compilers and linkers that made the file)."""
    section = view.layout.section(".comment")
    if section is None or not section.in_file:
        return []
    raw = view.data[section.offset : section.offset + section.size]
    entries = (item.decode("utf-8", "replace").strip() for item in raw.split(b"\0"))
    return list(dict.fromkeys(e for e in entries if e))


def _libc(binary: Binary, view: ElfView, path: str) -> str:
    """glibc, musl, none or unknown: from DT_NEEDED, the SONAME or file name, symbol
    versions, then the loader; for static files from the functions or strings linked in."""
    names = [*binary.needed, posixpath.basename(path)] + ([binary.soname] if binary.soname else [])
    if any(n.startswith(("ld-musl-", "libc.musl-")) or n == "libc.so" for n in names):
        return "musl"
    if any(n.startswith("ld-linux") or n == "libc.so.6" for n in names):
        return "glibc"
    if any("@GLIBC_" in s for s in binary.imported_symbols):
        return "glibc"
    if binary.linkage in ("static", "static-pie"):
        defined = {name for _start, _size, name in view.functions}
        for flavour, functions in STATIC_LIBC_FUNCTIONS.items():
            if defined & functions:
                return flavour
        rodata = view.section_ranges([".rodata"])
        if any(view.data.find(GLIBC_STRING, a, b) >= 0 for a, b in rodata):
            return "glibc"
    if binary.runtime is not None and binary.runtime.name == "go":
        return "none"  # Go without cgo: even a PIE that names ld.so loads no libc
    loader = posixpath.basename(binary.interpreter or "")
    if loader.startswith("ld-musl-"):
        return "musl"
    return "glibc" if loader.startswith("ld-linux") else "unknown"
