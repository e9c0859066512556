"""Where a binary enters the kernel, and with which syscall number, found with capstone.

Two kinds of site:

- `instruction`: a raw `syscall` or `int 0x80` (x86) or `svc #0` (aarch64). Candidates
  are found with `bytes.find` on the opcode bytes in the code sections, never by
  disassembling whole sections. For x86, a short lead-in (from the function start
  when known) is decoded to check the candidate starts an instruction; then about 64
  bytes before it are disassembled in detail and the number is recovered by walking
  back to the last constant put in rax/eax or x8/w8 (through register copies, not
  past an unconditional jump, a return or a call that clobbers the register).
- `wrapper-call`: a call to a function that takes the number as an argument: libc's
  `syscall()`, musl's `__syscall_cp`, Go's `syscall.Syscall` family
  (signatures/syscalls/wrappers.json). The constant is recovered the same way from
  the argument register, or for Go's old stack ABI from the first stack slot.

A site whose number cannot be recovered is `unresolved`; a site inside a wrapper
function itself is `dispatch` (its number is the wrapper's argument, recovered at the
wrapper's call sites). Numbers are named from signatures/syscalls/<abi>.json.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import capstone
from capstone import arm64 as cs_arm64
from capstone import x86 as cs_x86

from portscan.inspect.elf.layout import Bytes, ElfView, find_all, release
from portscan.knowledge import tables as signatures
from portscan.model import SyscallReport, SyscallSite

try:  # `_x86_branches`' search in C (_elftables.c), if it was built
    from portscan.inspect.elf import _elftables
except ImportError:  # pragma: no cover - built by setup.py; the Python is the fallback
    _elftables = None

WINDOW = 64  # bytes disassembled before a site
WIDE_WINDOW = 256  # second try when the walk ran off the first window
LEAD_IN = 128  # x86: bytes decoded before a candidate to synchronise on instruction starts
RETRIES = 16  # x86: later starting points tried when a start does not decode
MAX_INSTRUCTION = 15  # bytes in the longest x86 instruction
TAIL = 6  # instructions decoded in detail first (the site and those just before it)

Target = str | tuple[str, int]  # a register family, or (base register, displacement)


@dataclass(frozen=True)
class Arch:
    """How one machine enters the kernel and passes arguments."""

    machine: str
    mode: int
    patterns: tuple[tuple[bytes, str], ...]  # (opcode bytes, abi whose table names it)
    number_register: str
    alignment: int
    call_clobbers: frozenset[str]
    syscall_clobbers: frozenset[str]


X86_64 = Arch(
    "x86_64",
    capstone.CS_MODE_64,
    ((b"\x0f\x05", "x86_64"), (b"\xcd\x80", "i386")),
    "rax",
    1,
    frozenset(("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11")),
    frozenset(("rax", "rcx", "r11")),
)
I386 = Arch(
    "i386",
    capstone.CS_MODE_32,
    ((b"\xcd\x80", "i386"),),
    "rax",
    1,
    frozenset(("rax", "rcx", "rdx")),
    frozenset(("rax",)),
)
AARCH64 = Arch(
    "aarch64",
    capstone.CS_MODE_ARM,
    ((b"\x01\x00\x00\xd4", "aarch64"),),
    "x8",
    4,
    frozenset([f"x{i}" for i in range(19)] + ["x30"]),
    frozenset(("x0",)),
)
ARCHES = {("x86_64", 64): X86_64, ("i386", 32): I386, ("aarch64", 64): AARCH64}


# --------------------------------------------------------------------------- data


@functools.cache
def syscall_names(abi: str) -> dict[int, str]:
    """Number -> name for one ABI, from the generated table."""
    document = signatures.load(f"syscalls/{abi}.json")
    return {entry["number"]: entry["name"] for entry in document["syscalls"]}


def _wrapper_config() -> dict[str, Any]:
    return signatures.load("syscalls/wrappers.json")


@dataclass(frozen=True)
class Wrapper:
    """A wrapper function found in one binary, and where its callers put the number."""

    name: str
    address: int
    target: Target


def _parse_target(text: str) -> Target:
    """`rdi` -> "rdi"; `[rsp+0]` -> ("rsp", 0)."""
    if text.startswith("["):
        base, _, disp = text.strip("[]").partition("+")
        return (base, int(disp or "0"))
    return text


def _version_at_least(version: str | None, since: str) -> bool:
    if version is None:
        return True  # no buildinfo: assume a current toolchain
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]]
    return numbers >= [int(n) for n in since.split(".")]


def find_wrappers(view: ElfView, arch: Arch, go_version: str | None) -> list[Wrapper]:
    """The wrapper functions present in `view.functions`, with their number argument."""
    config = _wrapper_config()
    by_symbol = {w["symbol"]: w["convention"] for w in config["wrappers"]}
    arguments = config["number_argument"]
    register_abi = _version_at_least(
        go_version, config["go_register_abi_since"].get(arch.machine, "99")
    )
    found = []
    for start, _size, name in view.functions:
        if name not in wrapper_spellings() and "/vendor/" not in name:
            continue
        convention = by_symbol.get(_wrapper_base(name))
        if convention is None:
            continue
        if convention == "go":
            stack = name.endswith(".abi0") or not register_abi
            convention = "go-stack-abi" if stack else "go-register-abi"
        argument = arguments[convention].get(arch.machine)
        if argument is not None:
            found.append(Wrapper(name, start, _parse_target(argument)))
    return found


# --------------------------------------------------------------------------- disassembly


@functools.cache
def _disassembler(mode: int, arm: bool, detail: bool) -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_ARM64 if arm else capstone.CS_ARCH_X86, mode)
    md.detail = detail
    return md


def _x86_family(name: str) -> str:
    """Canonical x86 register family: eax/ax/al -> rax, r8d -> r8."""
    return _X86_FAMILY.get(name, name)


def _arm_family(name: str) -> str:
    """Canonical aarch64 register family: w8 -> x8, wzr -> xzr, fp -> x29."""
    if name[:1] == "w" and name[1:].isdigit():
        return "x" + name[1:]
    return {"wzr": "xzr", "wsp": "sp", "fp": "x29", "lr": "x30"}.get(name, name)


_X86_FAMILY: dict[str, str] = {}
for _r in "abcd":
    for _alias in (f"r{_r}x", f"e{_r}x", f"{_r}x", f"{_r}l", f"{_r}h"):
        _X86_FAMILY[_alias] = f"r{_r}x"
for _r in ("si", "di", "bp", "sp"):
    for _alias in (f"r{_r}", f"e{_r}", _r, f"{_r}l"):
        _X86_FAMILY[_alias] = f"r{_r}"
for _n in range(8, 16):
    for _alias in (f"r{_n}", f"r{_n}d", f"r{_n}w", f"r{_n}b"):
        _X86_FAMILY[_alias] = f"r{_n}"


@dataclass(frozen=True)
class _Found:
    """The walk is over: `number` is the constant, or None when the value is not one."""

    number: int | None


_UNKNOWN = _Found(None)
_MASK64 = 0xFFFFFFFFFFFFFFFF


class _Walk:
    """Walks back from a site through one disassembled window to the constant in `target`.

    Each step either decides (`_Found`) or returns where the value is before the
    instruction: the same target, or the source register of a copy.
    """

    def __init__(self, arch: Arch):
        self.arch = arch
        self.arm = arch is AARCH64
        self.family = _arm_family if self.arm else _x86_family

    def value(self, insns: list[Any], target: Target) -> tuple[int | None, bool]:
        """(number or None, True when the walk left the window without deciding)."""
        for insn in reversed(insns):
            outcome = self._step(insn, target)
            if isinstance(outcome, _Found):
                return outcome.number, False
            target = outcome
        return None, True

    def _step(self, insn: Any, target: Target) -> Target | _Found:
        if self._ends_block(insn):
            return _UNKNOWN
        if insn.group(capstone.CS_GRP_CALL):
            clobbered = isinstance(target, tuple) or target in self.arch.call_clobbers
            return _UNKNOWN if clobbered else target
        if insn.mnemonic in ("syscall", "svc", "int", "sysenter"):
            return _UNKNOWN if target in self.arch.syscall_clobbers else target
        if isinstance(target, tuple):
            return self._step_memory(insn, target)
        _read, written = insn.regs_access()
        if target not in {self.family(insn.reg_name(r)) for r in written}:
            return target
        return self._assignment(insn)

    def _ends_block(self, insn: Any) -> bool:
        if insn.group(capstone.CS_GRP_RET):
            return True
        if not insn.group(capstone.CS_GRP_JUMP):
            return False  # conditional branches fall through with the value intact
        mnemonic = insn.mnemonic
        if self.arm:
            return mnemonic in ("b", "br") or mnemonic.startswith(("braa", "brab"))
        return mnemonic in ("jmp", "ljmp")

    def _assignment(self, insn: Any) -> Target | _Found:
        """`insn` writes the target: a constant ends the walk, a register copy moves it."""
        ops = insn.operands
        mnemonic = insn.mnemonic
        if self.arm:
            if mnemonic in ("mov", "movz") and len(ops) == 2:
                if ops[1].type == cs_arm64.ARM64_OP_IMM:
                    return _Found(ops[1].imm & _MASK64)
                if ops[1].type == cs_arm64.ARM64_OP_REG:
                    return self._source(insn, ops[1].reg)
            return _UNKNOWN
        if len(ops) == 2 and ops[0].type == cs_x86.X86_OP_REG and ops[0].size >= 4:
            if mnemonic in ("mov", "movabs"):
                if ops[1].type == cs_x86.X86_OP_IMM:
                    return _Found(ops[1].imm & ((1 << (8 * ops[0].size)) - 1))
                if ops[1].type == cs_x86.X86_OP_REG:
                    return self._source(insn, ops[1].reg)
            same = ops[1].type == cs_x86.X86_OP_REG and ops[0].reg == ops[1].reg
            if mnemonic in ("xor", "sub") and same:
                return _Found(0)
        return _UNKNOWN

    def _source(self, insn: Any, register: int) -> Target | _Found:
        source = self.family(insn.reg_name(register))
        return _Found(0) if source == "xzr" else source

    def _step_memory(self, insn: Any, target: tuple[str, int]) -> Target | _Found:
        """Old Go stack ABI: the number is stored to the first argument slot."""
        base, disp = target
        _read, written = insn.regs_access()
        if base in {self.family(insn.reg_name(r)) for r in written}:
            return _UNKNOWN  # the stack pointer moved: the slot is another one
        ops = insn.operands
        mem_type = cs_arm64.ARM64_OP_MEM if self.arm else cs_x86.X86_OP_MEM
        store = "str" if self.arm else "mov"
        slot = 1 if self.arm else 0  # str REG, [MEM] / mov [MEM], REG-or-IMM
        if insn.mnemonic != store or len(ops) != 2 or ops[slot].type != mem_type:
            return target
        mem = ops[slot].mem
        if self.family(insn.reg_name(mem.base)) != base or mem.disp != disp or mem.index:
            return target
        value = ops[1 - slot]
        if value.type == (cs_arm64.ARM64_OP_IMM if self.arm else cs_x86.X86_OP_IMM):
            return _Found(value.imm & _MASK64)
        return self._source(insn, value.reg)


# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class _Code:
    """One executable range of the file."""

    start: int  # file offset
    end: int
    address: int  # virtual address of `start`

    def address_of(self, offset: int) -> int:
        return self.address + offset - self.start


@dataclass(frozen=True)
class _Candidate:
    """Bytes that may be a site: a kernel-entry opcode or a branch to a wrapper."""

    code: _Code
    offset: int
    size: int
    target: Target  # where the number is before the instruction runs
    abi: str
    wrapper: str | None = None  # the wrapper a call goes to


BRANCH_BLOCK = 1 << 16  # bytes of code searched with one pattern
X86_BRANCH_OPCODES = (0xE8, 0xE9)  # call rel32, jmp rel32
X86_BRANCH_SIZE = 5
X86_SPAN = 1 << 12  # x86: positions over which a displacement's bits 12 and up stay
_IN_C = 1 << 62  # `_x86_branches` in C where an address stays within 64-bit arithmetic


def _branches_to(
    data: Bytes, code: _Code, targets: dict[int, Any], arch: Arch
) -> Iterator[tuple[int, int, int]]:
    """(offset, size, target) of each direct call or jump from `code` to a target.

    A branch's displacement is target minus its own address, so within one 64 KiB
    block of code the displacement's high half can take only two values per target.
    Each block is searched for those high halves after the opcode (aarch64), or for
    what they narrow down to (x86, `_x86_branches`), in C; only the matches are
    checked in Python.
    """
    arm = arch is AARCH64
    block = BRANCH_BLOCK * (4 if arm else 1)
    to_address = code.address - code.start
    word = struct.Struct("<I").unpack_from
    for start in range(code.start, code.end, block):
        if start > code.start:  # the block searched before: its pages go back
            release(data, start - block, block)
        end = min(start + block, code.end)
        tails = _block_tails(code, start, end, targets, arm)
        if not arm:
            yield from _x86_branches(data, code, start, end, targets, tails)
            continue
        # finditer does not overlap matches: a branch starting inside a false match
        # (same high half, other low bytes) is missed, which needs both to be rare
        pattern = _compiled(b"(?:" + b"|".join(re.escape(t) for t in tails) + b")")
        for match in pattern.finditer(data, start + 2, min(end + 2, code.end)):
            offset = match.start() - 2  # matched at byte 2 of the word
            if (offset - code.start) % 4:
                continue
            value = word(data, offset)[0]
            imm = value & 0x3FFFFFF
            target = offset + to_address + (imm - (1 << 26) if imm & (1 << 25) else imm) * 4
            if target in targets and value >> 26 in (0x25, 0x05):  # BL, B
                yield offset, 4, target


def _x86_branches(
    data: Bytes, code: _Code, start: int, end: int, targets: dict[int, Any], tails: list[bytes]
) -> Iterator[tuple[int, int, int]]:
    """The branches to a target from the block [start, end), as one search of the block
    for an opcode, two bytes and one of the block's `tails` (its matches, which do not
    overlap) finds them: a branch starting inside such a match is not one (which needs
    a false match, and both to be rare).

    In C (`_elftables.x86_branches`, where it was built) that search is made as it
    reads, each match's target looked up: libLLVM's 50 MB of code in 0.06 s instead of
    0.13-0.23 (postgres:15, whose layers end waiting for that file's analysis). In Python
    the branches are found by their displacement: at offset p, a branch to T holds
    T - 5 - address(p), which falls by one from each byte to the next, so over a span
    of X86_SPAN offsets its bits 12 and up stay the same, and with them the high
    nibble of its second byte. Each span is searched for the opcode followed by a byte
    with that nibble (`_nibble_pattern`): about a sixteenth of the branches nearby,
    where the high halves the block shares match every one. A branch found is then
    kept if the block's search would have matched it (`_matched_alone`).
    """
    to_address = code.address - code.start
    stop = min(end + 4, code.end)  # a branch starting in the block may end past it
    if _elftables is not None and abs(to_address) < _IN_C:  # the block's search, in C
        for offset, target in _elftables.x86_branches(
            data, start, end, stop, to_address, targets, tails
        ):
            yield offset, X86_BRANCH_SIZE, target
        return
    rel32 = struct.Struct("<i").unpack_from
    found = set()
    for target in targets:
        expected = target - X86_BRANCH_SIZE - to_address  # less the offset: the rel32
        span = start
        while span < end:
            rel = (expected - span) & 0xFFFFFFFF
            span_end = min(end, span + rel % X86_SPAN + 1)  # while rel // X86_SPAN stays
            nibble = (rel >> 12) & 0xF
            for opcode in X86_BRANCH_OPCODES:
                pattern = _nibble_pattern(opcode, nibble)
                for match in pattern.finditer(data, span, min(span_end + 4, stop)):
                    offset = match.start()
                    if (
                        offset + to_address + X86_BRANCH_SIZE + rel32(data, offset + 1)[0]
                        in targets
                    ):
                        found.add(offset)
            span = span_end
    tail_set = frozenset(tails)
    for offset in sorted(found):
        if _matched_alone(data, offset, start, stop, tail_set):
            yield (
                offset,
                X86_BRANCH_SIZE,
                offset + to_address + X86_BRANCH_SIZE + rel32(data, offset + 1)[0],
            )


def _matched_alone(
    data: Bytes, offset: int, start: int, stop: int, tails: frozenset[bytes]
) -> bool:
    """Whether a search of [start, stop) for an opcode, two bytes and one of `tails`,
    whose matches do not overlap, matches at `offset` (one of its matches). Decided
    from the matches before it: back to one with none in the four bytes before it
    (a match, whatever came earlier), then forward as the search goes."""

    def matches(at: int) -> bool:
        return (
            start <= at
            and at + X86_BRANCH_SIZE <= stop
            and data[at] in X86_BRANCH_OPCODES
            and bytes(data[at + 3 : at + 5]) in tails
        )

    first = offset
    while True:
        before = [at for at in range(first - X86_BRANCH_SIZE + 1, first) if matches(at)]
        if not before:
            break
        first = before[0]
    resume = first
    for at in range(first, offset + 1):
        if at >= resume and matches(at):
            if at == offset:
                return True
            resume = at + X86_BRANCH_SIZE
    return False


@functools.lru_cache(maxsize=64)
def _nibble_pattern(opcode: int, nibble: int) -> re.Pattern[bytes]:
    """The opcode, then a byte whose high nibble is `nibble`, then three more bytes."""
    low, high = nibble << 4, (nibble << 4) | 0xF
    return re.compile(
        re.escape(bytes([opcode]))
        + b"(?=.["
        + re.escape(bytes([low]))
        + b"-"
        + re.escape(bytes([high]))
        + b"]..)",
        re.DOTALL,
    )


def _block_tails(
    code: _Code, start: int, end: int, targets: dict[int, Any], arm: bool
) -> list[bytes]:
    """The two bytes a branch from [start, end) to a target may hold at the end of its
    displacement (x86), or at the top of its instruction word (aarch64), sorted."""
    low, high = code.address_of(start), code.address_of(end - 1)
    tails: set[bytes] = set()
    for target in targets:
        if arm:  # imm26 = (target - address) / 4: bytes 2-3 hold imm26[25:16] and the opcode
            for address in (low, high):
                imm = ((target - address) >> 2) & 0x3FFFFFF
                for opcode in (0x94, 0x14):
                    tails.add(bytes(((imm >> 16) & 0xFF, opcode | (imm >> 24))))
        else:  # rel32 = target - (address + 5): bytes 3-4 hold its high half
            for address in (low, high):
                rel = (target - address - 5) & 0xFFFFFFFF
                tails.add((rel >> 16).to_bytes(2, "little"))
    return sorted(tails)


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: bytes) -> re.Pattern[bytes]:
    return re.compile(pattern, re.DOTALL)


class SyscallScanner:
    """Scans one ELF view; see the module docstring."""

    def __init__(self, view: ElfView, arch: Arch, go_version: str | None = None):
        self.view = view
        self.arch = arch
        self.code = [_Code(*r) for r in view.code_ranges()]
        self.wrappers = find_wrappers(view, arch, go_version)
        self.walk = _Walk(arch)
        arm = arch is AARCH64
        self.lite = _disassembler(arch.mode, arm, False)
        self.full = _disassembler(arch.mode, arm, True)

    def scan(self) -> SyscallReport:
        report = SyscallReport(abi=self.arch.machine)
        for code in self.code:
            for candidate in self._instruction_candidates(code):
                self._examine(candidate, report)
            for candidate in self._wrapper_candidates(code):
                self._examine(candidate, report)
        for sites in (report.resolved, report.unresolved, report.dispatch):
            sites.sort(key=lambda s: s.address)
        return report

    def _instruction_candidates(self, code: _Code) -> Iterator[_Candidate]:
        data, register = self.view.data, self.arch.number_register
        for needle, abi in self.arch.patterns:
            for offset in find_all(data, needle, code.start, code.end):
                if (offset - code.start) % self.arch.alignment == 0:
                    yield _Candidate(code, offset, len(needle), register, abi)

    def _wrapper_candidates(self, code: _Code) -> Iterator[_Candidate]:
        """Direct calls and tail jumps to a wrapper function."""
        if not self.wrappers:
            return
        targets = {w.address: w for w in self.wrappers}
        abi = self.arch.machine
        for offset, size, target in _branches_to(self.view.data, code, targets, self.arch):
            wrapper = targets[target]
            yield _Candidate(code, offset, size, wrapper.target, abi, wrapper.name)

    def _examine(self, candidate: _Candidate, report: SyscallReport) -> None:
        """Disassemble before the candidate; file it as a site if it is an instruction."""
        code, offset = candidate.code, candidate.offset
        address = code.address_of(offset)
        window = self._window(candidate, WINDOW)
        if window is None:
            return  # the bytes are not an instruction boundary: not a site
        site = window.tail[-1]
        if candidate.wrapper is None and not _is_kernel_entry(site):
            return
        number, ran_off = self._walk_back(candidate, window)
        if number is None and ran_off and code.address_of(window.starts[0]) > code.address:
            wide = self._window(candidate, WIDE_WINDOW)
            if wide is not None:
                number, _ = self._walk_back(candidate, wide)
        function = self.view.function_containing(address)
        entry = SyscallSite(
            address=address,
            kind="instruction" if candidate.wrapper is None else "wrapper-call",
            instruction=f"{site.mnemonic} {site.op_str}".strip(),
            abi=candidate.abi,
            function=function[2] if function else None,
            via=candidate.wrapper,
        )
        if number is not None:
            entry.number = number
            entry.name = syscall_names(candidate.abi).get(number)
            report.resolved.append(entry)
        elif function is not None and is_wrapper_name(function[2]):
            report.dispatch.append(entry)
        else:
            report.unresolved.append(entry)

    def _walk_back(self, candidate: _Candidate, window: _Window) -> tuple[int | None, bool]:
        """`_Walk.value` over the instructions of the window before the candidate: over
        its tail first, and over all of them when the walk runs off the tail (a walk
        reads the instructions last to first, so what it decides in the tail it decides
        in the whole window)."""
        number, ran_off = self.walk.value(window.tail[:-1], candidate.target)
        if number is None and ran_off and len(window.tail) < len(window.starts):
            whole = self._decode(candidate, window.starts[0])
            if whole:
                number, ran_off = self.walk.value(whole[:-1], candidate.target)
        return number, ran_off

    def _window(self, candidate: _Candidate, width: int) -> _Window | None:
        """The instructions from about `width` bytes before the candidate up to and
        including it (the last TAIL of them decoded in detail); None when the candidate
        is not an instruction boundary."""
        starts = self._window_starts(candidate, width)
        if starts is None:
            return None
        if len(starts) > TAIL:  # x86, whose instructions' starts the lead-in decoding found
            tail = self._decode(candidate, starts[-TAIL])
            return _Window(starts, tail) if tail else None
        insns = self._decode(candidate, starts[0])
        if not insns:
            return None
        if self.arch.alignment > 1:  # fixed width: the decoded instructions say where
            code = candidate.code
            starts = tuple(code.start + insn.address - code.address for insn in insns)
        return _Window(starts, insns)

    def _decode(self, candidate: _Candidate, start: int) -> list[Any]:
        """The instructions decoded in detail from file offset `start` up to and
        including the candidate; [] when decoding does not land on it."""
        code, end = candidate.code, candidate.offset + candidate.size
        insns = list(self.full.disasm(self.view.data[start:end], code.address_of(start)))
        if not insns or insns[-1].address != code.address_of(candidate.offset):
            return []
        return insns

    def _window_starts(self, candidate: _Candidate, width: int) -> tuple[int, ...] | None:
        """File offsets from which decoding lands exactly on the candidate: x86, the
        start of each instruction of the window; fixed-width code, the window's first
        aligned offset only.

        x86: decode from the containing function's start when it is within `LEAD_IN`
        bytes, else from `LEAD_IN` bytes before; x86 decoding resynchronises within a
        few instructions, so bytes inside another instruction are not landed on. A
        start that runs into bytes that do not decode (mid-instruction, data) is moved
        forward a byte, up to `RETRIES` times.
        """
        code, offset = candidate.code, candidate.offset
        lowest = max(code.start, offset - width)
        if self.arch.alignment > 1:
            return (lowest + (offset - lowest) % self.arch.alignment,)
        address = code.address_of(offset)
        start = max(code.start, offset - LEAD_IN)
        function = self.view.function_start(address)
        if function is not None and address - function <= LEAD_IN:
            start = max(start, offset - (address - function))
        for attempt in range(start, min(start + RETRIES, offset) + 1):
            verdict = self._boundaries_from(attempt, candidate, lowest)
            if verdict != "undecodable":
                return verdict if isinstance(verdict, tuple) else None
        return None

    def _boundaries_from(
        self, start: int, candidate: _Candidate, lowest: int
    ) -> tuple[int, ...] | str:
        """Decode from `start`: the instruction boundaries from `lowest` on, the
        candidate last, when decoding lands on the candidate, else "overshoot" or
        "undecodable"."""
        code, target = candidate.code, candidate.offset
        chunk = self.view.data[start : min(target + MAX_INSTRUCTION, code.end)]
        boundaries: list[int] = []
        base = code.address_of(start)
        for insn_address, _size, _mnemonic, _ops in self.lite.disasm_lite(chunk, base):
            at = start + insn_address - base
            if at >= lowest:
                boundaries.append(at)
            if at >= target:
                return tuple(boundaries) if at == target else "overshoot"
        return "undecodable"


@dataclass(frozen=True)
class _Window:
    """The instructions before a candidate: where each starts (file offsets, the
    candidate last) and the last of them decoded in detail."""

    starts: tuple[int, ...]
    tail: list[Any]


def _is_kernel_entry(insn: Any) -> bool:
    if insn.mnemonic == "syscall":
        return True
    if insn.mnemonic == "int":
        return bool(insn.op_str == "0x80")
    return bool(insn.mnemonic == "svc" and insn.op_str == "#0")


@signatures.register_cache
@functools.lru_cache(maxsize=1 << 13)
def is_wrapper_name(function: str) -> bool:
    """True for a function that takes the syscall number as an argument. Cached: every
    dynamic program's imports are asked about, and most are the same libc names."""
    return _wrapper_base(function) in _wrapper_symbols()


def _wrapper_base(function: str) -> str:
    """`vendor/golang.org/x/sys/unix.Syscall.abi0` -> `golang.org/x/sys/unix.Syscall`."""
    base = function.removesuffix(".abi0").removesuffix("@plt").removeprefix("vendor/")
    return base.rsplit("/vendor/", 1)[-1]


@functools.cache
def _wrapper_symbols() -> frozenset[str]:
    return frozenset(w["symbol"] for w in _wrapper_config()["wrappers"])


@functools.cache
def wrapper_spellings() -> frozenset[str]:
    """Every spelling of a wrapper name short of a vendored path, for a quick filter."""
    names = _wrapper_symbols()
    suffixes = ("", ".abi0", "@plt")
    return frozenset(
        f"{prefix}{n}{s}" for n in names for s in suffixes for prefix in ("", "vendor/")
    )


def scan_syscalls(view: ElfView, go_version: str | None = None) -> SyscallReport | None:
    """The syscall sites of one ELF file; None when its machine is not supported."""
    arch = ARCHES.get((view.layout.machine, view.layout.elf_class))
    if arch is None:
        return None
    return SyscallScanner(view, arch, go_version).scan()
