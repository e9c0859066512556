"""The compiled instruction sorter (portscan/inspect/elf/_x86scan.c) changes how fast
the x86-64 walker reads a function, never what it finds: every function of real Debian
libraries and of crafted programs (weak checks, GOT loads without PLT, switch tables, a
position-dependent executable) is summarised alike with and without it, also when the
decoding is cut into runs of a few instructions. Its decoding tables give each
instruction they know capstone's length and the class capstone's text would get: on
every instruction of those libraries, on every prefix, opcode and ModRM byte, and on
random bytes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from random import Random

import pytest

from portscan.inspect.elf import callgraph
from portscan.inspect.elf.callgraph import COMPLETE, CallGraph
from tests.elfbuild import ElfBuilder, builder
from tests.test_callgraph import CALLBACK_TABLE, NO_PLT, WEAK_CHECK

LIBRARIES = [
    Path("/usr/lib/x86_64-linux-gnu", name)
    for name in ("libc.so.6", "libz.so.1", "libsystemd.so.0", "libcurl.so.4")
]
SWITCH = r"""
#include <stdio.h>
#include <unistd.h>
int pick(int c, const char *s) {
    switch (c) {
    case 0: return puts(s);
    case 1: return getpid();
    case 2: return fork();
    case 3: return getppid();
    case 4: return fputs(s, stderr);
    case 5: return sleep(1);
    default: return -1;
    }
}
"""

# The walker's edge cases, in the order of _X86Walker's rules: a register loaded from a
# function's GOT slot is kept over a test and a conditional jump but not over a plain
# instruction or an unconditional jump; a PIC switch (movsxd, then `jmp reg`); rip-relative
# stores, loads and other uses (a register named r9 kept for its call); an undecodable
# byte inside a function.
EDGES = r"""
__asm__(
    ".intel_syntax noprefix\n"
    ".text\n"
    ".globl target_fn\n.type target_fn,@function\ntarget_fn: ret\n"
    ".size target_fn, .-target_fn\n"
    ".globl jumps_over\n.type jumps_over,@function\njumps_over:\n"
    "  mov rax, qword ptr [rip + target_fn@GOTPCREL]\n  jmp 1f\n1: call rax\n  ret\n"
    ".size jumps_over, .-jumps_over\n"
    ".globl tests_first\n.type tests_first,@function\ntests_first:\n"
    "  mov rax, qword ptr [rip + target_fn@GOTPCREL]\n  test rax, rax\n  je 1f\n"
    "  cmp rax, 1\n  jne 1f\n  call rax\n1: ret\n"
    ".size tests_first, .-tests_first\n"
    ".globl plain_between\n.type plain_between,@function\nplain_between:\n"
    "  mov rax, qword ptr [rip + target_fn@GOTPCREL]\n  nop\n  call rax\n  ret\n"
    ".size plain_between, .-plain_between\n"
    ".globl adds_between\n.type adds_between,@function\nadds_between:\n"
    "  mov rax, qword ptr [rip + target_fn@GOTPCREL]\n  add ecx, 1\n  call rax\n  ret\n"
    ".size adds_between, .-adds_between\n"
    ".globl dispatch\n.type dispatch,@function\ndispatch:\n"
    "  lea rdx, [rip + 2f]\n  movsxd rax, dword ptr [rdx + rdi*4]\n  add rax, rdx\n"
    "  nop\n  nop\n  jmp rax\n1: call target_fn\n  ret\n"
    ".section .rodata\n2: .long 1b - 2b\n.text\n"
    ".size dispatch, .-dispatch\n"
    ".globl loads_r9\n.type loads_r9,@function\nloads_r9:\n"
    "  mov dword ptr [rip + counter], 1\n  add qword ptr [rip + counter], 1\n"
    "  movss xmm0, dword ptr [rip + counter]\n  mov r9, qword ptr [rip + target_fn@GOTPCREL]\n"
    "  call r9\n  mov r10d, dword ptr [rip + counter]\n  ret\n"
    ".size loads_r9, .-loads_r9\n"
    ".data\ncounter: .quad 0\n.text\n"
    ".globl bad_byte\n.type bad_byte,@function\nbad_byte:\n"
    "  call target_fn\n  .byte 0x06\n  call getpid@PLT\n  ret\n"
    ".size bad_byte, .-bad_byte\n"
    ".att_syntax\n"
);
"""


def summaries(graph: CallGraph) -> list[tuple[object, ...]]:
    """Every function start's summary, read afresh."""
    graph._functions.clear()
    found = []
    for start in graph.starts:
        f = graph._disassemble(start)
        found.append((start, f.calls, f.imports, f.indirect, f.instructions, f.data))
    return found


def assert_sorted_alike(data: bytes, monkeypatch: pytest.MonkeyPatch, chunk: int) -> int:
    graph = CallGraph.from_bytes(data)
    assert graph.status == COMPLETE and graph.layout is not None
    assert graph.layout.machine == "x86_64"
    with monkeypatch.context() as patch:
        patch.setattr(callgraph, "_x86scan", None)
        exact = summaries(graph)
    with monkeypatch.context() as patch:
        patch.setattr(callgraph, "CHUNK", chunk)
        sorted_ = summaries(graph)
    assert len(exact) == len(sorted_)
    for one, other in zip(exact, sorted_, strict=True):
        assert one == other, f"function {one[0]:#x} differs"
    return sum(s[4] for s in exact)


def assert_made_alike(data: bytes) -> float:
    """Every function `_x86scan.function` makes itself (what `_x86scan.walk` does before
    it asks the graph) equals the walker's; the share it makes."""
    graph = CallGraph.from_bytes(data)
    quick = graph._quick()
    assert quick is not None and callgraph._x86scan is not None
    summary, resolve, code, fast = quick
    made = 0
    for start in graph.starts:
        mine = callgraph._x86scan.function(summary, resolve, code, start, fast)
        graph._functions.clear()
        exact = graph._disassemble(start)
        if mine is not None:
            made += 1
            assert mine == exact, f"function {start:#x} differs"
    return made / len(graph.starts)


def test_the_compiled_sorter_is_built() -> None:
    """pip builds it where a C compiler and Python's headers are (as in CI); without
    them the walker is about twice as slow, so this install would be too."""
    assert callgraph._x86scan is not None


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> ElfBuilder:
    return builder(tmp_path_factory)


@pytest.mark.parametrize("chunk", [callgraph.CHUNK, 5])
def test_crafted_programs_are_summarised_alike(
    build: ElfBuilder, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    sources = {
        "libedges-fast.so": (EDGES, "-shared", "-fPIC"),
        "libweak-fast.so": (WEAK_CHECK, "-shared", "-fPIC"),
        "libnoplt-fast.so": (NO_PLT, "-shared", "-fPIC", "-fno-plt"),
        "libswitch-fast.so": (SWITCH, "-shared", "-fPIC", "-O2"),
        "table-nopie-fast": (
            CALLBACK_TABLE + SWITCH + "int main(int c, char **v) { return pick(c, *v); }\n",
            "-no-pie", "-fno-pie", "-pthread", "-O2",
        ),
    }  # fmt: skip
    for name, (source, *flags) in sources.items():
        path = build.c(name, source, *flags)
        assert assert_sorted_alike(path.read_bytes(), monkeypatch, chunk) > 0
        assert assert_made_alike(path.read_bytes()) > 0.5, name


def test_the_edge_cases_mean_what_they_say(build: ElfBuilder) -> None:
    """The crafted edges exercise the rules the sorter mirrors (else the test above
    could not tell a wrong sorter from a right one)."""
    path = build.c("libedges-fast.so", EDGES, "-shared", "-fPIC")
    graph = CallGraph.from_bytes(path.read_bytes())
    function = {name: graph._disassemble(graph.resolve(name)) for name in (
        "jumps_over", "tests_first", "plain_between", "adds_between", "dispatch", "bad_byte",
        "loads_r9",
    )}  # fmt: skip
    assert function["jumps_over"].indirect and function["plain_between"].indirect
    assert function["adds_between"].indirect
    assert not function["tests_first"].indirect
    assert not function["dispatch"].indirect  # a switch, not an unknown call
    assert function["bad_byte"].imports == ["getpid"]  # decoding went on past the byte
    assert not function["loads_r9"].indirect  # `call r9` calls what r9 was loaded with
    assert graph.resolve("target_fn") in function["loads_r9"].calls
    # and C makes each of them itself, alike (the test above compares): the switch's
    # movsxd read back, the register loaded and called, the byte skipped
    summary, resolve, code, fast = graph._quick() or ()
    for name, exact in function.items():
        mine = callgraph._x86scan.function(summary, resolve, code, graph.resolve(name), fast)
        assert mine == exact, name


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda p: p.name)
def test_real_libraries_are_summarised_alike(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not library.exists():
        pytest.skip(f"no {library} on this machine")
    assert assert_sorted_alike(library.read_bytes(), monkeypatch, callgraph.CHUNK) > 10_000
    assert assert_made_alike(library.read_bytes()) > 0.95  # the walker reads next to none


def test_a_static_program_is_summarised_alike(
    build: ElfBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A position-dependent static program: Debian's libc.a linked in, whose numbers the
    sorter hands over as possible addresses (ABSOLUTE events) instead of the text."""
    source = SWITCH + "int main(int c, char **v) { return pick(c, *v); }\n"
    path = build.c("static-fast", source, "-static", "-no-pie", "-fno-pie", "-O2")
    assert assert_sorted_alike(path.read_bytes(), monkeypatch, callgraph.CHUNK) > 100_000
    assert assert_made_alike(path.read_bytes()) > 0.5


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda p: p.name)
@pytest.mark.parametrize("bounded", [False, True], ids=["whole", "budget-bound"])
def test_walks_are_alike_with_and_without_the_compiled_parts(
    library: Path, bounded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole walks (`_x86scan.walk`), data pointers followed (`_x86scan.pointed`) and
    chains kept, answer alike in Python alone: from every 7th export, and from the
    constructors; also with the graph's budget half of what they take, so that it runs
    out partway through one walk and the later ones are bound."""
    if not library.exists():
        pytest.skip(f"no {library} on this machine")
    data = library.read_bytes()
    roots = sorted(CallGraph.from_bytes(data).symbols.exports)[::7]

    def walks(budget: int | None = None) -> tuple[list[callgraph.Reach], int]:
        graph = CallGraph.from_bytes(data)
        if budget is not None:
            graph.budget = budget
        found = [graph.reach((), constructors=True)]
        found += [graph.reach((root,), constructors=False) for root in roots]
        return found, graph.disassembled

    budget = walks()[1] // 2 if bounded else None
    with monkeypatch.context() as patch:
        patch.setattr(callgraph, "_x86scan", None)
        exact, _ = walks(budget)
    compiled, _ = walks(budget)
    statuses = {r.status for r in exact}
    if bounded:  # some walks complete before the budget runs out, and some are bound
        assert statuses == {callgraph.COMPLETE, callgraph.BOUND}
        assert any(r.status == callgraph.BOUND and r.functions_walked for r in exact)
    else:
        assert sum(len(r.chains) for r in exact) > 50
        assert sum(r.functions_walked for r in exact) > 100
    for one, other in zip(exact, compiled, strict=True):
        assert one == other, one.roots


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda p: p.name)
def test_data_objects_are_read_alike_in_c_and_in_python(library: Path) -> None:
    """Every data object's entry (`_object_pointers`: what its slots point to, by
    `object_slots`' rule) made by `_x86scan.pointed` itself equals Python's, at every
    pointer slot, sized object, object start and the addresses around them."""
    if not library.exists():
        pytest.skip(f"no {library} on this machine")
    graph = CallGraph.from_bytes(library.read_bytes())
    table = graph._objects_context()
    assert table is not None
    near = [*graph._pointer_slots, *graph._object_starts, *graph._object_starts_held()]
    addresses = sorted({a + d for a in near for d in (-65, -8, 0, 1, 8, 24, 64) if a + d >= 0})
    made: dict[int, object] = {}

    def refuse(address: int) -> object:
        raise AssertionError(f"{address:#x} left to Python")

    callgraph._x86scan.pointed(addresses, set(), made, refuse, table)
    assert len(made) == len(addresses) > 200
    for address, entry in made.items():
        assert entry == graph._object_pointers(address), hex(address)
    assert sum(len(targets) for targets, _ in made.values()) > 300  # functions and imports
    assert sum(len(inner) for _, inner in made.values()) > 1000  # data to data


@pytest.mark.parametrize("fast", [True, False], ids=["tables", "capstone"])
def test_the_sorter_leaves_what_python_would_compute_differently_to_python(fast: bool) -> None:
    """`lea rax, [rip + 0x20]`: at an ordinary address the sorter reads its target; where
    the address would wrap past 2**64 in C (Python's numbers do not), it hands the
    instruction to Python instead."""
    sorter = callgraph._x86scan
    assert sorter is not None
    handle = callgraph._X86Walker.disassembler.csh.value
    lea = bytes.fromhex("488d0520000000")  # 7 bytes
    decoded, _bounds, events, _clear, _error = sorter.scan(
        handle, lea, 0, 0x1000, 1, 0x1000, 0x1007, False, fast, 0, 0
    )
    assert decoded == 1 and events == [0, -1, ((0x1007 + 0x20) << 2) | callgraph._REFERS]
    top = (1 << 64) - 16
    decoded, _bounds, events, _clear, _error = sorter.scan(
        handle, lea, 0, top, 1, top, top + 7, False, fast, 0, 0
    )
    assert decoded == 1 and events == [0, -1, -1]


# --- the sorter's own decoding tables against capstone ---------------------------------

HANDLE = callgraph._X86Walker.disassembler.csh.value


def compare(code: bytes, address: int, absolute: bool, stride: int) -> tuple[int, int]:
    """(instructions capstone decoded, instructions the tables decoded) of `code`;
    asserts that wherever the tables decode an instruction, its length, class and
    target are capstone's (`_x86scan.compare`)."""
    sorter = callgraph._x86scan
    assert sorter is not None
    end = address + len(code)
    decoded, claimed, mismatches = sorter.compare(
        HANDLE, code, address, address, end, absolute, stride
    )
    for offset, tables, capstone_ in mismatches[:5]:
        print(code[offset : offset + 15].hex(), "tables:", tables, "capstone:", capstone_)
    assert mismatches == []
    return decoded, claimed


def function_code(graph: CallGraph) -> Iterable[tuple[int, int, bytes]]:
    """(start, end, code) of every function of `graph`."""
    for start in graph.starts:
        extent = graph._extent(start)
        if extent is not None:
            end, offset = extent
            yield start, end, graph.data[offset : offset + end - start]


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda p: p.name)
def test_the_tables_decode_real_libraries_as_capstone_does(library: Path) -> None:
    """Every instruction of every function the tables decode has capstone's length and
    `classify`'s class and target, as read in a position-independent file and as read
    in a position-dependent one; and a scan by the tables lists the same instructions,
    bounds and events as a scan by capstone alone, in either kind of file."""
    if not library.exists():
        pytest.skip(f"no {library} on this machine")
    sorter = callgraph._x86scan
    assert sorter is not None
    graph = CallGraph.from_bytes(library.read_bytes())
    decoded = claimed = 0
    for start, end, code in function_code(graph):
        for absolute in (False, True):
            counts = compare(code, start, absolute, 0)
            if not absolute:
                decoded, claimed = decoded + counts[0], claimed + counts[1]
            position = 0
            while position < len(code):
                scans = [
                    sorter.scan(HANDLE, code, position, start + position, 64, start, end,
                                absolute, fast, graph._code_low, graph._code_high)
                    for fast in (True, False)
                ]  # fmt: skip
                assert scans[0] == scans[1], f"{start + position:#x}"
                count, bounds = scans[0][:2]
                position += memoryview(bounds).cast("I")[count] if count else 1
    assert decoded > 10_000 and claimed > 0.9 * decoded  # the tables know most of it


# every prefix state the tables tell apart (none, operand size, rep, REX.W or not, REX.R
# (a MOVE's register), both, segment, a repeated 66, and ones they leave to capstone:
# lock, address size, REX before a prefix, two rep prefixes)
PREFIXES = ["", "66", "f2", "f3", "48", "41", "44", "6644", "6648", "4866", "f348", "f266",
            "64", "3e", "2e48", "f0", "67", "6666", "f3f2"]  # fmt: skip
ESCAPES = ["", "0f", "0f38", "0f3a"]


@pytest.mark.parametrize("escape", ESCAPES)
def test_the_tables_agree_with_capstone_on_every_opcode_and_modrm(escape: str) -> None:
    """Each prefix state, opcode and ModRM byte, followed by two kinds of SIB,
    displacement and immediate bytes, at an ordinary address, near 0 (targets printed in
    decimal) and near 2**64 (targets that wrap), in both readings."""
    tails = [bytes(range(0x21, 0x30)), bytes.fromhex("25f6ffffff8899aabbccddeeff0011")]
    for prefix in PREFIXES:
        head = bytes.fromhex(prefix + escape)
        slots = b"".join(
            (head + bytes([opcode, modrm]) + tail)[:15].ljust(16, b"\x90")
            for opcode in range(256)
            for modrm in range(256)
            for tail in tails
        )
        for address, absolute in ((0x401000, False), (0, False), (-(1 << 24) % (1 << 64), False),
                                  (0x401000, True)):  # fmt: skip
            compare(slots, address, absolute, 16)


def test_the_tables_agree_with_capstone_on_random_bytes() -> None:
    """20,000 random strings of 15 bytes, each alone; and real code with random bytes
    changed, decoded along as capstone decodes it."""
    random = Random(14)
    slots = b"".join(random.randbytes(15) + b"\x90" for _ in range(20_000))
    assert compare(slots, 0x401000, False, 16)[1] > 1000
    libc = LIBRARIES[0]
    if not libc.exists():
        pytest.skip(f"no {libc} on this machine")
    graph = CallGraph.from_bytes(libc.read_bytes())
    functions = sorted(function_code(graph))
    for start, _end, code in random.sample(functions, min(2000, len(functions))):
        mutated = bytearray(code)
        for _ in range(1 + len(code) // 16):
            mutated[random.randrange(len(code))] = random.randrange(256)
        compare(bytes(mutated), start, random.random() < 0.2, 0)


def test_identifiers_are_the_patterns_matches() -> None:
    """`_x86scan.identifiers` finds what `_IDENTIFIER.findall` does, in order: on random
    bytes of the characters that decide it (a printable byte before, a run too long,
    no NUL after) and on the read-only data of real libraries."""
    sorter = callgraph._x86scan
    assert sorter is not None
    pick = Random(14)
    alphabet = b"\x00\x00\x00 .-_aZz09\x01\x7f\x80\xffAbq_"

    def alike(data: bytes) -> int:
        expected = [m.decode() for m in callgraph._IDENTIFIER.findall(data)]
        assert sorter.identifiers(data) == expected, data
        return len(expected)

    found = 0
    for _ in range(3000):
        data = bytes(pick.choice(alphabet) for _ in range(pick.randrange(300)))
        long = b"x" * pick.randrange(125, 132) + b"\x00" if pick.random() < 0.2 else b""
        found += alike(long + data)
    assert found > 1000
    found = 0
    for library in LIBRARIES:
        if library.exists():
            data = library.read_bytes()
            for section in callgraph.read_layout(data).sections:
                if section.name == ".rodata":
                    found += alike(data[section.offset : section.offset + section.size])
    assert found > 1000
