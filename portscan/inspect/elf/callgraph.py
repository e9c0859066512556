"""Function-level reachability inside one ELF library or executable (issue 14, item 2).

Given the exports a program binds to, which imported functions can the code reachable
from them (and from the constructors) call? `CallGraph.from_bytes` reads the file once
with `struct` (symbols, relocations, PLT, dynamic section: no lief, no disassembly), and
`CallGraph.reach` walks on demand from the roots: only the functions that are reached are
disassembled (capstone's light mode), each once per graph, and the walk stops at a bound.
On x86-64 the compiled sorter `_x86scan` (when built) hands the walker only the
instructions it must read: it decodes common encodings itself, by tables giving each
one's length and what the walker would make of capstone's text of it, leaves the rest
to capstone one instruction at a time, and has capstone print an instruction's text only
when the walker reads it; it also runs the walk's breadth-first loop and the search
through data pointers (`_x86scan.walk`, for either architecture). The results are the
same without it.

- Function starts: defined functions of .dynsym and .symtab, and the FDE starts of
  .eh_frame_hdr, or of .eh_frame itself when a static link left no header
  (layout.eh_frame_starts). A function runs to its symbol's size, else to the next
  known start. A branch to an address that is no known start makes it one.
- Edges: direct calls and jumps (tail calls, jumps to `.cold` parts); calls to PLT
  stubs (.plt, .plt.sec, .plt.got) and GOT-indirect calls (`call *f@GOTPCREL(%rip)`,
  -fno-plt) resolved through JUMP_SLOT / GLOB_DAT / 64 / RELATIVE / IRELATIVE
  relocations to an import or a local function. A RIP-relative reference to a function
  (`lea` of a callback handed to pthread_create, atexit, qsort) is an edge too; an
  import's address loaded from its GOT slot reaches it unless it is only tested
  (`&pthread_create != NULL`) or overwritten unused.
- Function pointers: reached code that refers to data takes the pointers of the data
  object there (`object_slots`: a sized symbol, else the run of relocated pointers up to
  where another object starts), following pointers from data to data; an indirect call
  reaches what reached code took this way. In a position-dependent executable, which has
  no relocations, immediates are addresses and aligned data words equal to a function
  start are its pointers.
- Roots: the given names (.dynsym exports, then .symtab names), plus DT_INIT,
  DT_INIT_ARRAY, DT_PREINIT_ARRAY, DT_FINI and DT_FINI_ARRAY when `constructors` is set
  (for a static file, .init, .fini and the init/fini array sections); `reach_entry`
  walks from e_entry and those.

The result (`Reach`) is complete, or says why it is not: a bound was hit (per walk, or
the file's budget of disassembled instructions; the partial sets must not decide
anything), the architecture is not supported (x86-64 and aarch64 little-endian are), the
file is malformed, or it has no function starts at all. Chains are shortest in calls,
each from a root to an import, with `INDIRECT` where the walk went through a pointer.
"""

from __future__ import annotations

import array
import bisect
import ctypes
import functools
import re
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import capstone

from portscan.inspect.elf.layout import (
    SHF_EXECINSTR,
    Bytes,
    ElfLayout,
    ElfView,
    MalformedElf,
    _stub_slot,
    eh_frame_starts,
    read_layout,
)
from portscan.model import INDIRECT

try:  # the compiled sorter of x86-64 instructions (_x86scan.c), if it was built
    from portscan.inspect.elf import _x86scan
except ImportError:  # built without a C compiler: the walker sorts them in Python
    _x86scan = None
try:  # the symbol-table and relocation loops of `_read` in C (_elftables.c), if built
    from portscan.inspect.elf import _elftables
except ImportError:  # pragma: no cover - built by setup.py; the Python is the fallback
    _elftables = None


COMPLETE, BOUND, UNSUPPORTED, NO_FUNCTIONS, MALFORMED = (
    "complete",
    "bound-hit",
    "unsupported-architecture",
    "no-function-starts",
    "malformed",
)
MAX_FUNCTIONS = 100_000
MAX_INSTRUCTIONS = 2_000_000  # per walk: ~5 s of capstone at ~400k instructions/s
GRAPH_BUDGET = 250_000  # instructions disassembled per file, over all its walks
MAX_FUNCTION_BYTES = 1 << 20  # one "function" never spans more than this
# instructions capstone decodes per call: it holds them all in one array of ~250 bytes
# each until the call's last is read, ~60 MiB for a 1 MiB "function" decoded at once
CHUNK = 4096

STT_FUNC, STT_GNU_IFUNC, STT_NOTYPE, STT_OBJECT = 2, 10, 0, 1
STB_LOCAL = 0
SHT_SYMTAB, SHT_RELA, SHT_DYNSYM, SHT_RELR = 2, 4, 11, 19
SHF_ALLOC = 0x2
ET_EXEC = 2
PT_DYNAMIC = 2
DT_INIT, DT_FINI, DT_INIT_ARRAY, DT_FINI_ARRAY = 12, 13, 25, 26
DT_INIT_ARRAYSZ, DT_FINI_ARRAYSZ, DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ = 27, 28, 32, 33


@dataclass(frozen=True)
class _RelocKinds:
    abs64: int
    glob_dat: int
    jump_slot: int
    relative: int
    irelative: int


RELOCS = {
    "x86_64": _RelocKinds(abs64=1, glob_dat=6, jump_slot=7, relative=8, irelative=37),
    "aarch64": _RelocKinds(abs64=257, glob_dat=1025, jump_slot=1026, relative=1027, irelative=1032),
}
PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got")
GOT_SECTIONS = (".got", ".got.plt")
OBJECT_GAP = 24  # bytes between two pointers of one table or struct without a symbol
MAX_OBJECT_SLOTS = 4096


@dataclass
class Reach:
    """What the code reachable from `roots` imports.

    `imports`: the imported function names reachable; `chains[name]`: the shortest chain
    from a root to it (root label, function names, `INDIRECT` markers, the import).
    `status` is COMPLETE, or why the answer must not be trusted (then `imports` is at
    best partial). `address_taken` says the walk met an unresolved indirect call (what
    it reaches is what the reached code's data objects point to).
    """

    roots: tuple[str, ...]
    status: str
    imports: frozenset[str] = frozenset()
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing_roots: tuple[str, ...] = ()
    address_taken: bool = False
    functions_walked: int = 0
    instructions_walked: int = 0
    note: str = ""
    functions: frozenset[int] = frozenset()  # the function starts walked

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    @property
    def bound_hit(self) -> bool:
        return self.status == BOUND

    @property
    def fallback(self) -> bool:
        """True when the caller must judge the library as a whole instead."""
        return self.status != COMPLETE


@dataclass
class _Function:
    """What one function's code does, found once per graph."""

    calls: list[int]  # local function starts it calls, jumps to or takes the address of
    imports: list[str]  # imported functions it calls or takes the address of
    indirect: bool  # an unresolved indirect call or jump
    instructions: int
    data: list[int] = field(default_factory=list)  # data addresses it refers to


@dataclass
class _Symbols:
    names: dict[int, list[str]] = field(default_factory=dict)  # function start -> names
    sizes: dict[int, int] = field(default_factory=dict)
    exports: dict[str, int] = field(default_factory=dict)  # .dynsym definitions
    locals: dict[str, int] = field(default_factory=dict)  # .symtab names
    # every .dynsym entry in order: (name, type, value, defined)
    dynamic: list[tuple[str, int, int, bool]] = field(default_factory=list)


class CallGraph:
    """One file's call graph, built lazily: see the module docstring."""

    def __init__(self, data: bytes, layout: ElfLayout | None, status: str, note: str = ""):
        self.data = data
        self.layout = layout
        self.status = status
        self.note = note
        self.view = ElfView("", data, layout) if layout is not None else None
        self.symbols = _Symbols()
        self.starts: list[int] = []
        self.code: list[tuple[int, int, int]] = []  # (address, end, file offset), sorted
        self.got: dict[int, str | int] = {}  # slot -> import name or local function address
        self.plt: list[tuple[int, int, str | int]] = []  # (stub, end, target), sorted
        self.address_taken: set[int] = set()
        # every pointer the file's data holds: slot -> function, data address or import
        self.pointers: dict[int, int | str] = {}
        self._pointer_slots: list[int] = []
        self._got: list[tuple[int, int]] = []  # (start, end) of .got and .got.plt
        self._objects: list[tuple[int, int]] = []  # (start, end) of sized data symbols
        self._object_starts: list[int] = []
        self._object_slots: dict[int, tuple[int, ...]] = {}
        self._object_targets: dict[int, tuple[tuple[int | str, ...], tuple[int, ...]]] = {}
        # the data addresses some pointer holds (object starts), sorted: `_object_starts_held`
        self._held: list[int] | None = None
        self._names: dict[int, str] = {}
        self._branches: dict[int, str | int | None] = {}  # `_branch`'s target -> resolved
        self._context: object | None = None  # the tables `_x86scan.settle` reads
        self._objects_table: object | None = None  # those `_x86scan.walk` reads
        self._summary: object | None = None  # those `_x86scan.function` reads (`_quick`)
        self.constructors: list[tuple[str, int]] = []
        self._functions: dict[int, _Function] = {}
        self.disassembled = 0  # instructions disassembled so far, over all walks
        self.budget = GRAPH_BUDGET  # beyond it, every further walk is BOUND
        self._plt_starts: list[int] = []
        self._code_starts: list[int] = []
        self._code_low = self._code_high = 0  # the span of `code`
        self._code_words = array.array("Q")  # `code`'s (start, end) pairs, for the C
        self._named_starts: list[int] = []

    # --- building ---------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes) -> CallGraph:
        try:
            layout = read_layout(data)
        except MalformedElf as exc:
            return cls(data, None, MALFORMED, str(exc))
        if layout.machine not in RELOCS or layout.elf_class != 64 or not layout.little_endian:
            return cls(data, layout, UNSUPPORTED, f"no call graph for {layout.machine}")
        graph = cls(data, layout, COMPLETE)
        try:
            graph._read()
        except (struct.error, IndexError, ValueError) as exc:  # untrusted bytes
            return cls(data, layout, MALFORMED, f"{type(exc).__name__}: {exc}")
        if not graph.starts:
            graph.status, graph.note = NO_FUNCTIONS, "no symbols and no .eh_frame_hdr"
        return graph

    def _read(self) -> None:
        layout = self.layout
        assert layout is not None and self.view is not None
        plt_names = set(PLT_SECTIONS)
        self.code = sorted(
            (s.address, s.address + s.size, s.offset)
            for s in layout.sections
            if s.flags & SHF_EXECINSTR and s.in_file and s.size and s.name not in plt_names
        )
        self._code_starts = [c[0] for c in self.code]
        self._code_words = array.array("Q", [a for c in self.code for a in c[:2]])
        if self.code:  # most addresses asked about are data, past the code: answered at once
            self._code_low, self._code_high = self.code[0][0], max(c[1] for c in self.code)
        symbols = self.symbols
        for section in layout.sections:
            if section.type == SHT_DYNSYM:
                self._read_symbols(section.offset, section.size, ".dynstr", dynamic=True)
            elif section.type == SHT_SYMTAB:
                self._read_symbols(section.offset, section.size, ".strtab", dynamic=False)
        eh = eh_frame_starts(self.view)
        if _elftables is not None:
            eh = _elftables.in_code(eh, self._code_words)
        else:
            eh = [a for a in eh if self._in_code(a)]
        self.starts = sorted(set(symbols.names) | set(eh))
        self._named_starts = sorted(symbols.names)
        self._read_relocations()
        if layout.e_type == ET_EXEC:
            self._read_data_pointers()
        self._pointer_slots = sorted(self.pointers)
        self._got = [
            (s.address, s.address + s.size) for s in layout.sections if s.name in GOT_SECTIONS
        ]
        self._objects.sort()
        self._object_starts = [start for start, _ in self._objects]
        self._read_plt()
        self._read_dynamic()

    def _read_symbols(self, offset: int, size: int, strtab: str, dynamic: bool) -> None:
        section = self.layout.section(strtab) if self.layout else None
        if section is None or not section.in_file:
            return
        strings = self.data[section.offset : section.offset + section.size]
        symbols = self.symbols
        count = size // 24
        raw = self.data[offset : offset + count * 24]
        if _elftables is not None and len(raw) % 24 == 0:  # the loop below, in C
            _elftables.graph_symbols(
                raw, strings, dynamic, self._code_words, symbols.dynamic, self._objects,
                symbols.names, symbols.sizes, symbols.exports, symbols.locals,
            )  # fmt: skip
            return
        for index, (name_at, info, _other, shndx, value, sz) in enumerate(
            struct.iter_unpack("<IBBHQQ", raw)
        ):
            kind, bind = info & 0xF, info >> 4
            end = strings.find(b"\0", name_at)
            name = strings[name_at:end].decode("utf-8", "replace") if end > name_at else ""
            defined = shndx != 0
            if dynamic:
                symbols.dynamic.append((name, kind, value, defined))
                if index == 0:
                    continue
            if defined and kind == STT_OBJECT and value and sz:
                self._objects.append((value, value + sz))
            if not (defined and kind in (STT_FUNC, STT_GNU_IFUNC) and value and name):
                continue
            if not self._in_code(value):
                continue
            symbols.names.setdefault(value, [])
            if name not in symbols.names[value]:
                symbols.names[value].append(name)
            if sz:
                symbols.sizes[value] = max(symbols.sizes.get(value, 0), sz)
            if dynamic and bind != STB_LOCAL:
                symbols.exports.setdefault(name, value)
            else:
                symbols.locals.setdefault(name, value)

    def _read_relocations(self) -> None:
        """The dynamic relocations (RELA, RELR), section by section (`_relocate`)."""
        assert self.layout is not None
        kinds = RELOCS[self.layout.machine]
        for section in self.layout.sections:
            if not (section.flags & SHF_ALLOC and section.in_file):
                continue
            if section.type == SHT_RELA:  # sliced only here: other sections are not copied
                raw = self.data[section.offset : section.offset + section.size // 24 * 24]
                if _elftables is not None and len(raw) % 24 == 0:  # `_relocate`, in C
                    _elftables.graph_relocations(
                        raw,
                        (kinds.relative, kinds.irelative, kinds.abs64, kinds.glob_dat,
                         kinds.jump_slot),
                        self.symbols.dynamic, self._code_words, self.pointers, self.got,
                        self.address_taken,
                    )  # fmt: skip
                    continue
                entries = struct.iter_unpack("<QQq", raw)
                self._relocate(((o, i & 0xFFFFFFFF, i >> 32, a) for o, i, a in entries), kinds)
            elif section.type == SHT_RELR:
                self._relocate(self._relr(section.offset, section.size, kinds.relative), kinds)

    def _relr(self, at: int, size: int, relative: int) -> Iterable[tuple[int, int, int, int]]:
        """RELR entries, as RELATIVE relocations whose addend is the word in the file."""
        base = 0
        for (entry,) in struct.iter_unpack("<Q", self.data[at : at + size // 8 * 8]):
            if entry & 1 == 0:
                yield from self._relr_one(entry, relative)
                base = entry + 8
            else:
                bits, where = entry >> 1, base
                while bits:
                    if bits & 1:
                        yield from self._relr_one(where, relative)
                    bits >>= 1
                    where += 8
                base += 63 * 8

    def _relr_one(self, where: int, relative: int) -> Iterable[tuple[int, int, int, int]]:
        word = self.view.read(where, 8) if self.view else None
        if word is not None:
            yield where, relative, 0, struct.unpack("<Q", word)[0]

    def _relocate(
        self, relocations: Iterable[tuple[int, int, int, int]], kinds: _RelocKinds
    ) -> None:
        """Take (offset, type, symbol index, addend) relocations into the pointers, GOT
        slots and addresses taken."""
        dynamic = self.symbols.dynamic
        for offset, kind, index, addend in relocations:
            if kind in (kinds.relative, kinds.irelative):
                self.pointers[offset] = addend
                if self._in_code(addend):
                    self.got[offset] = addend
                    self.address_taken.add(addend)
                continue
            symbolic = (kinds.abs64, kinds.glob_dat, kinds.jump_slot)
            if kind not in symbolic or not 0 < index < len(dynamic):
                continue
            name, sym_type, value, defined = dynamic[index]
            if defined and kind != kinds.jump_slot:
                self.pointers[offset] = value + (addend if kind == kinds.abs64 else 0)
            elif name and kind != kinds.jump_slot and sym_type in (STT_FUNC, STT_NOTYPE):
                self.pointers[offset] = name
            if defined:
                if sym_type in (STT_FUNC, STT_GNU_IFUNC) and self._in_code(value):
                    target = value + (addend if kind == kinds.abs64 else 0)
                    self.got[offset] = target
                    if kind != kinds.jump_slot:
                        self.address_taken.add(target)
            elif sym_type in (STT_FUNC, STT_NOTYPE) and name:
                self.got[offset] = name

    def _read_data_pointers(self) -> None:
        """A position-dependent executable keeps function pointers in data without
        relocations: every aligned data word equal to a function start is taken."""
        assert self.layout is not None
        starts = set(self.starts)
        for section in self.layout.sections:
            if section.flags & SHF_EXECINSTR or not (section.flags & SHF_ALLOC):
                continue
            if not section.in_file or section.name in (".dynsym", ".dynstr", ".eh_frame"):
                continue
            skip = -section.address % 8
            raw = self.data[section.offset + skip : section.offset + section.size]
            words = struct.iter_unpack("<Q", raw[: len(raw) // 8 * 8])
            at = section.address + skip
            for index, (word,) in enumerate(words):
                if word in starts:
                    self.address_taken.add(word)
                    self.pointers[at + 8 * index] = word

    def _read_plt(self) -> None:
        assert self.layout is not None and self.view is not None
        stubs = []
        for section in self.layout.sections:
            if section.name not in PLT_SECTIONS or not section.in_file:
                continue
            entry = 8 if section.name == ".plt.got" else 16
            for index in range(section.size // entry):
                at = section.offset + index * entry
                address = section.address + index * entry
                slot = _stub_slot(self.view, at, address, entry)
                if slot is not None and slot in self.got:
                    stubs.append((address, address + entry, self.got[slot]))
        self.plt = sorted(stubs, key=lambda s: s[0])
        self._plt_starts = [s[0] for s in self.plt]

    def _read_dynamic(self) -> None:
        assert self.layout is not None
        segment = next((s for s in self.layout.segments if s.type == PT_DYNAMIC), None)
        if segment is None:
            self._read_init_sections()
            return
        raw = self.data[segment.offset : segment.offset + segment.file_size // 16 * 16]
        tags: dict[int, int] = {}
        for tag, value in struct.iter_unpack("<qQ", raw):
            if tag == 0:
                break
            tags.setdefault(tag, value)
        for tag, label in ((DT_INIT, "DT_INIT"), (DT_FINI, "DT_FINI")):
            if self._in_code(tags.get(tag, 0)):
                self.constructors.append((label, tags[tag]))
        for tag, size_tag, label in (
            (DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, "DT_PREINIT_ARRAY"),
            (DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "DT_INIT_ARRAY"),
            (DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "DT_FINI_ARRAY"),
        ):
            start, size = tags.get(tag), tags.get(size_tag, 0)
            for index in range(min(size, 1 << 16) // 8 if start else 0):
                slot = start + 8 * index
                target = self.got.get(slot)  # a RELATIVE relocation says it in a PIC file
                if not isinstance(target, int):
                    word = self.view.read(slot, 8) if self.view else None
                    target = struct.unpack("<Q", word)[0] if word else 0
                if self._in_code(target):
                    self.constructors.append((f"{label}[{index}]", target))

    def _read_init_sections(self) -> None:
        """A static file has no dynamic section: its constructors are the words of its
        .preinit_array, .init_array and .fini_array sections, and .init and .fini."""
        assert self.layout is not None and self.view is not None
        for name in (".init", ".fini"):
            section = self.layout.section(name)
            if section is not None and self._in_code(section.address):
                self.constructors.append((name, section.address))
        for name in (".preinit_array", ".init_array", ".fini_array"):
            section = self.layout.section(name)
            if section is None or not section.in_file:
                continue
            for index in range(min(section.size, 1 << 16) // 8):
                slot = section.address + 8 * index
                target = self.pointers.get(slot)  # a static-pie says it in a relocation
                if not isinstance(target, int):
                    word = self.view.read(slot, 8)
                    target = struct.unpack("<Q", word)[0] if word else 0
                if self._in_code(target):
                    self.constructors.append((f"{name}[{index}]", target))

    def reach_entry(self, **bounds: int) -> Reach:
        """What the program's entry point (e_entry) and its constructors reach."""
        if self.status != COMPLETE or self.layout is None:
            return Reach(("entry",), self.status, note=self.note)
        labelled: list[tuple[str, int | None]] = [("entry", self.layout.entry)]
        labelled += [(self._constructor_label(lb, at), at) for lb, at in self.constructors]
        return self._walk(
            ("entry",),
            labelled,
            bounds.get("max_functions", MAX_FUNCTIONS),
            bounds.get("max_instructions", MAX_INSTRUCTIONS),
            keep_functions=True,
        )

    def function_of(self, address: int) -> int | None:
        """The start of the known function that contains `address`."""
        index = bisect.bisect_right(self.starts, address) - 1
        if index < 0:
            return None
        start = self.starts[index]
        extent = self._extent(start)
        return start if extent is not None and address < extent[0] else None

    # --- addresses --------------------------------------------------------------------

    def _in_code(self, address: int) -> bool:
        if not self._code_low <= address < self._code_high:
            return False
        index = bisect.bisect_right(self._code_starts, address) - 1
        return index >= 0 and address < self.code[index][1]

    def _plt_target(self, address: int) -> str | int | None:
        index = bisect.bisect_right(self._plt_starts, address) - 1
        if index >= 0 and address < self.plt[index][1]:
            return self.plt[index][2]
        return None

    def _extent(self, start: int) -> tuple[int, int] | None:
        """(end address, file offset of start) of the function at `start`."""
        index = bisect.bisect_right(self._code_starts, start) - 1
        if index < 0 or start >= self.code[index][1]:
            return None
        section_start, section_end, offset = self.code[index]
        size = self.symbols.sizes.get(start)
        if size:
            end = start + size
        else:
            after = bisect.bisect_right(self.starts, start)
            end = self.starts[after] if after < len(self.starts) else section_end
        end = min(end, section_end, start + MAX_FUNCTION_BYTES)
        return end, offset + start - section_start

    def name(self, address: int) -> str:
        """The public spelling of the function at `address`, `f+0x10` inside a named
        function, else `sub_<address>`; one string per address (chains share it)."""
        found = self._names.get(address)
        if found is None:
            found = self._names[address] = self._name(address)
        return found

    def _name(self, address: int) -> str:
        names = self.symbols.names.get(address)
        if names:
            return min(names, key=lambda n: (n.startswith("_"), len(n), n))
        index = bisect.bisect_right(self._named_starts, address) - 1
        if index >= 0:
            start = self._named_starts[index]
            if address < start + self.symbols.sizes.get(start, 0):
                return f"{self.name(start)}+{address - start:#x}"
        return f"sub_{address:x}"

    # --- disassembly --------------------------------------------------------------------

    def _function(self, start: int) -> _Function:
        found = self._functions.get(start)
        if found is None:
            found = self._functions[start] = self._disassemble(start)
            self.disassembled += found.instructions
        return found

    def _disassemble(self, start: int) -> _Function:
        extent = self._extent(start)
        result = _Function([], [], False, 0)
        if extent is None:
            return result
        end, offset = extent
        code = self.data[offset : offset + end - start]
        assert self.layout is not None
        if self.layout.machine == "x86_64":
            _X86Walker(self, start, end, result).walk(code)
        else:
            _Arm64Walker(self, start, end, result).walk(code)
        return result

    def _branch(self, result: _Function, target: int) -> None:
        """A call or jump (or address taken) to `target`, outside the current function."""
        resolved = self._branches.get(target, self)  # self: not resolved yet (hot path)
        if resolved is self:
            resolved = self._resolved(target)
        self._add(result, resolved)

    def _resolved(self, target: int) -> str | int | None:
        """What a branch to `target` reaches (a PLT stub's import, a function), kept."""
        resolved = self._plt_target(target)
        if resolved is None and self._in_code(target):
            resolved = target
        self._branches[target] = resolved
        return resolved

    def _settle_context(self) -> object:
        """The tables `_x86scan.settle` reads, made on first use."""
        if self._context is None:
            assert _x86scan is not None
            code = self._code_words
            got = array.array("Q", [a for pair in self._got for a in pair])
            self._context = _x86scan.context(code, got, self.got, self._branches)
        return self._context

    def _slot(self, result: _Function, slot: int) -> bool:
        """A reference to a GOT or data slot; True when a GOT slot names a function (the
        code calls or loads it). A reference into data is the data object's (`_data`)."""
        target = self.got.get(slot)
        if target is not None and self._in_got(slot):
            self._add(result, target)
            return True
        self._data(result, slot)
        return False

    def _data(self, result: _Function, address: int) -> None:
        """Code refers to data at `address`: the pointers of the object there are taken."""
        if not self._in_code(address):
            result.data.append(address)

    def _objects_context(self) -> object | None:
        """The tables `_x86scan.walk` reads to make an object's entry itself (what
        `_object_pointers` makes), made on first use; None where a number of them is
        past 64 bits (crafted symbols): `_object_pointers` makes every entry then."""
        if self._objects_table is None:
            assert _x86scan is not None
            try:
                starts = array.array("Q", self._object_starts)
                ends = array.array("Q", [end for _, end in self._objects])
                slots = array.array("Q", self._pointer_slots)
            except OverflowError:
                self._objects_table = False
            else:
                context = self._settle_context()
                self._objects_table = _x86scan.objects(
                    context, starts, ends, slots, self.pointers, OBJECT_GAP, MAX_OBJECT_SLOTS
                )
        return self._objects_table or None

    def _quick(self) -> tuple[object, Callable[[int], str | int | None], bytes, bool] | None:
        """What `_x86scan.walk` needs to make an x86-64 function's summary itself where
        the walker would read none of its instructions (`_x86scan.function`: the same
        `_Function` as `_function`'s): its tables, made on first use; None where the
        walker makes every one (another machine, a number past 64 bits)."""
        if self._summary is None:
            self._summary = False
            if _x86scan is not None and self.layout is not None and self.layout.machine == "x86_64":
                try:
                    offsets = array.array("Q", [offset for _, _, offset in self.code])
                    starts = array.array("Q", self.starts)
                    self._summary = _x86scan.summary(
                        self._settle_context(), offsets, starts, self.symbols.sizes, _Function,
                        _X86Walker.disassembler.csh.value, self.layout.e_type == ET_EXEC,
                        MAX_FUNCTION_BYTES, _SORTED_BELOW,
                    )  # fmt: skip
                except OverflowError:
                    pass
        if not self._summary:
            return None
        return self._summary, self._resolved, self.data, _FAST_DECODE

    def _object_starts_held(self) -> list[int]:
        """The data addresses some pointer holds (where objects start), sorted; made on
        first use (a walk may never follow a data object without a size)."""
        if self._held is None:
            pointed = self.pointers.values()
            self._held = sorted({t for t in pointed if isinstance(t, int) and not self._in_code(t)})
        return self._held

    def _in_got(self, address: int) -> bool:
        for start, end in self._got:  # noqa: SIM110 (hot: a loop is twice as fast as any())
            if start <= address < end:
                return True
        return False

    def object_slots(self, address: int) -> tuple[int, ...]:
        """The pointer slots of the data object at `address`: a GOT slot alone; the whole
        of a sized symbol covering it; else the run of pointers starting within 64 bytes
        of it whose neighbours lie at most OBJECT_GAP bytes apart (a table, a struct), up
        to where another object starts (an address some other pointer holds)."""
        cached = self._object_slots.get(address)
        if cached is not None:
            return cached
        slots = self._pointer_slots
        if self._in_got(address):
            found: tuple[int, ...] = (address,) if address in self.pointers else ()
        else:
            index = bisect.bisect_right(self._object_starts, address) - 1
            if index >= 0 and address < self._objects[index][1]:
                start, end = self._objects[index]
                low, high = bisect.bisect_left(slots, start), bisect.bisect_left(slots, end)
                found = tuple(slots[low : min(high, low + MAX_OBJECT_SLOTS)])
            else:
                at = bisect.bisect_left(slots, address)
                run: list[int] = []
                starts = self._object_starts_held()
                while at < len(slots) and len(run) < MAX_OBJECT_SLOTS:
                    gap = slots[at] - (run[-1] if run else address)
                    if gap > (OBJECT_GAP if run else 64):
                        break
                    if run:  # another object starts after the last slot, by this one?
                        after = bisect.bisect_right(starts, run[-1])
                        if after < len(starts) and starts[after] <= slots[at]:
                            break  # a pointer elsewhere holds its address
                    run.append(slots[at])
                    at += 1
                found = tuple(run)
        self._object_slots[address] = found
        return found

    @staticmethod
    def _add(result: _Function, target: str | int | None) -> None:
        if isinstance(target, str):
            result.imports.append(target)
        elif target is not None:
            result.calls.append(target)

    # --- walking ------------------------------------------------------------------------

    def resolve(self, name: str) -> int | None:
        """The address of a root named `name` (an export, else a .symtab function)."""
        name = name.split("@", 1)[0]
        found = self.symbols.exports.get(name)
        return found if found is not None else self.symbols.locals.get(name)

    def reach(
        self,
        roots: Iterable[str],
        *,
        constructors: bool = True,
        max_functions: int = MAX_FUNCTIONS,
        max_instructions: int = MAX_INSTRUCTIONS,
    ) -> Reach:
        """The imports reachable from the named roots (and the constructors)."""
        roots = tuple(roots)
        if self.status != COMPLETE:
            return Reach(roots, self.status, note=self.note)
        labelled: list[tuple[str, int | None]] = [(name, self.resolve(name)) for name in roots]
        if constructors:
            labelled += [(self._constructor_label(lb, at), at) for lb, at in self.constructors]
        if self.disassembled >= self.budget:
            return Reach(roots, BOUND, note=self._over_budget())
        return self._walk(roots, labelled, max_functions, max_instructions)

    def _over_budget(self) -> str:
        return f"{self.disassembled} instructions disassembled, over the budget of {self.budget}"

    def _walk(
        self,
        roots: tuple[str, ...],
        labelled: list[tuple[str, int | None]],
        max_functions: int,
        max_instructions: int,
        keep_functions: bool = False,
    ) -> Reach:
        """Breadth-first from `labelled` (label, address) starts, through calls, jumps and
        the pointers of the data objects reached code refers to (`object_slots`);
        `keep_functions` records the function starts walked in the result."""
        parent: dict[int, tuple[int | None, str]] = {}  # node -> (parent, root label or how)
        queue: deque[int] = deque()
        missing = []
        for label, address in labelled:
            if address is None:
                missing.append(label)
            elif address not in parent:
                parent[address] = (None, label)
                queue.append(address)
        first: dict[str, tuple[int, bool]] = {}  # import -> (node reaching it, via pointer)
        objects: set[int] = set()  # data addresses whose pointers were taken
        walked = instructions = 0
        indirect = False
        status = COMPLETE
        functions, budget = self._functions, self.budget
        if _x86scan is not None:  # the loop below, in C
            limits = (max_functions, max_instructions, "call", INDIRECT)
            known, table = self._object_targets, self._objects_context()
            first, walked, instructions, unresolved, bound = _x86scan.walk(
                self, list(queue), parent, functions, limits, known, table, self._quick()
            )
            indirect, status = bool(unresolved), BOUND if bound else COMPLETE
        else:
            while queue:
                if walked >= max_functions or instructions >= max_instructions:
                    status = BOUND
                    break
                if self.disassembled >= budget:
                    status = BOUND
                    break
                node = queue.popleft()
                function = functions.get(node) or self._function(node)
                walked += 1
                instructions += function.instructions
                indirect = indirect or function.indirect
                for name in function.imports:
                    if name not in first:
                        first[name] = (node, False)
                for target in function.calls:
                    if target not in parent:
                        parent[target] = (node, "call")
                        queue.append(target)
                if function.data:
                    for target in self._pointed(function.data, objects):
                        if type(target) is str:
                            if target not in first:
                                first[target] = (node, True)
                        elif target not in parent:
                            parent[target] = (node, INDIRECT)
                            queue.append(target)
        if _x86scan is not None:  # the loop below, in C
            chains = _x86scan.chains(first, parent, self._names, self.name, INDIRECT)
        else:
            made: dict[int, list[str]] = {}  # node -> its chain: imports often share one
            chains = {}
            for name, (node, via) in sorted(first.items()):
                chain = made.get(node)
                if chain is None:
                    chain = made[node] = self._chain(node, parent)
                chains[name] = (*chain, *((INDIRECT,) if via else ()), name)
        note = ""
        if status == BOUND and self.disassembled >= self.budget:
            note = self._over_budget() + "; judge the library whole"
        elif status == BOUND:
            note = (
                f"walk stopped after {walked} functions / {instructions} instructions "
                f"(bounds {max_functions} / {max_instructions}); judge the library whole"
            )
        return Reach(
            roots,
            status,
            frozenset(chains),
            chains,
            tuple(missing),
            indirect,
            walked,
            instructions,
            note,
            frozenset(parent) if keep_functions and status == COMPLETE else frozenset(),
        )

    def _pointed(self, addresses: list[int], objects: set[int]) -> list[int | str]:
        """The functions and imports that the data objects at `addresses` point to,
        following pointers from data to data; `objects` are those taken already.
        `_x86scan.walk` does the same in C, where it is built (`_x86scan.pointed` alone
        is what its tests call)."""
        found: list[int | str] = []
        pending = [a for a in addresses if a not in objects]
        known = self._object_targets
        while pending:
            address = pending.pop()
            if address in objects:
                continue
            objects.add(address)
            targets, inner = known.get(address) or self._object_pointers(address)
            found += targets
            if inner:
                pending += [a for a in inner if a not in objects]
        return found

    def _object_pointers(self, address: int) -> tuple[tuple[int | str, ...], tuple[int, ...]]:
        """What the object at `address` points to: (functions and imports, data)."""
        found = self._object_targets.get(address)
        if found is None:
            targets: list[int | str] = []
            inner: list[int] = []
            for slot in self.object_slots(address):
                target = self.pointers[slot]
                if isinstance(target, str) or self._in_code(target):
                    targets.append(target)
                else:
                    inner.append(target)
            found = self._object_targets[address] = (tuple(targets), tuple(inner))
        return found

    def _constructor_label(self, label: str, address: int) -> str:
        name = self.name(address)
        return label if name.startswith("sub_") else f"{name} ({label})"

    def _chain(self, node: int, parent: dict[int, tuple[int | None, str]]) -> list[str]:
        chain: list[str] = []
        current: int | None = node
        while current is not None:
            up, how = parent[current]
            if up is None:
                chain.append(how)  # the root's label
            else:
                chain.append(self.name(current))
                if how == INDIRECT:
                    chain.append(INDIRECT)
            current = up
        return chain[::-1]


_RIP = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")
_REGISTER_ONLY = re.compile(r"^[a-z0-9]+$")
_HEX = re.compile(r"0x[0-9a-f]+")
_IDENTIFIER = re.compile(rb"(?<![\x21-\x7e])[A-Za-z_][A-Za-z0-9_]{2,127}(?=\x00)")
_REGISTERS = re.compile(
    r"\b(?:[re]?[abcd]x|[abcd][lh]|[re]?(?:si|di|sp|bp)|(?:si|di|sp|bp)l"
    r"|r(?:8|9|1[0-5])[dwb]?)\b"
)
_ARGUMENT_REGISTERS = frozenset({"rdi", "rsi", "rdx", "rcx", "r8", "r9"})
_CALLEE_SAVED = frozenset({"rbx", "rbp", "r12", "r13", "r14", "r15", "rsp"})


def _family(register: str) -> str:
    """The 64-bit register a name is part of: eax, ax, al -> rax; r9d -> r9."""
    if register[:1] == "r" and register[1:2].isdigit():
        return register.rstrip("dwb")
    return _FAMILIES.get(register, register)


_FAMILIES = {
    **{name: f"r{x}x" for x in "abcd" for name in (f"r{x}x", f"e{x}x", f"{x}x", f"{x}l", f"{x}h")},
    **{name: f"r{x}" for x in ("si", "di", "sp", "bp") for name in (f"r{x}", f"e{x}", x, f"{x}l")},
}


_INSN = capstone._cs_insn  # capstone's record of one decoded instruction (ctypes)
_REFERS = 2  # _x86scan.c's event tag of a rip reference (BRANCH 0, BRANCH_CLEARS 1, MOVE 3)
_SORTED_BELOW = 1 << 61  # the sorter's addresses are 64-bit (and targets * 4): above, Python
_FAST_DECODE = True  # the sorter decodes common instructions itself (else all by capstone)
if _x86scan is not None:
    _x86scan.init(
        *(ctypes.cast(f, ctypes.c_void_p).value for f in (
            capstone._cs.cs_disasm, capstone._cs.cs_free, capstone._cs.cs_errno
        )),
        ctypes.sizeof(_INSN),
        _INSN.address.offset,
        _INSN.size.offset,
        _INSN.mnemonic.offset,
        _INSN.op_str.offset,
    )  # fmt: skip
    # a MOVE event's register (the operands `_operand` reads: "" for none named "r...")
    _MOVE_OPS = ("", *(f"{name}," for name in _x86scan.registers()))
    _LOADED = (None, *_x86scan.registers())  # the walker's loaded register after `settle`


class _Run:
    """One `_x86scan.scan` run of decoded instructions: where each starts (`bounds`, from
    code[position:]), read back as the walker asks; capstone's text of an instruction is
    decoded when first asked for. `previous` gives the six instructions before the run."""

    def __init__(
        self, handle: int, code: bytes, position: int, address: int, bounds: bytes,
        previous: _Run | None,
    ) -> None:  # fmt: skip
        self.handle, self.code, self.position, self.address = handle, code, position, address
        self.bounds = memoryview(bounds).cast("I")
        self.count = len(self.bounds) - 1
        self.texts: dict[int, tuple[str, str]] = {}
        if previous is not None and previous.count >= 6:
            previous.previous = None  # its own six are its own: keep the chain short
        self.previous = previous

    def instruction(self, index: int) -> tuple[int, int, str, str]:
        """(address, size, mnemonic, operands) as capstone's disasm_lite gives them."""
        return *self.span(index), *self.text(index)

    def span(self, index: int) -> tuple[int, int]:
        """(address, size) of the instruction at `index`."""
        at = self.bounds[index]
        return self.address + at, self.bounds[index + 1] - at

    def text(self, index: int) -> tuple[str, str]:
        """(mnemonic, operands) of the instruction at `index`."""
        found = self.texts.get(index)
        if found is None:
            assert _x86scan is not None
            at = self.bounds[index]
            found = _x86scan.text(self.handle, self.code, self.position + at, self.address + at)
            assert found is not None  # the run decoded it
            self.texts[index] = found
        return found

    def recent(self, index: int) -> list[tuple[str, str]]:
        """The six instructions before `index` as the walker's `recent` keeps them."""
        kept = []
        for at in range(max(0, index - 6), index):
            mnemonic, ops = self.text(at)
            if mnemonic[0] in "cjlbnt" or "rip" in ops:
                mnemonic = mnemonic.rsplit(" ", 1)[-1]
            kept.append((mnemonic, ops))
        if index >= 6 or self.previous is None:
            return kept
        return (self.previous.recent(self.previous.count) + kept)[-6:]


class _X86Walker:
    """One x86-64 function's calls, jumps and RIP-relative references."""

    disassembler = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)

    def __init__(self, graph: CallGraph, start: int, end: int, result: _Function):
        self.graph, self.start, self.end, self.result = graph, start, end, result
        self.loaded: str | None = None  # register just loaded from a resolved GOT slot
        # an import's address loaded into a register and not used yet: (register family,
        # name). Only testing it (`&pthread_create != NULL`, a weak-symbol check) does
        # not reach it; any other use does (`_use`).
        self.pending: tuple[str, str] | None = None
        # a position-dependent executable names addresses as immediates, not rip-relative
        self.absolute = graph.layout is not None and graph.layout.e_type == ET_EXEC
        # the six instructions before the current one (mnemonic as `_step` keeps it, ops)
        self.recent: Callable[[], Iterable[tuple[str, str]]] = list

    def walk(self, code: bytes) -> None:
        if _x86scan is not None and self.end < _SORTED_BELOW:
            self._walk_sorted(code)
            return
        position, recent = 0, deque(maxlen=6)
        self.recent = lambda: recent
        count = 0
        while position < len(code):
            address = self.start + position
            chunk = code[position:]  # decoded CHUNK at a time: capstone's array is per call
            for at, size, mnemonic, ops in self.disassembler.disasm_lite(chunk, address, CHUNK):
                count += 1
                position = at + size - self.start
                recent.append((self._step(at, size, mnemonic, ops), ops))
            if self.start + position == address:  # undecodable byte: skip it
                position += 1
        self.result.instructions += count

    def _walk_sorted(self, code: bytes) -> None:
        """`walk` with the compiled sorter (_x86scan.c): only the instructions it lists
        (and every one while an import address is pending) reach `_step`; between them,
        the walker's loaded register is cleared where the sorter says one cleared it.
        `_x86scan.settle` does the listed ones that touch only the graph's tables."""
        assert _x86scan is not None
        handle, absolute = self.disassembler.csh.value, self.absolute
        position, previous, fast = 0, None, _FAST_DECODE
        graph, result = self.graph, self.result
        context, resolve = graph._settle_context(), graph._resolved
        while position < len(code):
            address = self.start + position
            decoded, bounds, events, last_clear, error = _x86scan.scan(
                handle, code, position, address, CHUNK, self.start, self.end, absolute, fast,
                graph._code_low, graph._code_high,
            )  # fmt: skip
            if not decoded:
                if error:
                    raise capstone.CsError(error)
                position += 1  # undecodable byte: skip it
                continue
            result.instructions += decoded
            run = _Run(handle, code, position, address, bounds, previous)
            done = self._pending(run, -1) if self.pending is not None else -1
            at, count = 0, len(events)
            while at < count:  # the sorter does what it can; the walker the rest
                at, done, loaded = _x86scan.settle(
                    context, resolve, events, at, done, self.start, self.end,
                    result.calls, result.imports, result.data,
                )  # fmt: skip
                if loaded >= 0:
                    self.loaded = _LOADED[loaded]
                if at == count:
                    break
                index, clear, branch = events[at : at + 3]
                at += 3
                if clear > done:
                    self.loaded = None
                done = index
                if branch < 0:  # an instruction to read
                    self._read(run, index)
                else:  # `mov reg, [rip + N]` of an import's GOT slot: (N * 64 + reg) * 4 + 3
                    self.loaded = None
                    self._operand("mov", _MOVE_OPS[(branch >> 2) & 63], branch >> 8)
                if self.pending is not None:
                    done = self._pending(run, done)
            if last_clear > done:
                self.loaded = None
            position += run.bounds[decoded]
            previous = run

    def _read(self, run: _Run, index: int) -> None:
        """`_step` on the instruction at `index` of `run`."""
        self.recent = functools.partial(run.recent, index)
        self._step(*run.instruction(index))

    def _pending(self, run: _Run, done: int) -> int:
        """Reads the instructions after `done` while an import address is pending;
        returns the index of the last one read."""
        while self.pending is not None and done + 1 < run.count:
            done += 1
            self._read(run, done)
        return done

    def _step(self, at: int, size: int, mnemonic: str, ops: str) -> str:
        """One instruction; returns its mnemonic as `recent` keeps it."""
        if self.pending is not None:
            self._use(mnemonic.rsplit(" ", 1)[-1], ops)
        if self.absolute and "0x" in ops:
            self._absolute(mnemonic, ops)
        if mnemonic[0] not in "cjlbnt" and "rip" not in ops:  # the common case: no
            self.loaded = None  # branch (call, j*, loop, bnd/notrack), no rip, no test
            return mnemonic  # (kept with a loaded slot)
        if " " in mnemonic:
            mnemonic = mnemonic.rsplit(" ", 1)[-1]
        self._instruction(at, size, mnemonic, ops)
        return mnemonic

    def _use(self, mnemonic: str, ops: str) -> None:
        """What an instruction does with the pending import address: a test or compare
        leaves it pending; a write of its register drops it; a call keeps it only in an
        argument or callee-saved register (reached if an argument); any other mention,
        a `ret` of rax, or an indirect branch through it reaches it."""
        assert self.pending is not None
        family, name = self.pending
        words = _REGISTERS.findall(ops)
        mentioned = any(_family(w) == family for w in words)
        if mnemonic in ("test", "cmp") or (mnemonic.startswith("j") and not mentioned):
            return
        if mnemonic.startswith("ret"):
            if family == "rax":
                self.result.imports.append(name)
            self.pending = None
        elif mnemonic.endswith("call") and not mentioned:
            if family in _ARGUMENT_REGISTERS:
                self.result.imports.append(name)
            if family not in _CALLEE_SAVED:
                self.pending = None
        elif not mentioned:
            return
        elif (
            mnemonic in ("mov", "lea", "movabs")
            and _family(words[0]) == family
            and all(_family(w) != family for w in words[1:])
        ) or (mnemonic == "xor" and len(words) == 2 and words[0] == words[1]):
            self.pending = None  # overwritten
        else:
            self.result.imports.append(name)
            self.pending = None

    def _instruction(self, at: int, size: int, mnemonic: str, ops: str) -> None:
        graph, result = self.graph, self.result
        branch = mnemonic == "call" or mnemonic.startswith("j") or mnemonic.startswith("loop")
        rip = _RIP.search(ops) if "rip" in ops else None
        if branch:
            if ops.startswith("0x"):
                target = int(ops, 16)
                if mnemonic == "call" or not self.start <= target < self.end:
                    graph._branch(result, target)
            elif rip is not None:
                if not graph._slot(result, self._rip_target(at, size, rip)):
                    result.indirect = True
            elif ops == self.loaded:
                pass  # `mov rax, [rip + f@GOT]; test rax, rax; je; call rax`: f (`_use`)
            elif mnemonic == "call" or not self._switch(ops, self.recent()):
                result.indirect = True
            if mnemonic in ("call", "jmp"):
                self.loaded = None
            return
        if mnemonic not in ("test", "cmp"):
            self.loaded = None
        if rip is not None:
            self._operand(mnemonic, ops, self._rip_target(at, size, rip))

    def _operand(self, mnemonic: str, ops: str, target: int) -> None:
        """A non-branch instruction's rip-relative operand, at `target`."""
        graph, result = self.graph, self.result
        held = graph.got.get(target) if graph._in_got(target) else None
        if mnemonic in ("cmp", "test") and isinstance(held, str):
            pass  # `cmp qword ptr [rip + f@GOT], 0`: whether f is linked in, not f
        elif mnemonic == "mov" and isinstance(held, str) and ops.startswith("r"):
            register = ops.split(",", 1)[0]
            if self.pending is not None:  # a second load: the first stays reached
                result.imports.append(self.pending[1])
            self.pending = (_family(register), held)
            self.loaded = register
        elif graph._slot(result, target):
            if mnemonic == "mov" and ops.startswith("r") and "," in ops:
                self.loaded = ops.split(",", 1)[0]
        elif not self.start <= target < self.end and graph._in_code(target):
            graph._branch(result, target)

    def _absolute(self, mnemonic: str, ops: str) -> None:
        """Immediates of a position-dependent file that are addresses: of data (a table:
        its pointers are taken) or, outside a branch, of a function (address taken)."""
        graph = self.graph
        branch = mnemonic == "call" or mnemonic.startswith("j")
        for text in _HEX.findall(ops):
            value = int(text, 16)
            if graph._in_code(value):
                if not branch and not self.start <= value < self.end:
                    graph._branch(self.result, value)
            elif value >= 0x1000:
                graph._data(self.result, value)

    @staticmethod
    def _rip_target(at: int, size: int, rip: re.Match) -> int:
        displacement = int(rip.group(2), 0)
        return at + size + (displacement if rip.group(1) == "+" else -displacement)

    @staticmethod
    def _switch(ops: str, recent: Iterable[tuple[str, str]]) -> bool:
        """An indirect jump through a switch table: `jmp [reg*8 + table]` (non-PIC), or
        `jmp reg` after a `movsxd reg, [base + index*4]` (PIC's relative table)."""
        if "*8 + 0x" in ops and "rip" not in ops:
            return True
        if _REGISTER_ONLY.match(ops):
            return any(m == "movsxd" and "*4]" in o for m, o in recent)
        return False


class _Arm64Walker:
    """One aarch64 function's branches and adrp-formed addresses.

    `adrp` pages are tracked per register through `add` (an address taken) and `ldr`
    (a GOT or data slot loaded); `blr`/`br` through a register loaded from a resolved
    slot is a call to that target, any other is an unresolved indirect call."""

    disassembler = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)

    def __init__(self, graph: CallGraph, start: int, end: int, result: _Function):
        self.graph, self.start, self.end, self.result = graph, start, end, result
        self.pages: dict[str, int] = {}
        self.loaded: dict[str, str | int] = {}
        self.recent: deque[tuple[str, str]] = deque(maxlen=6)

    def walk(self, code: bytes) -> None:
        position = 0
        while position < len(code):
            address = self.start + position
            chunk = code[position:]
            for at, size, mnemonic, ops in self.disassembler.disasm_lite(chunk, address, CHUNK):
                self.result.instructions += 1
                self._instruction(mnemonic, ops)
                self.recent.append((mnemonic, ops))
                position = at + size - self.start
            if self.start + position == address:
                position += 4

    def _instruction(self, mnemonic: str, ops: str) -> None:
        graph, result = self.graph, self.result
        parts = [p.strip() for p in ops.split(",")]
        destination = parts[0] if parts else ""
        if destination.startswith("w"):
            destination = "x" + destination[1:]  # a 32-bit write clears the register
        if mnemonic in ("bl", "b") or mnemonic.startswith(("b.", "cb", "tb")):
            target = _arm_immediate(parts[-1])
            if target is not None and (mnemonic == "bl" or not self.start <= target < self.end):
                graph._branch(result, target)
            if mnemonic == "bl":
                self._clobber()
            return
        if mnemonic in ("blr", "br", "blraaz", "braaz", "blrab", "blraa", "brab", "braa"):
            if destination in self.loaded:
                pass  # its target was added when the slot was loaded
            elif mnemonic.startswith("blr") or not self._switch():
                result.indirect = True
            if mnemonic.startswith("blr"):
                self._clobber()
            return
        if mnemonic == "adrp" and len(parts) == 2:
            page = _arm_immediate(parts[1])
            if page is not None:
                self.pages[destination] = page
                self.loaded.pop(destination, None)
                return
        elif mnemonic == "add" and len(parts) == 3 and parts[1] in self.pages:
            offset = _arm_immediate(parts[2])
            if offset is not None:
                target = self.pages[parts[1]] + offset
                if graph._in_code(target) and not self.start <= target < self.end:
                    graph._branch(result, target)
                else:
                    graph._data(result, target)
        elif mnemonic == "ldr" and len(parts) >= 2 and parts[1].lstrip("[") in self.pages:
            offset = _arm_immediate(parts[2].rstrip("]")) if len(parts) == 3 else 0
            if offset is not None:
                slot = self.pages[parts[1].lstrip("[")] + offset
                target = graph.got.get(slot) if graph._in_got(slot) else None
                if target is None:
                    graph._data(result, slot)
                else:  # a function's address, called or handed on
                    graph._add(result, target)
                    self.pages.pop(destination, None)
                    self.loaded[destination] = target
                    return
        elif mnemonic == "mov" and len(parts) == 2 and parts[1] in self.loaded:
            self.loaded[destination] = self.loaded[parts[1]]  # `mov x16, x1; br x16`
            self.pages.pop(destination, None)
            return
        elif mnemonic == "adr" and len(parts) == 2:
            target = _arm_immediate(parts[1])
            if target is not None and not self.start <= target < self.end:
                graph._branch(result, target)
        self.pages.pop(destination, None)
        self.loaded.pop(destination, None)

    def _clobber(self) -> None:
        """A call: the caller-saved registers x0-x18 no longer hold what they held."""
        for registers in (self.pages, self.loaded):
            for register in [r for r in registers if not r[1:].isdigit() or int(r[1:]) < 19]:
                del registers[register]

    def _switch(self) -> bool:
        """A `br` ending a jump-table dispatch: an entry loaded with an extended index
        (`ldrb w0, [x1, w0, uxtw]`) shortly before."""
        return any(
            m in ("ldrb", "ldrh", "ldrsw", "ldr") and ("uxtw" in o or "sxtw" in o or "lsl #" in o)
            for m, o in self.recent
        )


def _arm_immediate(text: str) -> int | None:
    text = text.strip().lstrip("#")
    try:
        return int(text, 0)
    except ValueError:
        return None


def rodata_strings(data: Bytes, layout: ElfLayout) -> frozenset[str]:
    """The identifier-like NUL-terminated strings of the file's read-only data (names a
    program may hand to dlsym): `_IDENTIFIER`'s matches, found by `_x86scan.identifiers`
    where it was built (the same, 5-8 times faster)."""
    found: set[str] = set()
    for section in layout.sections:
        if section.name == ".rodata" and section.in_file:
            raw = bytes(data[section.offset : section.offset + section.size])
            if _x86scan is not None:
                found.update(_x86scan.identifiers(raw))
            else:
                found.update(m.decode() for m in _IDENTIFIER.findall(raw))
    return frozenset(found)


def reachable_imports(data: bytes, roots: Iterable[str], **options: object) -> Reach:
    """One-shot: build the graph of `data` and walk it from `roots`."""
    return CallGraph.from_bytes(data).reach(roots, **options)  # type: ignore[arg-type]
