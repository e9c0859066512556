#!/usr/bin/env python3
"""Judge the WASI ground truth's native binaries for wasip1 and compare with the labels.

The corpus (../shared/groundtruth, see its README.md) holds small C/C++ programs with a
measured WASI outcome each. This builds every case natively as the README says (gcc or
g++ -O2 plus the manifest's native flags; NAME.static with -static) into a scratch
directory, reads what each binary asks of its C library, judges wasip1 with
portscan.judge, and compares with labels.tsv (default column wasi_p1_zig_result):
as-is = ready, with-emulation = shim, blocked = rework or blocked. It prints the confusion
matrix, the accuracy, and every miss with its reason.

    python benchmarks/groundtruth.py                  # wasi-libc as of the labels' snapshot
    python benchmarks/groundtruth.py --as-of latest   # the newest symbol lists as they are

What is read from a binary:
- dynamic: its undefined dynamic symbols (`nm -D --undefined-only`, versions kept), and
  the path strings in .rodata (/dev/urandom, /proc/...);
- static (no dynamic symbols): the libc functions its own code calls, found by walking
  the call graph from `main` (x86-64, capstone) over the symbol table and stopping at
  every C/C++-runtime function; path strings are not read, since the linked-in libc's
  own strings would drown the program's.
`judge_binary` is the one place that turns a binary into findings; swap it for the full
pipeline (`portscan image dir:...`) when that exists.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import capstone
import lief

from portscan import judge
from portscan.model import Finding, Target, Verdict
from portscan.scan import ScanOptions, scan_image

REPO = Path(__file__).resolve().parent.parent
GROUNDTRUTH = Path(os.environ.get("PORTSCAN_GROUNDTRUTH", REPO.parent / "shared" / "groundtruth"))
BUILD = REPO / "benchmarks" / "build" / "groundtruth"
# The labels' wasi-libc: zig 0.17.1 bundles upstream commit c89896107d7b of 2025-08-15
# (groundtruth/README.md, "The zig measurement"); the older column is the 2022-05-10 one.
SNAPSHOTS = {"wasi_p1_zig_result": "2025-08-15", "wasi_p1_2022_result": "2022-05-10"}
LABEL_CLASSES = ("as-is", "with-emulation", "blocked")
_PRINTABLE = re.compile(rb"[\x20-\x7e]{4,}")


@dataclass
class Case:
    name: str  # as in labels.tsv: NAME or NAME.static
    source: Path
    ldflags: list[str]
    static: bool


@dataclass
class Outcome:
    case: str
    label: str
    predicted: str
    verdict: Verdict
    findings: list[Finding] = field(default_factory=list)
    first_error: str = ""

    @property
    def hit(self) -> bool:
        return self.label == self.predicted


def load_cases(groundtruth: Path) -> list[Case]:
    """The binaries the corpus builds: every case, plus NAME.static where the manifest asks."""
    cases = []
    with open(groundtruth / "cases" / "manifest.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            sources = list((groundtruth / "cases").glob(row["case"] + ".c*"))
            ldflags = row["native_ldflags"].split()
            cases.append(Case(row["case"], sources[0], ldflags, static=False))
            if row["static_variant"] == "yes":
                cases.append(Case(row["case"] + ".static", sources[0], ldflags, static=True))
    return cases


def build(case: Case, out_dir: Path) -> Path:
    """Compile one case as groundtruth/tools/groundtruth.py does; reuse a fresh build."""
    out = out_dir / case.name
    if out.exists() and out.stat().st_mtime >= case.source.stat().st_mtime:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    compiler = "g++" if case.source.suffix == ".cpp" else "gcc"
    static = ["-static"] if case.static else []
    command = [compiler, "-O2", *static, "-o", str(out), str(case.source), *case.ldflags]
    subprocess.run(command, check=True, capture_output=True)
    return out


def dynamic_imports(binary: Path) -> list[str]:
    """Undefined dynamic symbols with their version tags, as nm prints them."""
    text = subprocess.run(
        ["nm", "-D", "--undefined-only", str(binary)], check=True, capture_output=True, text=True
    ).stdout
    return [line.split()[-1] for line in text.splitlines() if line.strip()]


def rodata_paths(binary: Path) -> list[str]:
    """Absolute-path strings in .rodata."""
    elf = lief.ELF.parse(str(binary))
    section = elf.get_section(".rodata") if elf else None
    if section is None:
        return []
    data = bytes(section.content)
    return [m.group().decode() for m in _PRINTABLE.finditer(data) if m.group().startswith(b"/")]


def _functions(elf: lief.ELF.Binary) -> dict[int, tuple[list[str], int]]:
    """Function start address -> (every name at it, size), from the symbol table."""
    kinds = (lief.ELF.Symbol.TYPE.FUNC, lief.ELF.Symbol.TYPE.GNU_IFUNC)
    functions: dict[int, tuple[list[str], int]] = {}
    for symbol in elf.symtab_symbols:
        if symbol.type in kinds and symbol.value and symbol.name:
            names, size = functions.setdefault(symbol.value, ([], symbol.size))
            names.append(symbol.name)
            functions[symbol.value] = (names, max(size, symbol.size))
    return functions


def _best_name(names: list[str]) -> str:
    """Among a function's aliases, the public libc spelling (signal, not __bsd_signal)."""

    def rank(name: str) -> tuple[bool, bool, int, int, str]:
        function, _ = judge.normalise(name)
        underscores = len(name) - len(name.lstrip("_"))
        return (not judge.is_platform_name(name), function != name, underscores, len(name), name)

    return min(names, key=rank)


def static_libc_calls(binary: Path) -> list[str]:
    """The C/C++-runtime functions a static x86-64 binary's own code calls.

    Walks direct calls, jumps and RIP-relative references (function pointers handed to
    signal, atexit, pthread_create) from `main`; a function whose name belongs to the C
    or C++ runtime is recorded and not entered, anything else is the program's own.
    """
    elf = lief.ELF.parse(str(binary))
    functions = _functions(elf)
    by_name = {n: a for a, (names, _) in functions.items() for n in names}
    main = by_name.get("main")
    if main is None:
        raise ValueError(f"{binary}: no main in the symbol table")
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
        if address != main and any(judge.is_platform_name(n) for n in names):
            calls.add(_best_name(names))
            continue
        code = bytes(elf.get_content_from_virtual_address(address, size))
        for insn in disassembler.disasm(code, address):
            for target in _targets(insn):
                if target in functions and target != address:
                    queue.append(target)
    return sorted(calls)


def _targets(insn: capstone.CsInsn) -> list[int]:
    """Addresses an instruction calls, jumps to or takes (RIP-relative)."""
    from capstone import x86

    found = []
    branch = insn.group(capstone.CS_GRP_CALL) or insn.group(capstone.CS_GRP_JUMP)
    for operand in insn.operands:
        if branch and operand.type == x86.X86_OP_IMM:
            found.append(operand.imm)
        elif operand.type == x86.X86_OP_MEM and operand.mem.base == x86.X86_REG_RIP:
            found.append(insn.address + insn.size + operand.mem.disp)
    return found


def judge_binary(binary: Path, static: bool, as_of: str | None) -> list[Finding]:
    """Findings for wasip1 from one binary (the call to swap for the full pipeline)."""
    targets = (Target.WASIP1,)
    if static:
        calls = static_libc_calls(binary)
        return judge.judge_symbols(
            calls, file=binary.name, targets=targets, as_of=as_of, origin="linked in"
        )
    findings = judge.judge_symbols(
        dynamic_imports(binary), file=binary.name, targets=targets, as_of=as_of
    )
    findings += judge.judge_paths(rodata_paths(binary), file=binary.name, targets=targets)
    return findings


def label_of(verdict: Verdict) -> str:
    """The label class a verdict predicts."""
    return {Verdict.READY: "as-is", Verdict.SHIM: "with-emulation"}.get(
        verdict, "blocked" if verdict in (Verdict.REWORK, Verdict.BLOCKED) else verdict.value
    )


def evaluate(
    groundtruth: Path = GROUNDTRUTH,
    build_dir: Path = BUILD,
    column: str = "wasi_p1_zig_result",
    as_of: str | None = "labels",
) -> list[Outcome]:
    """Build, judge and compare every binary; `as_of="labels"` means the column's snapshot."""
    if as_of == "labels":
        as_of = SNAPSHOTS.get(column)
    with open(groundtruth / "labels.tsv", newline="") as handle:
        labels = {row["case"]: row for row in csv.DictReader(handle, delimiter="\t")}
    error_column = "zig_first_error" if column == "wasi_p1_zig_result" else "first_error"
    cases = load_cases(groundtruth)
    for case in cases:
        build(case, build_dir)
    # The real pipeline: the directory of native binaries scanned as an image (dir:),
    # each binary one component of it.
    result = scan_image(f"dir:{build_dir}", ScanOptions(wasi_libc_as_of=as_of))
    components = {Path(c.path).name: c for c in result.components}
    outcomes = []
    for case in cases:
        component = components[case.name]
        verdict = component.verdicts[Target.WASIP1]
        findings = [f for f in component.findings if f.target is Target.WASIP1]
        row = labels[case.name]
        outcomes.append(
            Outcome(case.name, row[column], label_of(verdict), verdict, findings, row[error_column])
        )
    return outcomes


def accuracy(outcomes: list[Outcome]) -> float:
    return sum(o.hit for o in outcomes) / len(outcomes)


def confusion(outcomes: list[Outcome]) -> str:
    """Rows: label; columns: prediction."""
    counts = Counter((o.label, o.predicted) for o in outcomes)
    columns = list(LABEL_CLASSES) + sorted({o.predicted for o in outcomes} - set(LABEL_CLASSES))
    width = max(len(c) for c in columns) + 2
    lines = ["label \\ predicted".ljust(18) + "".join(c.rjust(width) for c in columns)]
    for label in LABEL_CLASSES:
        cells = "".join(str(counts[(label, c)]).rjust(width) for c in columns)
        lines.append(label.ljust(18) + cells)
    return "\n".join(lines)


def reason(outcome: Outcome) -> str:
    """Why portscan predicted what it did: the findings that set the verdict."""
    worst = [f for f in outcome.findings if f.verdict is outcome.verdict]
    if outcome.verdict is Verdict.READY:
        names = sorted({e.symbol or e.detail for f in worst for e in f.evidence})
        text = f"every judged function is available ({len(names)}: {', '.join(names[:12])})"
    else:
        text = "; ".join(f"{f.rule_id} {f.message}" for f in worst)
    measured = f" | measured: {outcome.first_error}" if outcome.first_error else ""
    return text + measured


def report(outcomes: list[Outcome], title: str) -> str:
    lines = [title, confusion(outcomes)]
    hits = sum(o.hit for o in outcomes)
    lines.append(f"accuracy: {hits}/{len(outcomes)} = {accuracy(outcomes):.1%}")
    for outcome in outcomes:
        if not outcome.hit:
            lines.append(
                f"MISS {outcome.case}: label {outcome.label}, predicted {outcome.predicted} "
                f"({outcome.verdict.value}): {reason(outcome)}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groundtruth", type=Path, default=GROUNDTRUTH)
    parser.add_argument("--build", type=Path, default=BUILD, help="scratch dir for binaries")
    parser.add_argument("--column", default="wasi_p1_zig_result", choices=sorted(SNAPSHOTS))
    parser.add_argument(
        "--as-of",
        default="labels",
        help="'labels' (the column's wasi-libc snapshot), 'latest', or an ISO date",
    )
    parser.add_argument("--clean", action="store_true", help="rebuild every binary")
    args = parser.parse_args(argv)
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        print("groundtruth: needs gcc, g++ and nm (apt-get install gcc g++ binutils)")
        return 2
    if args.clean and args.build.exists():
        shutil.rmtree(args.build)
    as_of = None if args.as_of == "latest" else args.as_of
    outcomes = evaluate(args.groundtruth, args.build, args.column, as_of)
    snapshot = SNAPSHOTS[args.column] if as_of == "labels" else as_of or "latest lists"
    print(report(outcomes, f"wasip1 vs {args.column}, wasi-libc as of {snapshot}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
