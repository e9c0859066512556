"""The facts parse.py asks lief for, read with `struct` over the file's bytes instead.

lief copies the whole file into a buffer of its own and builds an object per symbol:
for a 104 MiB library (libLLVM) that is most of the worker's peak, and importing lief
costs some 50 MiB and half a second. `read_direct` reads the same facts over the bytes
parse.py already has (a read-only map of the file) and keeps only the facts. parse.py
asks it first for every file, and lief only where it declines; the parity test
(tests/test_direct_reader.py) runs it against lief on every ELF file of the corpus.

It follows lief 1.0.0's own rules, read in LIEF's source at commit d05b3499b
(github.com/lief-project/LIEF, tag 1.0.0, the version installed when this was written;
pyproject allows >=0.15,<2 and the parity test tells when a lief reads otherwise), not
the ELF specification's, where the two part:
- src/ELF/Parser.tcc `parse_dyn_table` / `parse_dynamic_entries`: the dynamic table is
  read from the last PT_LOAD wrapping PT_DYNAMIC, to DT_NULL, at most 1000 entries;
  `process_dynamic_table`, `get_numberof_dynamic_symbols` (AUTO: the symbol count from
  the hash table, .dynsym's size or the relocations), `parse_dynamic_symbols`,
  `parse_symtab_symbols`, `parse_symbol_version_requirement` / `_definition`;
- src/ELF/Parser.cpp `parse_symbol_version`, `link_symbol_version`, `parse_notes`,
  `get_dynamic_string_table`; src/ELF/Binary.cpp `virtual_address_to_offset`;
- src/ELF/Symbol.cpp `is_imported` / `is_exported`; src/ELF/GnuHash.cpp `nb_symbols`;
- src/ELF/Note.cpp `create` / `convert_type` (a note's owner), DynamicEntryRpath.cpp
  `paths` (split on ':' as std::getline does), DynamicEntryFlags.cpp `has`;
- src/BinaryStream/BinaryStream.cpp `peek_string` (how a string at the end is cut).

What it does not handle it does not guess: `read_direct` returns None (the caller asks
lief) for big-endian files, core files, a dynamic table without a usable DT_STRTAB, a
GNU hash table in a segment past the end of the file, and strings lief would hand to
Python undecodable (an rpath or interpreter that is not UTF-8).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat

from portscan.inspect.elf.layout import PT_DYNAMIC, PT_INTERP, PT_LOAD, Bytes, ElfLayout, Segment

try:  # `_Reader._dynamic_symbols`' loop in C (_elftables.c), if it was built
    from portscan.inspect.elf import _elftables
except ImportError:  # pragma: no cover - built by setup.py; the Python is the fallback
    _elftables = None

PT_NOTE = 4
SHT_SYMTAB, SHT_NOTE, SHT_DYNSYM = 2, 7, 11
DT_NULL, DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 0, 1, 4, 5, 6, 10
DT_RELA, DT_RELASZ, DT_SONAME, DT_RPATH, DT_REL, DT_RELSZ = 7, 8, 14, 15, 17, 18
DT_PLTREL, DT_JMPREL, DT_RUNPATH = 20, 23, 29
DT_PLTRELSZ = 2
DT_GNU_HASH, DT_VERSYM, DT_FLAGS_1 = 0x6FFFFEF5, 0x6FFFFFF0, 0x6FFFFFFB
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
DF_1_PIE = 0x08000000
ET_CORE = 4
STB_GLOBAL, STB_WEAK = 1, 2
STT_OBJECT, STT_FUNC, STT_GNU_IFUNC = 1, 2, 10
NT_GNU_BUILD_ID = 3

# st_info values (type in the low nibble, binding in the high one) of the symbols lief
# may call imported or exported: functions, indirect functions and objects, global or weak
_TYPED = tuple(
    info & 0xF in (STT_FUNC, STT_GNU_IFUNC, STT_OBJECT) and info >> 4 in (STB_GLOBAL, STB_WEAK)
    for info in range(256)
)
_TYPED_BYTES = bytes(_TYPED)  # as _elftables.c reads it
MAX_STRING_TABLE = 64 << 20  # bytes of a string table copied for `_StringTable`

# lief's limits (include/LIEF/ELF/Parser.hpp, Note.cpp)
MAX_DYNAMIC_ENTRIES = 1000
MAX_SYMBOLS = 1_000_000
DELTA_SYMBOLS = 3000
MAX_NOTE_DESCRIPTION = 1 << 20
NOTE_ERROR_THRESHOLD = 6
MAX_SEGMENT_SIZE = 3 << 30

# Machines whose imports may have an address (lief: MIPS, MIPS_RS3_LE, MIPS_X, PPC,
# PPC64, RISCV), as layout.MACHINES names them.
IMPORTS_WITH_ADDRESS = frozenset({"mips", "em-10", "em-51", "ppc", "ppc64", "riscv"})

# Note owners lief knows, with the types it knows for each (Note.cpp, files other than
# core dumps): such a note's owner is the name up to its first NUL; any other note's
# owner is its whole name field, NULs included.
NOTE_TYPES: dict[bytes, frozenset[int]] = {
    b"Android": frozenset({1, 3, 4}),
    b"GNU": frozenset({1, 2, 3, 4, 5}),
    b"Go": frozenset({4}),
    b"stapsdt": frozenset({3}),
    b"Crashpad": frozenset({0x4F464E49}),
    b"QNX": frozenset({3}),
}
NT_GNU_PROPERTY_TYPE_0 = 5
_SYMBOL64 = struct.Struct("<IBxHQQ")  # Elf64_Sym without st_other


@dataclass
class DynamicSymbols:
    """The dynamic symbols as parse.py uses them: lief's `imported` / `exported` ones with
    a name, each as `name@VERSION` (or the bare name), sorted (an imported symbol is
    not also exported); and the names of the imported ones by .dynsym index (r_info's)."""

    imported: list[str] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    imported_names: dict[int, str] = field(default_factory=dict)


@dataclass
class DynamicFacts:
    """The dynamic section's entries that say how a file is linked."""

    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    pie_flag: bool = False


@dataclass
class ElfFacts:
    """What parse.py reads through lief, as plain data."""

    dynamic: DynamicFacts
    interpreter: str | None
    dynamic_symbols: DynamicSymbols
    symtab_functions: list[tuple[int, int, str]]  # (address, size, name)
    note_owners: frozenset[str]
    build_id: str | None


class _Unsupported(Exception):
    """Something lief may read differently from this reader: ask lief."""


def read_direct(data: Bytes, layout: ElfLayout) -> ElfFacts | None:
    """The facts of one ELF file read without lief; None where lief must be asked."""
    if not layout.little_endian or layout.e_type == ET_CORE:
        return None
    try:
        return _Reader(data, layout).facts()
    except _Unsupported:
        return None


def _paths(value: bytes) -> list[str]:
    """An rpath split on ':' as std::getline does (no empty last element)."""
    parts = _strict(value).split(":")
    if parts[-1] == "":
        parts.pop()
    return parts


def _strict(value: bytes) -> str:
    """A string lief hands over as `str` only when it is UTF-8 (else Python raises)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unsupported from exc


def _text(value: bytes) -> str:
    """A string lief hands over as `str`, or as bytes parse.py decodes with replacement."""
    return value.decode("utf-8", "replace")


class _StringTable:
    """A string table's names by offset, as `_Reader._string` reads them, decoded with
    `_text`: the table (`size` bytes from `start`, as its dynamic entry or section header
    says) is copied once and, when it is ASCII (as good as always), decoded once, so that
    a name is the text from its offset to the next NUL. An offset after which the table
    holds no NUL (past the table, or in its last string) is read by `_string`, whose
    rules (lief's peek_string_at, the end of the file included) are the answer
    throughout: a string the table ends with a NUL reads the same from the file, its
    first NUL from `start + at` being that one."""

    def __init__(self, reader: _Reader, start: int, size: int) -> None:
        self.reader = reader
        self.start = start
        size = max(min(size, len(reader.data) - start, MAX_STRING_TABLE), 0)
        self.raw = bytes(reader.data[start : start + size])
        self.ascii = self.raw.decode("ascii") if self.raw.isascii() else None

    def text(self, at: int) -> str:
        """The name at `at` bytes into the table, as `_text(_string(start + at))`."""
        if self.ascii is not None:
            end = self.ascii.find("\0", at)
            if end >= 0:
                return self.ascii[at:end]
        else:
            end = self.raw.find(b"\0", at)
            if end >= 0:
                return _text(self.raw[at:end])
        return _text(self.reader._string(self.start + at))


class _Reader:
    def __init__(self, data: Bytes, layout: ElfLayout) -> None:
        self.data = data
        self.layout = layout
        self.wide = layout.elf_class == 64
        self.word = "Q" if self.wide else "I"
        self.sym = struct.Struct("<IBBHQQ" if self.wide else "<IIIBBH")
        self.dyn = struct.Struct("<qQ" if self.wide else "<iI")
        self.entries: list[tuple[int, int]] = []
        self.tags: dict[int, int] = {}  # each tag's first value

    def facts(self) -> ElfFacts:
        self.entries = self._dynamic_entries()
        for tag, value in self.entries:
            self.tags.setdefault(tag, value)
        strtab = self._string_table()
        dynamic = self._dynamic(strtab)
        notes = list(self._notes())
        names = _StringTable(self, strtab, self._tag(DT_STRSZ) or 0) if strtab else None
        return ElfFacts(
            dynamic=dynamic,
            interpreter=self._interpreter(),
            dynamic_symbols=self._dynamic_symbols(names),
            symtab_functions=self._symtab_functions(),
            note_owners=frozenset(owner for owner, _ in notes if owner is not None),
            build_id=next((bytes(d).hex() for _, d in notes if d is not None), None),
        )

    # -- addresses and strings -------------------------------------------------------

    def _offset(self, address: int) -> int | None:
        """lief's virtual_address_to_offset: the first PT_LOAD whose memory holds it."""
        for seg in self.layout.segments:
            if seg.type == PT_LOAD and seg.address <= address < seg.address + seg.memory_size:
                return address - seg.address + seg.offset
        return None

    def _string(self, offset: int, limit: int | None = None) -> bytes:
        """lief's peek_string_at: to the NUL, or to the end (whose last byte it drops)."""
        size = len(self.data)
        if offset + 1 >= size:
            return b""
        end = size if limit is None else min(size, offset + limit)
        nul = self.data.find(b"\0", offset, end)
        return bytes(self.data[offset:nul] if nul >= 0 else self.data[offset : end - 1])

    def _tag(self, tag: int) -> int | None:
        """The value of the first entry with `tag`, None without one."""
        return self.tags.get(tag)

    # -- dynamic section -------------------------------------------------------------

    def _dynamic_entries(self) -> list[tuple[int, int]]:
        pt_dyn = next((s for s in self.layout.segments if s.type == PT_DYNAMIC), None)
        if pt_dyn is None:
            return []
        start, end = pt_dyn.offset, len(self.data)
        wrapping = [
            s
            for s in self.layout.segments
            if s.type == PT_LOAD
            and s.address <= pt_dyn.address < s.address + s.memory_size
            and s.address < pt_dyn.address + pt_dyn.memory_size <= s.address + s.memory_size
        ]
        if wrapping:
            load = wrapping[-1]
            content = min(load.file_size, len(self.data) - load.offset)
            relative = pt_dyn.address - load.address
            if content <= 0 or relative >= content:
                return []
            start, end = load.offset + relative, load.offset + content
        count = min(max(end - start, 0) // self.dyn.size, MAX_DYNAMIC_ENTRIES)
        entries = []
        for tag, value in self.dyn.iter_unpack(self.data[start : start + count * self.dyn.size]):
            entries.append((tag, value))
            if tag == DT_NULL:
                break
        return entries

    def _string_table(self) -> int:
        """File offset of the dynamic strings (0: none), as lief finds it."""
        if not self.entries:
            return 0
        address = self._tag(DT_STRTAB)
        offset = self._offset(address) if address is not None else None
        if offset is None:
            raise _Unsupported("dynamic table without a mapped DT_STRTAB")
        return offset

    def _dynamic(self, strtab: int) -> DynamicFacts:
        dynamic = DynamicFacts()
        for tag, value in self.entries:
            if tag == DT_NEEDED:
                dynamic.needed.append(_text(self._string(strtab + value)))
            elif tag == DT_SONAME:
                dynamic.soname = _text(self._string(strtab + value))
            elif tag == DT_RPATH:
                dynamic.rpath.extend(_paths(self._string(strtab + value)))
            elif tag == DT_RUNPATH:
                dynamic.runpath.extend(_paths(self._string(strtab + value)))
            elif tag == DT_FLAGS_1:
                dynamic.pie_flag |= bool(value & DF_1_PIE)
        return dynamic

    def _interpreter(self) -> str | None:
        """The last PT_INTERP's string (lief keeps the last one it reads)."""
        found = b""
        interp = False
        for seg in self.layout.segments:
            if seg.type != PT_INTERP:
                continue
            interp = True
            if 0 < seg.file_size < MAX_SEGMENT_SIZE:
                size = min(seg.file_size, len(self.data))
                if seg.offset + size <= len(self.data):
                    found = self._string(seg.offset, size)
        return _strict(found) if interp and found else None

    # -- dynamic symbols -------------------------------------------------------------

    def _dynamic_symbols(self, names: _StringTable | None) -> DynamicSymbols:
        """lief's imported and exported dynamic symbols (Symbol.cpp `is_imported` /
        `is_exported`: a function, indirect function or object, global or weak, undefined
        and without an address, or defined with an address or a size)."""
        symbols = DynamicSymbols()
        address = self._tag(DT_SYMTAB)
        offset = self._offset(address) if address is not None else None
        if offset is None or names is None:
            return symbols
        count = min(self._symbol_count(), max(len(self.data) - offset, 0) // self.sym.size)
        versions = self._versions(count, names)
        anywhere = self.layout.machine in IMPORTS_WITH_ADDRESS
        if _elftables is not None:  # the loop below, in C
            versym, by_index = versions or (None, {})
            raw = self.data[offset : offset + count * self.sym.size]
            found = _elftables.dynamic_symbols(
                raw, self.wide, versym, by_index, names.ascii, names.text, _TYPED_BYTES,
                anywhere, symbols.imported_names,
            )  # fmt: skip
            symbols.imported, symbols.exported = sorted(found[0]), sorted(found[1])
            return symbols
        imported: set[str] = set()
        exported: set[str] = set()
        text, typed = names.text, _TYPED
        table = names.ascii or ""  # `text` inlined for an ASCII table, the usual case
        named = repeat("")
        if versions is not None:
            versym, by_index = versions
            named = map(by_index.get, struct.unpack(f"<{count}H", versym), repeat(""))
        for index, ((name_at, info, shndx, value, size), version) in enumerate(
            zip(self._symbols(offset, count), named, strict=False)
        ):
            if not typed[info] or not name_at:
                continue  # neither imported nor exported, or without a name
            end = table.find("\0", name_at)
            name = table[name_at:end] if end >= 0 else text(name_at)
            if not name:
                continue
            if shndx == 0:
                if anywhere or value == 0:
                    imported.add(f"{name}@{version}" if version else name)
                    symbols.imported_names[index] = name
            elif value != 0 or size > 0:
                exported.add(f"{name}@{version}" if version else name)
        symbols.imported, symbols.exported = sorted(imported), sorted(exported)
        return symbols

    def _symbols(self, offset: int, count: int) -> Iterable[tuple[int, int, int, int, int]]:
        """(st_name, st_info, st_shndx, st_value, st_size) of `count` entries."""
        raw = self.data[offset : offset + count * self.sym.size]
        if self.wide:  # the fields in this order already, st_other skipped
            return _SYMBOL64.iter_unpack(raw)
        return (
            (name, info, shndx, value, size)
            for name, value, size, info, _other, shndx in self.sym.iter_unpack(raw)
        )

    def _symbol_count(self) -> int:
        """lief's AUTO count of dynamic symbols (Parser.tcc get_numberof_dynamic_symbols)."""
        by_hash = self._count_from_hash()
        dynsym = next((s for s in self.layout.sections if s.type == SHT_DYNSYM), None)
        by_section = (dynsym.size // self.sym.size) & 0xFFFFFFFF if dynsym else 0
        if by_hash > 0 and by_section == by_hash:
            return by_hash
        by_relocations = self._count_from_relocations()
        candidate = by_relocations
        if by_section < MAX_SYMBOLS and 0 < by_section - by_relocations < DELTA_SYMBOLS:
            candidate = by_section
        if by_hash == 0:
            return candidate
        if by_hash < MAX_SYMBOLS and 0 < by_hash - candidate < DELTA_SYMBOLS:
            candidate = by_hash
        return candidate

    def _count_from_hash(self) -> int:
        if DT_HASH in self.tags:
            offset = self._offset(self._tag(DT_HASH) or 0)
            if offset is None or offset + 8 > len(self.data):
                return 0
            return struct.unpack_from("<I", self.data, offset + 4)[0]
        address = self._tag(DT_GNU_HASH)
        if address is None:
            return 0
        segment = self._segment_at(address)
        if segment is None:
            return 0
        if segment.offset + segment.file_size > len(self.data):
            raise _Unsupported("GNU hash table in a segment past the end of the file")
        return self._gnu_hash_count(segment, address - segment.address)

    def _segment_at(self, address: int) -> Segment | None:
        """lief's segment_from_virtual_address: the first segment of any type."""
        return next(
            (s for s in self.layout.segments if s.address <= address < s.address + s.memory_size),
            None,
        )

    def _gnu_hash_count(self, segment: Segment, at: int) -> int:
        """GnuHash::nb_symbols, over the segment's bytes from `at`."""
        base, size = segment.offset, segment.file_size

        def word(position: int) -> int | None:
            if position + 4 > size:
                return None
            return struct.unpack_from("<I", self.data, base + position)[0]

        header = [word(at + 4 * i) for i in range(3)]
        if None in header:
            return 0
        nbuckets, symndx, maskwords = header
        assert nbuckets is not None and symndx is not None and maskwords is not None
        if maskwords & (maskwords - 1):
            return 0
        position = at + 16 + (8 if self.wide else 4) * maskwords
        readable = min(nbuckets, max(size - position, 0) // 4)  # the buckets in the segment
        buckets = struct.unpack_from(f"<{readable}I", self.data, base + position)
        max_bucket = max(buckets, default=0)
        position += 4 * readable
        if max_bucket == 0 or max_bucket < symndx:
            return 0
        position += 4 * (max_bucket - symndx)
        count = 0
        while True:
            if not (position < size and position + 4 < size):  # lief's can_read
                return 0
            value = word(position)
            assert value is not None
            position += 4
            count += 1
            if value & 1:
                return max_bucket + count

    def _count_from_relocations(self) -> int:
        """1 + the highest symbol index of the dynamic relocations (0: none)."""
        rela = struct.Struct("<QQq" if self.wide else "<IIi")
        rel = struct.Struct("<QQ" if self.wide else "<II")
        shift = 32 if self.wide else 8
        pltrel = self._tag(DT_PLTREL)
        plt_rela = pltrel == DT_RELA if pltrel is not None else self.wide
        tables = [(DT_RELA, DT_RELASZ, rela), (DT_REL, DT_RELSZ, rel)]
        tables.append((DT_JMPREL, DT_PLTRELSZ, rela if plt_rela else rel))
        count = 0
        for tag, size_tag, entry in tables:
            address, size = self._tag(tag), self._tag(size_tag)
            offset = self._offset(address) if address is not None and size is not None else None
            if offset is None or size is None:
                continue
            n = min(
                (size // entry.size) & 0xFFFFFFFF, max(len(self.data) - offset, 0) // entry.size
            )
            highest = 0
            for fields in entry.iter_unpack(self.data[offset : offset + n * entry.size]):
                highest = max(highest, (fields[1] >> shift) & 0xFFFFFFFF)
            count = max(count, highest + 1)
        return count

    # -- symbol versions -------------------------------------------------------------

    def _versions(self, count: int, names: _StringTable) -> tuple[bytes, dict[int, str]] | None:
        """The dynamic symbols' DT_VERSYM entries (16 bits each, `count` of them) and the
        version name of each entry's value (none: ""), or None when lief links no version
        to the symbols (no DT_VERSYM, or a table shorter than .dynsym)."""
        address = self._tag(DT_VERSYM)
        offset = self._offset(address) if address is not None else None
        if offset is None:
            return None
        available = max(len(self.data) - offset, 0) // 2
        if available < count:
            return None
        by_index: dict[int, str] = {}  # by the whole value: with the hidden bit and without
        for index, name in self._version_names(names).items():
            if index <= 0x7FFF:  # no value masked with 0x7FFF reaches the others
                by_index[index] = by_index[index | 0x8000] = name
        return bytes(self.data[offset : offset + 2 * count]), by_index

    def _version_names(self, names: _StringTable) -> dict[int, str]:
        """Version index -> name: DT_VERNEED's (the last for an index wins), then
        DT_VERDEF's first name for indexes above 1 not named yet."""
        by_index: dict[int, str] = {}
        for other, name in self._requirements(names):
            by_index[other] = name
        for index, name in self._definitions(names):
            if index > 1:
                by_index.setdefault(index, name)
        return by_index

    def _peek(self, fmt: str, offset: int) -> tuple[int, ...] | None:
        if offset < 0 or offset + struct.calcsize(fmt) > len(self.data):
            return None
        return struct.unpack_from(fmt, self.data, offset)

    def _linked(self, fmt: str, at: int, count: int) -> Iterator[tuple[int, tuple[int, ...]]]:
        """Up to `count` records of `fmt` from `at`, with where each is: a record's last
        field is the offset of the next from it (0: it is the last), as in the version
        need and definition lists and their auxiliary lists."""
        for _ in range(count):
            record = self._peek(fmt, at)
            if record is None:
                return
            yield at, record
            if record[-1] == 0:
                return
            at += record[-1]

    def _requirements(self, names: _StringTable) -> Iterator[tuple[int, str]]:
        address, number = self._tag(DT_VERNEED), self._tag(DT_VERNEEDNUM)
        offset = self._offset(address) if address is not None and number is not None else None
        if offset is None or number is None:
            return
        for at, header in self._linked("<HHIII", offset, min(MAX_SYMBOLS, number & 0xFFFFFFFF)):
            _version, cnt, _file, aux, _next = header
            if cnt > 0 and aux > 0:
                for _, entry in self._linked("<IHHII", at + aux, cnt):
                    _hash, _flags, other, name, _next = entry
                    yield other, names.text(name)

    def _definitions(self, names: _StringTable) -> Iterator[tuple[int, str]]:
        address, number = self._tag(DT_VERDEF), self._tag(DT_VERDEFNUM)
        offset = self._offset(address) if address is not None and number is not None else None
        if offset is None or number is None:
            return
        for at, header in self._linked("<HHHHIII", offset, min(MAX_SYMBOLS, number & 0xFFFFFFFF)):
            _version, _flags, index, cnt, _hash, aux, _next = header
            for _, (name, _next) in self._linked("<II", at + aux, cnt):
                yield index, names.text(name)

    # -- .symtab -------------------------------------------------------------------

    def _symtab_functions(self) -> list[tuple[int, int, str]]:
        sections = self.layout.sections
        symtab = next((s for s in sections if s.type == SHT_SYMTAB), None)
        if symtab is None or not 0 < symtab.link < len(sections):
            return []
        strings = sections[symtab.link]
        names = _StringTable(self, strings.offset, strings.size)
        functions = []
        for name_at, info, shndx, value, size in self._symbols(
            symtab.offset, symtab.size // self.sym.size
        ):
            if info & 0xF in (STT_FUNC, STT_GNU_IFUNC) and shndx != 0:
                name = names.text(name_at)
                if name:
                    functions.append((value, size, name))
        return functions

    # -- notes ---------------------------------------------------------------------

    def _notes(self) -> Iterator[tuple[str | None, bytes | None]]:
        """(owner, build-id bytes or None) of each note lief reads: those of the PT_NOTE
        segments, then of the SHT_NOTE sections. The owner is None when lief's name
        would not decode as UTF-8 (parse.py skips it)."""
        for seg in self.layout.segments:
            if seg.type == PT_NOTE:
                yield from self._notes_at(seg.offset, seg.file_size)
        for section in self.layout.sections:
            if section.type == SHT_NOTE:
                yield from self._notes_at(section.offset, section.size)

    def _notes_at(self, start: int, size: int) -> Iterator[tuple[str | None, bytes | None]]:
        data, total = self.data, len(self.data)
        at, end, errors = start, start + size, 0
        while at < total and at < end:
            current = at
            header = self._peek("<III", at)
            if header is None:
                return
            namesz, descsz, kind = header
            at += 12
            if namesz == 0 or namesz > total - at:
                errors += 1
            elif kind == NT_GNU_PROPERTY_TYPE_0 and self.layout.machine == "em-0":
                raise _Unsupported("a GNU property note in a file of no machine")
            else:
                name = bytes(data[at : at + namesz])
                at = _align4(at + namesz)
                chunks = 0
                if descsz:
                    wanted = (min(descsz, MAX_NOTE_DESCRIPTION) - 1) // 4 + 1
                    chunks = max(min(wanted, (total - at) // 4), 0)
                description = data[at : at + 4 * chunks]
                at += 4 * chunks
                if descsz:
                    at = _align4(at)
                owner_name = name.split(b"\0", 1)[0]
                known = kind in NOTE_TYPES.get(owner_name, ())
                try:
                    owner = (owner_name if known else name).decode("utf-8")
                except UnicodeDecodeError:
                    owner = None
                build_id = owner_name == b"GNU" and kind == NT_GNU_BUILD_ID
                yield owner, description if build_id else None
            if errors > NOTE_ERROR_THRESHOLD or at <= current:
                return


def _align4(value: int) -> int:
    return (value + 3) & ~3
