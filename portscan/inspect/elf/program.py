"""What a program itself asks of its platform, beyond its dynamic imports.

Runs in the same in-stream pass as the ELF analysis, on the same bytes, and only for
files that are not the platform (signatures/platform-libraries.json):
- `linked_calls`: in a static x86-64 binary with a symbol table, the C/C++-runtime
  functions its own code calls, found by walking direct calls, jumps and RIP-relative
  references (function pointers handed to signal, atexit, pthread_create) from `main`.
  A static binary links in most of libc whatever it uses; only this walk tells what
  the program asks for. A runtime function is recorded and not entered.
- `path_strings`: /dev, /proc and /sys paths in a dynamic file, which a sandbox lacks
  even when everything links (the ground truth's random_devurandom case). Static
  binaries are skipped: their strings are mostly the linked-in C library's own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import capstone
from capstone import x86

from portscan.inspect.elf.callgraph import CallGraph
from portscan.inspect.elf.layout import Bytes, release
from portscan.inspect.elf.parse import analyse_elf, parse_with_lief
from portscan.knowledge.platform import is_platform_library, is_platform_name, runtime_platforms
from portscan.model import Binary

if TYPE_CHECKING:
    import lief

_PATH_STRING = re.compile(rb"/(?:dev|proc|sys)/[A-Za-z0-9_./%-]{2,64}")
_MAX_PATHS = 32
_LONGEST_PATH = 70  # the longest match of _PATH_STRING
_WINDOW = 8 << 20  # bytes path_strings reads before handing a mapped file's pages back


def path_strings(data: Bytes) -> list[str]:
    """Distinct /dev, /proc and /sys path strings in the bytes, in order of appearance.
    Read a window at a time, a mapped file's pages handed back behind it, so that a
    100 MiB library is never resident whole; the matches are those of one pass."""
    found: dict[str, None] = {}
    resume = 0  # where the last match ended: a match never starts inside another
    for start in range(0, len(data), _WINDOW):
        end = min(len(data), start + _WINDOW + _LONGEST_PATH)
        for match in _PATH_STRING.finditer(data, max(resume, start), end):
            if match.start() >= start + _WINDOW:
                break  # the next window's, found there whole
            resume = match.end()
            found.setdefault(match.group().decode("ascii").rstrip("./"), None)
            if len(found) >= _MAX_PATHS:
                return list(found)
        release(data, start, _WINDOW)
    return list(found)


def _functions(elf: lief.ELF.Binary) -> dict[int, tuple[list[str], int]]:
    """Function symbols by address: (all names at that address, size)."""
    functions: dict[int, tuple[list[str], int]] = {}
    for symbol in elf.symtab_symbols:
        if symbol.type == symbol.TYPE.FUNC and symbol.value and symbol.size:
            functions.setdefault(symbol.value, ([], symbol.size))[0].append(symbol.name)
    return functions


def _best_name(names: list[str]) -> str:
    """The public spelling among aliases (`fork` over `__libc_fork`)."""
    return min(names, key=lambda n: (n.startswith("_"), len(n), n))


def _targets(insn: capstone.CsInsn) -> list[int]:
    """Addresses an instruction calls, jumps to or takes (RIP-relative)."""
    found = []
    branch = insn.group(capstone.CS_GRP_CALL) or insn.group(capstone.CS_GRP_JUMP)
    for operand in insn.operands:
        if branch and operand.type == x86.X86_OP_IMM:
            found.append(operand.imm)
        elif operand.type == x86.X86_OP_MEM and operand.mem.base == x86.X86_REG_RIP:
            found.append(insn.address + insn.size + operand.mem.disp)
    return found


def static_libc_calls(elf: lief.ELF.Binary) -> list[str] | None:
    """The runtime functions a static x86-64 program's own code calls; None without
    `main` in the symbol table (stripped, or not a C program)."""
    functions = _functions(elf)
    main = next((a for a, (names, _) in functions.items() if "main" in names), None)
    if main is None:
        return None
    disassembler = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    disassembler.detail = True
    calls: set[str] = set()
    seen: set[int] = set()
    queue = [main]
    while queue:
        address = queue.pop()
        if address in seen:
            continue
        seen.add(address)
        names, size = functions[address]
        if address != main and any(is_platform_name(n) for n in names):
            calls.add(_best_name(names))
            continue
        code = bytes(elf.get_content_from_virtual_address(address, size))
        for insn in disassembler.disasm(code, address):
            queue.extend(t for t in _targets(insn) if t in functions and t != address)
    return sorted(calls)


def add_program_facts(path: str, data: Bytes, binary: Binary, file: str | None = None) -> Binary:
    """Fill `linked_calls` and `path_strings` for a program or application library."""
    if binary.error or is_platform_library(path, binary.soname) or binary.runtime is not None:
        return binary
    static = binary.linkage.startswith("static")
    if not static:  # a static binary's strings are mostly its linked-in libc's own
        binary.path_strings = path_strings(data)
    if static and not binary.stripped and binary.machine == "x86_64":
        elf = parse_with_lief(data, file)
        calls = static_libc_calls(elf) if elf is not None else None
        binary.linked_calls = calls or []
    return binary


def keep_reached_sites(data: Bytes, binary: Binary) -> Binary:
    """For a static program judged by its syscall sites: keep in `resolved` only the
    sites in functions reachable from the entry point and the constructors (a multi-call
    binary such as busybox reaches nearly all through its applet table, rightly); the
    others move to `unreached`. Where the walk cannot be made, every site stays."""
    report = binary.syscalls
    if report is None or not report.resolved or binary.linked_calls:
        return binary
    graph = CallGraph.from_bytes(data)
    reach = graph.reach_entry()
    if not reach.complete:
        report.reach = f"{reach.status}: {reach.note}".rstrip(": ")
        return binary
    report.reach = "complete"
    kept, dropped = [], []
    for site in report.resolved:
        start = graph.function_of(site.address)
        (kept if start is None or start in reach.functions else dropped).append(site)
    report.resolved, report.unreached = kept, dropped
    return binary


def analyse_elf_facts(path: str, data: Bytes, file: str | None = None) -> Binary:
    """Everything known about one ELF file: its structure (parse.py) and what the
    program itself asks for (program.py). Runs in the worker, or in-process. `file`:
    where the same bytes are on disk, for lief."""
    binary = add_program_facts(path, data, analyse_elf(path, data, file), file)
    runtime = binary.runtime.name if binary.runtime else None
    if binary.linkage.startswith("static") and runtime not in runtime_platforms():
        binary = keep_reached_sites(data, binary)
    return binary
