"""The layout of one ELF file, read and checked with `struct`, shared by the ELF inspectors.

`read_layout` validates what every later step trusts (header, program headers,
section headers and their names all lie inside the file) and raises `MalformedElf`
otherwise, so a truncated or corrupted file becomes a finding instead of an
exception deep inside lief or capstone. `ElfView` adds the bytes and the function
symbols, and answers the questions the syscall scan and runtime detection ask:
which byte ranges hold code, what a virtual address reads as, which function
contains an address.
"""

from __future__ import annotations

import bisect
import functools
import mmap
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from portscan.inspect.elf.spec import ELF_MAGIC
from portscan.model import Binary

Bytes = bytes | bytearray | mmap.mmap  # a file's bytes: in memory or mapped read-only

# a search through a mapped file hands its pages back this far behind it (`find_all`)
RELEASE_BEHIND = 8 << 20


def release(data: Bytes, start: int = 0, length: int | None = None) -> None:
    """Hand back the pages of a mapped file read so far (they count in the process's
    RSS until unmapped, and are read again from the page cache if touched again); a
    no-op for bytes in memory, and for a map no larger than RELEASE_BEHIND (a search
    keeps that much resident behind it anyway): its pages go when it is unmapped, and
    the several searches of one file (runtime markers, syscall opcodes, path strings)
    do not each fault them in again."""
    if len(data) <= RELEASE_BEHIND or not isinstance(data, mmap.mmap):
        return
    if hasattr(mmap, "MADV_DONTNEED") and start < len(data):
        size = len(data) - start if length is None else min(length, len(data) - start)
        aligned = start - start % mmap.PAGESIZE  # madvise takes whole pages
        data.madvise(mmap.MADV_DONTNEED, aligned, size + start - aligned)


def find_all(data: Bytes, needle: bytes, start: int, end: int) -> Iterator[int]:
    """Every offset of `needle` in [start, end) (overlapping ones too), in order. The
    range is searched RELEASE_BEHIND bytes at a time and each part's pages handed back
    once searched (`release`), so a search through a large mapped file never makes it
    resident whole. A page read again comes back from the page cache: what is found is
    the same."""
    pattern = _short_literal(needle)
    for part in range(start, end, RELEASE_BEHIND):
        stop = min(part + RELEASE_BEHIND + len(needle) - 1, end)
        if pattern is not None:
            for match in pattern.finditer(data, part, stop):
                if match.start() >= part + RELEASE_BEHIND:
                    break  # the next part's
                yield match.start()
        else:
            offset = data.find(needle, part, stop)
            while 0 <= offset < part + RELEASE_BEHIND:  # one starting past it is the next part's
                yield offset
                offset = data.find(needle, offset + 1, stop)
        release(data, part, RELEASE_BEHIND)


@functools.lru_cache(maxsize=64)
def _short_literal(needle: bytes) -> re.Pattern[bytes] | None:
    """A regex for a needle of two to four bytes that cannot overlap itself (no prefix
    is also a suffix), such as an opcode: its matches are then all its occurrences, and
    the regex engine finds them in code about twice as fast as `find` (whose skip
    tables gain little on so short a needle with a common first byte). None for any
    other needle."""
    if not 2 <= len(needle) <= 4 or any(needle[:k] == needle[-k:] for k in range(1, len(needle))):
        return None
    return re.compile(re.escape(needle))


PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
PT_GNU_EH_FRAME = 0x6474E550
PF_X = 1
SHF_EXECINSTR = 0x4
SHT_NOBITS = 8
ET_NAMES = {1: "relocatable", 2: "executable", 3: "shared", 4: "core"}
MACHINES = {
    2: "sparc",
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390",
    40: "arm",
    43: "sparcv9",
    62: "x86_64",
    183: "aarch64",
    243: "riscv",
    258: "loongarch",
}


def header_only(data: Bytes, error: str) -> Binary:
    """What the identification bytes still say about a file that could not be parsed."""
    binary = Binary(error=error)
    if len(data) >= 20 and data[4] in (1, 2) and data[5] in (1, 2):
        binary.elf_class = 32 if data[4] == 1 else 64
        binary.endianness = "little" if data[5] == 1 else "big"
        order = "little" if data[5] == 1 else "big"
        e_type = int.from_bytes(data[16:18], order)
        e_machine = int.from_bytes(data[18:20], order)
        binary.file_type = ET_NAMES.get(e_type, "unknown")
        binary.machine = MACHINES.get(e_machine, f"em-{e_machine}")
    return binary


class MalformedElf(ValueError):
    """The bytes start like ELF but do not hold a well-formed ELF file."""


class Segment(NamedTuple):
    """A program header. Segment and Section are named tuples, not frozen dataclasses:
    every ELF file of an image has its tens of headers read, and a frozen dataclass sets
    each field through object.__setattr__, twice as slow."""

    type: int
    flags: int
    offset: int
    file_size: int
    address: int
    memory_size: int


class Section(NamedTuple):
    """A section header (a tuple, as `Segment`)."""

    name: str
    type: int
    flags: int
    address: int
    offset: int
    size: int
    link: int = 0  # sh_link: the section this one refers to (a symbol table's strings)

    @property
    def in_file(self) -> bool:
        return self.type != SHT_NOBITS


@dataclass(frozen=True)
class ElfLayout:
    """Header fields, program headers and named section headers of one ELF file."""

    elf_class: int  # 32 or 64
    little_endian: bool
    os_abi: int
    e_type: int
    machine: str
    entry: int
    segments: tuple[Segment, ...]
    sections: tuple[Section, ...]

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)


def read_layout(data: Bytes) -> ElfLayout:
    """Parse and check the ELF header, program headers and section headers of `data`."""
    if len(data) < 16 or data[:4] != ELF_MAGIC:
        raise MalformedElf(f"truncated: {len(data)} bytes, too short for an ELF identification")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2):
        raise MalformedElf(f"invalid ELF class byte {ei_class}")
    if ei_data not in (1, 2):
        raise MalformedElf(f"invalid ELF data-encoding byte {ei_data}")
    order = "<" if ei_data == 1 else ">"
    wide = ei_class == 2
    header = struct.Struct(order + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"))
    if len(data) < 16 + header.size:
        raise MalformedElf(f"truncated: {len(data)} bytes, the ELF header needs {16 + header.size}")
    (e_type, e_machine, _version, entry, phoff, shoff, _flags, _ehsize,
     phentsize, phnum, shentsize, shnum, shstrndx) = header.unpack_from(data, 16)  # fmt: skip
    if e_type not in ET_NAMES:
        raise MalformedElf(f"unknown ELF file type {e_type}")
    segments = _read_segments(data, order, wide, phoff, phentsize, phnum)
    sections = _read_sections(data, order, wide, shoff, shentsize, shnum, shstrndx)
    machine = MACHINES.get(e_machine, f"em-{e_machine}")
    elf_class = 64 if wide else 32
    return ElfLayout(elf_class, ei_data == 1, data[7], e_type, machine, entry, segments, sections)


def _table_bounds(data: Bytes, what: str, offset: int, entsize: int, count: int, need: int) -> None:
    if entsize < need:
        raise MalformedElf(f"{what} entries are {entsize} bytes, expected at least {need}")
    end = offset + entsize * count
    if end > len(data):
        raise MalformedElf(
            f"{what} table ends at byte {end}, past the end of the file ({len(data)} bytes): "
            "truncated or corrupt"
        )


def _read_segments(
    data: Bytes, order: str, wide: bool, phoff: int, phentsize: int, phnum: int
) -> tuple[Segment, ...]:
    if phnum == 0:
        return ()
    entry = struct.Struct(order + ("IIQQQQQQ" if wide else "IIIIIIII"))
    _table_bounds(data, "program header", phoff, phentsize, phnum, entry.size)
    segments = []
    for index, values in enumerate(_entries(data, entry, phoff, phentsize, phnum)):
        if wide:
            p_type, p_flags, offset, vaddr, _paddr, filesz, memsz, _align = values
        else:
            p_type, offset, vaddr, _paddr, filesz, memsz, p_flags, _align = values
        if p_type in (PT_LOAD, PT_DYNAMIC, PT_INTERP) and offset + filesz > len(data):
            raise MalformedElf(
                f"segment {index} (type {p_type}) ends at byte {offset + filesz}, past the end "
                f"of the file ({len(data)} bytes): truncated or corrupt"
            )
        segments.append(Segment(p_type, p_flags, offset, filesz, vaddr, memsz))
    return tuple(segments)


def _entries(
    data: Bytes, entry: struct.Struct, offset: int, size: int, count: int
) -> list[tuple[Any, ...]]:
    """The `count` table entries of `size` bytes from `offset`, each read as `entry`
    (which may be shorter than an entry); `_table_bounds` checked they are in the file."""
    if size == entry.size:
        return list(entry.iter_unpack(data[offset : offset + size * count]))
    return [entry.unpack_from(data, offset + index * size) for index in range(count)]


def _read_sections(
    data: Bytes, order: str, wide: bool, shoff: int, shentsize: int, shnum: int, shstrndx: int
) -> tuple[Section, ...]:
    if shoff == 0 or shnum == 0:
        return ()  # no section headers (stripped with sstrip) or extended numbering
    # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link (sh_info,
    # sh_addralign and sh_entsize skipped)
    entry = struct.Struct(order + ("IIQQQQI20x" if wide else "IIIIIII12x"))
    _table_bounds(data, "section header", shoff, shentsize, shnum, entry.size)
    raw = _entries(data, entry, shoff, shentsize, shnum)
    names = ""  # latin-1: a character per byte, so offsets into it are the table's
    if 0 < shstrndx < shnum:
        _n, _t, _f, _a, str_offset, str_size, _l = raw[shstrndx]
        names = data[str_offset : str_offset + str_size].decode("latin-1")
    sections = []
    for index, (name_offset, sh_type, flags, address, offset, size, link) in enumerate(raw):
        if sh_type != SHT_NOBITS and offset + size > len(data):
            raise MalformedElf(
                f"section {index} ends at byte {offset + size}, past the end of the file "
                f"({len(data)} bytes): truncated or corrupt"
            )
        end = names.find("\0", name_offset)
        name = names[name_offset:end] if 0 <= name_offset < end else ""
        sections.append(Section(name, sh_type, flags, address, offset, size, link))
    return tuple(sections)


@dataclass
class ElfView:
    """One ELF file's bytes with its layout and the functions known for it.

    `functions` are named (symbols, Go's pclntab, PLT stubs as `name@plt`); the
    function starts also include the unnamed ones from the .eh_frame_hdr table, which
    stripped C, C++ and Rust binaries keep for unwinding.
    """

    path: str
    data: Bytes
    layout: ElfLayout
    functions: list[tuple[int, int, str]] = field(default_factory=list)  # (start, size, name)
    _starts: list[int] = field(default_factory=list, repr=False)
    _all_starts: list[int] = field(default_factory=list, repr=False)

    def set_functions(self, functions: list[tuple[int, int, str]]) -> None:
        """Record function symbols (start address, size or 0 when unknown, name)."""
        self.functions = sorted(functions)
        self._starts = [f[0] for f in self.functions]
        # two sorted runs (the .eh_frame_hdr table is sorted too): sorting them whole is
        # a merge, and the sorted list loses its repeats in one pass
        self._all_starts = list(dict.fromkeys(sorted([*self._starts, *eh_frame_starts(self)])))

    def function_containing(self, address: int) -> tuple[int, int, str] | None:
        """(start, size, name) of the named function holding `address`; a symbol of
        size 0 extends to the next symbol."""
        index = bisect.bisect_right(self._starts, address) - 1
        if index < 0:
            return None
        function = self.functions[index]
        start, size, _name = function
        return function if size == 0 or address < start + size else None

    def function_start(self, address: int) -> int | None:
        """The nearest known function start at or before `address`."""
        index = bisect.bisect_right(self._all_starts, address) - 1
        return self._all_starts[index] if index >= 0 else None

    def offset_of(self, address: int) -> int | None:
        """File offset of a virtual address, through the PT_LOAD segments."""
        for seg in self.layout.segments:
            if seg.type == PT_LOAD and seg.address <= address < seg.address + seg.file_size:
                return seg.offset + address - seg.address
        return None

    def read(self, address: int, size: int) -> bytes | None:
        """`size` bytes at virtual `address`, or None when they are not all in the file."""
        offset = self.offset_of(address)
        if offset is None or offset + size > len(self.data):
            return None
        return self.data[offset : offset + size]

    def code_ranges(self) -> list[tuple[int, int, int]]:
        """(file offset, end offset, virtual address) of code: executable sections when
        the file has section headers, else executable PT_LOAD segments."""
        sections = [
            (s.offset, s.offset + s.size, s.address)
            for s in self.layout.sections
            if s.flags & SHF_EXECINSTR and s.in_file and s.size
        ]
        if sections or self.layout.sections:
            return sections
        return [
            (s.offset, s.offset + s.file_size, s.address)
            for s in self.layout.segments
            if s.type == PT_LOAD and s.flags & PF_X and s.file_size
        ]

    def section_ranges(self, names: list[str]) -> list[tuple[int, int]]:
        """(start, end) file offsets of the named sections; the whole file when the file
        has no section headers at all."""
        if not self.layout.sections:
            return [(0, len(self.data))]
        return [
            (s.offset, s.offset + s.size)
            for s in self.layout.sections
            if s.name in names and s.in_file
        ]


DW_EH_PE_DATAREL_SDATA4 = 0x3B  # the table encoding GNU ld, gold and lld all write


def eh_frame_starts(view: ElfView) -> list[int]:
    """Function start addresses from the binary-search table of .eh_frame_hdr; [] when
    the file has none or uses another encoding."""
    section = view.layout.section(".eh_frame_hdr")
    if section is not None and section.in_file:
        offset, address, size = section.offset, section.address, section.size
    else:
        segment = next((s for s in view.layout.segments if s.type == PT_GNU_EH_FRAME), None)
        if segment is None:
            return _fde_starts(view)  # static links often have no header: read the FDEs
        offset, address, size = segment.offset, segment.address, segment.file_size
    header = view.data[offset : offset + 12]
    if len(header) < 12 or header[0] != 1 or header[3] != DW_EH_PE_DATAREL_SDATA4:
        return []
    if header[2] != 0x03:  # fde_count as udata4
        return []
    order = "<" if view.layout.little_endian else ">"
    count = struct.unpack_from(order + "I", header, 8)[0]
    if 12 + 8 * count > size:
        return []
    table = struct.unpack_from(f"{order}{2 * count}i", view.data, offset + 12)
    return [address + rel for rel in table[0::2]]


def _uleb(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data):
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    return value, at


_POINTER_FORMATS = {0x00: "Q", 0x03: "I", 0x0B: "i", 0x04: "Q", 0x0C: "q", 0x02: "H", 0x0A: "h"}


def _fde_starts(view: ElfView, limit: int = 1 << 20) -> list[int]:
    """Function starts from the FDEs of .eh_frame itself (no .eh_frame_hdr): each FDE's
    pc_begin, read with its CIE's pointer encoding (absolute or pc-relative; DWARF 4
    section 6.4.1 and the LSB's .eh_frame description). [] when the section is absent or
    an encoding is one this does not read."""
    section = view.layout.section(".eh_frame")
    if section is None or not section.in_file or not view.layout.little_endian:
        return []
    data = bytes(view.data[section.offset : section.offset + section.size])
    encodings: dict[int, int] = {}  # CIE offset -> pointer encoding of its FDEs
    starts: list[int] = []
    at = 0
    while at + 8 <= len(data) and len(starts) < limit:
        length = struct.unpack_from("<I", data, at)[0]
        if length == 0:
            break
        if length == 0xFFFFFFFF:
            return starts  # 64-bit DWARF records: not produced for x86-64 or aarch64
        body, end = at + 4, at + 4 + length
        if end > len(data):
            break
        identifier = struct.unpack_from("<I", data, body)[0]
        if identifier == 0:  # a CIE
            encodings[at] = _cie_encoding(data, body + 4, end)
        else:
            encoding = encodings.get(body - identifier, -1)
            kind = _POINTER_FORMATS.get(encoding & 0x0F)
            field_at = body + 4
            if kind is not None and encoding & 0x70 in (0x00, 0x10) and field_at < end:
                value = struct.unpack_from("<" + kind, data, field_at)[0]
                if encoding & 0x70 == 0x10:
                    value += section.address + field_at
                starts.append(value & 0xFFFFFFFFFFFFFFFF)
        at = end
    return starts


def _cie_encoding(data: bytes, at: int, end: int) -> int:
    """The FDE pointer encoding a CIE's augmentation gives ('R'), absolute by default."""
    version = data[at]
    at += 1
    terminator = data.find(b"\0", at, end)
    if terminator < 0:
        return -1
    augmentation = data[at:terminator].decode("ascii", "replace")
    at = terminator + 1
    _, at = _uleb(data, at)  # code alignment
    _, at = _uleb(data, at)  # data alignment (signed; only skipped)
    at = at + 1 if version == 1 else _uleb(data, at)[1]  # return address register
    if not augmentation.startswith("z"):
        return 0x00
    _, at = _uleb(data, at)  # augmentation data length
    for letter in augmentation[1:]:
        if at >= end:
            return -1
        if letter == "R":
            return data[at]
        if letter == "P":
            kind = _POINTER_FORMATS.get(data[at] & 0x0F)
            if kind is None:
                return -1
            at += 1 + struct.calcsize(kind)
        elif letter == "L":
            at += 1
    return 0x00


R_JUMP_SLOT_GLOB_DAT = {"x86_64": (7, 6), "aarch64": (1026, 1025)}


def plt_stubs(view: ElfView, imports: dict[int, str]) -> list[tuple[int, int, str]]:
    """(stub address, size, `name@plt`) of the PLT stubs of some imported functions,
    given as {dynamic symbol index: name}, so that calls to them can be recognised
    (x86_64 and aarch64, RELA only)."""
    kinds = R_JUMP_SLOT_GLOB_DAT.get(view.layout.machine)
    if kinds is None or view.layout.elf_class != 64 or not view.layout.little_endian:
        return []
    slots = _got_slots(view, imports, kinds)
    if not slots:
        return []
    stubs = []
    for section in view.layout.sections:
        if section.name not in (".plt", ".plt.sec", ".plt.got") or not section.in_file:
            continue
        entry = 8 if section.name == ".plt.got" else 16
        for index in range(section.size // entry):
            at = section.offset + index * entry
            address = section.address + index * entry
            slot = _stub_slot(view, at, address, entry)
            if slot in slots:
                stubs.append((address, entry, f"{slots[slot]}@plt"))
    return stubs


def _got_slots(view: ElfView, imports: dict[int, str], kinds: tuple[int, int]) -> dict[int, str]:
    """GOT slot address -> name, from the JUMP_SLOT and GLOB_DAT relocations of the
    wanted symbols (found with bytes.find on their packed r_info)."""
    slots: dict[int, str] = {}
    data = view.data
    for section in view.layout.sections:
        if section.name not in (".rela.plt", ".rela.dyn") or not section.in_file:
            continue
        start, end = section.offset, section.offset + section.size
        for index, name in imports.items():
            for kind in kinds:
                needle = struct.pack("<Q", index << 32 | kind)
                at = data.find(needle, start, end)
                while at >= 0:
                    if (at - start) % 24 == 8:  # r_info is the second field of Elf64_Rela
                        slots[struct.unpack_from("<Q", data, at - 8)[0]] = name
                    at = data.find(needle, at + 1, end)
    return slots


def _stub_slot(view: ElfView, at: int, address: int, size: int) -> int | None:
    """The GOT slot a PLT stub jumps through."""
    code = view.data[at : at + size]
    if view.layout.machine == "x86_64":
        jump = code.find(b"\xff\x25")  # jmp *rel32(%rip), maybe after endbr64 / bnd
        if jump < 0 or jump + 6 > len(code):
            return None
        rel = int.from_bytes(code[jump + 2 : jump + 6], "little", signed=True)
        return address + jump + 6 + rel
    words = struct.unpack_from("<4I", code) if len(code) == 16 else ()
    for index in range(len(words) - 1):
        adrp, ldr = words[index], words[index + 1]
        if adrp & 0x9F000000 == 0x90000000 and ldr & 0xFFC00000 == 0xF9400000:
            imm = ((adrp >> 29) & 0x3) | (((adrp >> 5) & 0x7FFFF) << 2)
            if imm & (1 << 20):
                imm -= 1 << 21
            page = ((address + 4 * index) & ~0xFFF) + (imm << 12)
            return page + ((ldr >> 10) & 0xFFF) * 8
    return None
