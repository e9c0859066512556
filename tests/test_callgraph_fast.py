"""The compiled instruction sorter (portscan/inspect/elf/_x86scan.c) changes how fast
the x86-64 walker reads a function, never what it finds: every function of real Debian
libraries and of crafted programs (weak checks, GOT loads without PLT, switch tables, a
position-dependent executable) is summarised alike with and without it, also when the
decoding is cut into runs of a few instructions."""

from __future__ import annotations

from pathlib import Path

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
# instruction or an unconditional jump; a PIC switch (movsxd, then `jmp reg`); an
# undecodable byte inside a function.
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


def test_the_edge_cases_mean_what_they_say(build: ElfBuilder) -> None:
    """The crafted edges exercise the rules the sorter mirrors (else the test above
    could not tell a wrong sorter from a right one)."""
    path = build.c("libedges-fast.so", EDGES, "-shared", "-fPIC")
    graph = CallGraph.from_bytes(path.read_bytes())
    function = {name: graph._disassemble(graph.resolve(name)) for name in (
        "jumps_over", "tests_first", "plain_between", "adds_between", "dispatch", "bad_byte"
    )}  # fmt: skip
    assert function["jumps_over"].indirect and function["plain_between"].indirect
    assert function["adds_between"].indirect
    assert not function["tests_first"].indirect
    assert not function["dispatch"].indirect  # a switch, not an unknown call
    assert function["bad_byte"].imports == ["getpid"]  # decoding went on past the byte


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda p: p.name)
def test_real_libraries_are_summarised_alike(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not library.exists():
        pytest.skip(f"no {library} on this machine")
    assert assert_sorted_alike(library.read_bytes(), monkeypatch, callgraph.CHUNK) > 10_000


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
        handle, lea, 0, 0x1000, 1, 0x1000, 0x1007, False, fast
    )
    assert decoded == 1 and events == [0, -1, ((0x1007 + 0x20) << 2) | callgraph._REFERS]
    top = (1 << 64) - 16
    decoded, _bounds, events, _clear, _error = sorter.scan(
        handle, lea, 0, top, 1, top, top + 7, False, fast
    )
    assert decoded == 1 and events == [0, -1, -1]
