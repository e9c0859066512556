"""Syscall sites and numbers, checked against objdump's full disassembly and against what
strace sees the programs do.

Accuracy report (printed by `test_accuracy_against_strace`):

    python -m pytest tests/test_syscalls.py -k accuracy

For each program, `run` is what `strace -f -c` saw (minus the execve that strace
itself issues to start it) and `static` the names of all resolved sites.

- recall: the share of `run` found statically (must be 1.0).
- share run: the share of `static` this one run exercised. A static scan finds every
  syscall the code *can* make, libc's and Go's error paths included, so this is low
  by design and is no precision.
- own precision / own recall: what the program adds over a baseline built the same
  way (`int main(void) { return 0; }`, an empty Go main). Statically, the names at
  sites in functions the baseline does not have (the program's own code and the
  library functions it pulls in); at run time, what it does beyond the baseline's
  run. Own precision is the share of the former seen at run time; own recall the share
  of the latter found statically.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from portscan.inspect.elf.parse import analyse_elf
from portscan.inspect.elf.syscalls import syscall_names
from portscan.model import Binary
from tests.elfbuild import GO_BASELINE, GO_MAIN, ElfBuilder, builder, require, tool_output

BASELINE_C = "int main(void) { return 0; }\n"
RAW_GETPID = r"""
#include <unistd.h>
#include <sys/syscall.h>
int main(void) { return syscall(SYS_getpid) < 0; }
"""
RAW_UNAME = r"""
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
int main(void) { struct utsname u; return syscall(SYS_uname, &u) != 0; }
"""
INLINE_ASM = r"""
int main(void) {
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"(110L) : "rcx", "r11", "memory");
    return ret < 0;
}
"""
LIBC_IO = r"""
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    char buf[64];
    int fd = open("/proc/self/stat", O_RDONLY);
    if (fd < 0) return 1;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n <= 0;
}
"""
INT80 = r"""
int main(void) {
    long ret;
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    return ret < 0;
}
"""
GO_STACK_ABI_X86 = r"""
    .text
    .globl _start
_start:
    subq $40, %rsp
    movq $39, (%rsp)
    call "syscall.Syscall.abi0"
    movq %rax, 8(%rsp)
    movq $60, %rax
    xorl %edi, %edi
    syscall
    .globl "syscall.Syscall.abi0"
    .type "syscall.Syscall.abi0", @function
"syscall.Syscall.abi0":
    movq 8(%rsp), %rax
    syscall
    ret
    .size "syscall.Syscall.abi0", .-"syscall.Syscall.abi0"
"""
GO_STACK_ABI_ARM64 = r"""
    .text
    .globl _start
_start:
    sub sp, sp, #32
    mov x0, #172
    str x0, [sp, #8]
    bl "syscall.Syscall.abi0"
    mov x8, #93
    svc #0
    .globl "syscall.Syscall.abi0"
    .type "syscall.Syscall.abi0", %function
"syscall.Syscall.abi0":
    ldr x8, [sp, #16]
    svc #0
    ret
    .size "syscall.Syscall.abi0", .-"syscall.Syscall.abi0"
"""


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> ElfBuilder:
    return builder(tmp_path_factory)


def scan(path: Path) -> Binary:
    binary = analyse_elf(f"/usr/bin/{path.name}", path.read_bytes())
    assert binary.error is None and binary.syscalls is not None
    return binary


def instruction_sites(binary: Binary) -> dict[int, int | None]:
    report = binary.syscalls
    assert report is not None
    sites = report.resolved + report.unresolved + report.dispatch
    return {s.address: s.number for s in sites if s.kind == "instruction"}


# --------------------------------------------------------------------------- sites


@pytest.mark.parametrize(
    ("compiler", "objdump", "mnemonic", "number_load"),
    [
        ("gcc", "objdump", r"syscall", r"mov\s+\$0x([0-9a-f]+),%eax"),
        (
            "aarch64-linux-gnu-gcc",
            "aarch64-linux-gnu-objdump",
            r"svc\s+#0x0",
            r"mov\s+[xw]8, #0x([0-9a-f]+)",
        ),
    ],
    ids=["x86_64", "aarch64"],
)
def test_sites_match_a_full_disassembly(
    build: ElfBuilder, compiler: str, objdump: str, mnemonic: str, number_load: str
) -> None:
    """Every kernel entry objdump finds in a static libc binary is a site, and no other;
    where objdump shows the number loaded just before, the scan recovers the same."""
    path = build.c(f"libc-io-{compiler}", LIBC_IO, "-static", compiler=compiler)
    listing = tool_output(require(objdump), "-d", "--no-show-raw-insn", str(path))
    lines = [line for line in listing.splitlines() if re.match(r"\s+[0-9a-f]+:\t", line)]
    expected: dict[int, int | None] = {}
    for index, line in enumerate(lines):
        address, _, text = line.strip().partition(":\t")
        if re.fullmatch(mnemonic, text.strip()):
            previous = re.search(number_load, lines[index - 1])
            expected[int(address, 16)] = int(previous.group(1), 16) if previous else None
    found = instruction_sites(scan(path))
    assert len(expected) > 50
    assert set(found) == set(expected)
    checked = {a: n for a, n in expected.items() if n is not None}
    assert {a: found[a] for a in checked} == checked
    resolved = sum(n is not None for n in found.values())
    assert resolved / len(found) > 0.9


def test_wrapper_calls_in_static_c(build: ElfBuilder) -> None:
    binary = scan(build.c("raw-getpid", RAW_GETPID, "-static"))
    assert binary.syscalls is not None
    calls = [s for s in binary.syscalls.resolved if s.kind == "wrapper-call"]
    assert [(s.via, s.name, s.function) for s in calls] == [("syscall", "getpid", "main")]
    inside = [s for s in binary.syscalls.dispatch if s.function == "syscall"]
    assert inside and all(s.number is None for s in inside)


def test_wrapper_calls_through_the_plt(build: ElfBuilder) -> None:
    """A dynamic program's `call syscall@plt` is followed to the number in edi."""
    binary = scan(build.c("raw-getpid-dynamic", RAW_GETPID))
    assert binary.syscalls is not None
    assert [(s.via, s.name) for s in binary.syscalls.resolved] == [("syscall@plt", "getpid")]


def test_musl_and_aarch64_wrapper_calls(build: ElfBuilder) -> None:
    musl = scan(build.c("raw-getpid-musl", RAW_GETPID, "-static", compiler="musl-gcc"))
    assert musl.syscalls is not None
    assert ("syscall", "getpid") in {(s.via, s.name) for s in musl.syscalls.resolved}
    arm = scan(build.c("raw-getpid-arm64", RAW_GETPID, "-static", compiler="aarch64-linux-gnu-gcc"))
    assert arm.syscalls is not None
    calls = {(s.via, s.number, s.name) for s in arm.syscalls.resolved if s.kind == "wrapper-call"}
    assert ("syscall", 172, "getpid") in calls


def test_int80_is_named_from_the_i386_table(build: ElfBuilder) -> None:
    binary = scan(build.c("int80", INT80, "-static"))
    assert binary.syscalls is not None
    sites = [s for s in binary.syscalls.resolved if s.instruction == "int 0x80"]
    assert [(s.abi, s.number, s.name, s.function) for s in sites] == [
        ("i386", 20, "getpid", "main")
    ]


def test_go_wrapper_calls_register_abi(build: ElfBuilder) -> None:
    for name, flags in (("hello-go", ""), ("hello-go-stripped", "-s -w")):
        binary = scan(build.go(name, GO_MAIN, ldflags=flags))
        assert binary.syscalls is not None
        calls = {(s.via, s.name) for s in binary.syscalls.resolved if s.function == "main.main"}
        assert ("syscall.RawSyscall", "getpid") in calls, name
        names = set(binary.syscalls.names())
        assert {"uname", "getpid", "write", "futex", "clone", "mmap"} <= names, name


def test_go_wrapper_calls_on_arm64(build: ElfBuilder) -> None:
    """Go's arm64 register ABI (1.18+) passes the number in x0."""
    binary = scan(build.go("hello-go-arm64", GO_MAIN, goarch="arm64"))
    assert binary.machine == "aarch64" and binary.syscalls is not None
    calls = {
        (s.via, s.number, s.name) for s in binary.syscalls.resolved if s.function == "main.main"
    }
    assert ("syscall.RawSyscall", 172, "getpid") in calls
    assert {"uname", "write", "futex", "clone"} <= set(binary.syscalls.names())


@pytest.mark.parametrize(
    ("name", "assembler", "source", "number"),
    [
        ("go-stack-abi-x86", "gcc", GO_STACK_ABI_X86, 39),
        ("go-stack-abi-arm64", "aarch64-linux-gnu-gcc", GO_STACK_ABI_ARM64, 172),
    ],
    ids=["x86_64", "aarch64"],
)
def test_go_stack_abi_wrapper_calls(
    build: ElfBuilder, name: str, assembler: str, source: str, number: int
) -> None:
    """Go before 1.17 (amd64) / 1.18 (arm64) passes the number in the first stack slot;
    the assembly calls an `.abi0` wrapper the same way."""
    cc = require(assembler)
    src = build.root / f"{name}.s"
    src.write_text(source)
    out = build.root / name
    subprocess.run([cc, "-nostdlib", "-static", "-o", str(out), str(src)], check=True)
    binary = scan(out)
    assert binary.syscalls is not None
    calls = [s for s in binary.syscalls.resolved if s.kind == "wrapper-call"]
    assert [(s.via, s.number) for s in calls] == [("syscall.Syscall.abi0", number)]
    assert [s.function for s in binary.syscalls.dispatch] == ["syscall.Syscall.abi0"]


def test_tables_come_from_the_kernel_headers() -> None:
    assert syscall_names("x86_64")[39] == "getpid"
    assert syscall_names("aarch64")[172] == "getpid"
    assert syscall_names("i386")[20] == "getpid"
    assert syscall_names("x86_64")[231] == "exit_group"


# --------------------------------------------------------------------------- strace


@dataclass
class Program:
    name: str
    baseline: str
    issues: set[str]  # what the program itself asks the kernel for, by construction


PROGRAMS = [
    Program("raw-getpid", "baseline-c", {"getpid"}),
    Program("raw-uname", "baseline-c", {"uname"}),
    Program("inline-asm", "baseline-c", {"getppid"}),
    Program("libc-io", "baseline-c", {"openat", "read", "close"}),
    Program("raw-getpid-musl", "baseline-musl", {"getpid"}),
    Program("libc-io-musl", "baseline-musl", {"open", "read", "close"}),
    Program("go-main", "baseline-go", {"getpid", "uname"}),
]


def _build_all(build: ElfBuilder) -> dict[str, Path]:
    sources = {"raw-getpid": RAW_GETPID, "raw-uname": RAW_UNAME, "inline-asm": INLINE_ASM}
    sources |= {"libc-io": LIBC_IO, "baseline-c": BASELINE_C}
    paths = {name: build.c(f"{name}-static", source, "-static") for name, source in sources.items()}
    for name, source in (
        ("raw-getpid", RAW_GETPID),
        ("libc-io", LIBC_IO),
        ("baseline", BASELINE_C),
    ):
        paths[f"{name}-musl"] = build.c(
            f"{name}-musl-static", source, "-static", compiler="musl-gcc"
        )
    paths["go-main"] = build.go("hello-go", GO_MAIN)
    paths["baseline-go"] = build.go("baseline-go", GO_BASELINE)
    return paths


def observed(path: Path, out: Path) -> set[str]:
    """Syscall names strace saw the program make, minus strace's own execve."""
    strace = require("strace")
    subprocess.run([strace, "-f", "-c", "-o", str(out), str(path)], check=True, capture_output=True)
    names = set()
    in_table = False
    for line in out.read_text().splitlines():
        # Only the summary table's rows: with -f, strace may also write a thread's
        # "PID call(... <unfinished ...>" line to the file when the program exits
        # under it, whose first field is a number too (seen once in CI).
        in_table = in_table or line.startswith("% time")
        fields = line.split()
        if (
            in_table
            and len(fields) in (5, 6)
            and all(re.fullmatch(r"[\d.]+", f) for f in fields[:-1])
            and re.fullmatch(r"[a-z_][a-z0-9_]*", fields[-1])
            and fields[-1] != "total"
        ):
            names.add(fields[-1])
    return names - {"execve"}


def ratio(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def added_names(binary: Binary, baseline: Binary) -> set[str]:
    """Names resolved at sites in functions the baseline binary does not have: the code
    the program added (its own functions and the library functions it pulled in)."""
    assert binary.syscalls is not None
    known = set(baseline.defined_functions)
    return {s.name for s in binary.syscalls.resolved if s.name and s.function not in known}


def test_accuracy_against_strace(build: ElfBuilder, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _build_all(build)
    seen = {name: observed(path, build.root / f"{name}.strace") for name, path in paths.items()}
    binaries = {name: scan(path) for name, path in paths.items()}
    found = {name: set(b.syscalls.names() if b.syscalls else ()) for name, b in binaries.items()}
    rows, totals = [], [0] * 6
    for program in PROGRAMS:
        static, runtime = found[program.name], seen[program.name]
        assert program.issues <= runtime, f"{program.name}: the run did not do what it should"
        assert program.issues <= static, f"{program.name}: missed {program.issues - static}"
        assert runtime <= static, f"{program.name}: strace saw {runtime - static}, not found"
        own_runtime = runtime - seen[program.baseline]
        own_static = added_names(binaries[program.name], binaries[program.baseline])
        counts = [
            len(static & runtime), len(static), len(runtime),
            len(own_static & runtime), len(own_static), len(own_runtime & static),
        ]  # fmt: skip
        totals = [t + c for t, c in zip(totals, counts, strict=True)]
        rows.append((program.name, counts, len(own_runtime)))
    own_runs = sum(row[2] for row in rows)
    with capsys.disabled():
        print("\nstatic syscall scan vs strace -f -c (names; see the module docstring)")
        print(f"{'program':16} recall share run own precision own recall")
        for name, (both, n_static, n_run, own_both, n_own, own_found), n_own_run in rows:
            print(
                f"{name:16} {ratio(both, n_run):6.2f} {ratio(both, n_static):9.2f} "
                f"{ratio(own_both, n_own):13.2f} {ratio(own_found, n_own_run):10.2f}"
            )
        both, n_static, n_run, own_both, n_own, own_found = totals
        print(
            f"{'all (micro)':16} {ratio(both, n_run):6.2f} {ratio(both, n_static):9.2f} "
            f"{ratio(own_both, n_own):13.2f} {ratio(own_found, own_runs):10.2f}"
        )
    assert ratio(own_found, own_runs) == 1.0
    assert ratio(own_both, n_own) >= 0.5
