#!/usr/bin/env python3
"""Judge the WASI ground truth's native binaries for wasip1 and compare with the labels.

The corpus (benchmarks/groundtruth/, see its README.md) holds small C/C++ programs with a
measured WASI outcome each. This builds every case natively as the README says (gcc or
g++ -O2 plus the manifest's native flags; NAME.static with -static) into a scratch
directory, scans that directory with portscan's real pipeline (`dir:`, the same code as
`portscan image`), and compares each binary's wasip1 verdict with labels.tsv (default
column wasi_p1_zig_result): as-is = ready, with-emulation = shim, blocked = rework or
blocked. It prints the confusion matrix, the accuracy, and every miss with its reason.

    python benchmarks/groundtruth.py                  # wasi-libc as of the labels' snapshot
    python benchmarks/groundtruth.py --as-of latest   # the newest symbol lists as they are

Dynamic binaries are judged by their imports and path strings, static ones by the libc
calls their own code makes (portscan/inspect/elf/program.py walks the call graph from main).
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

from portscan.model import Finding, Target, Verdict
from portscan.scan import ScanOptions, scan_image

REPO = Path(__file__).resolve().parent.parent
GROUNDTRUTH = Path(os.environ.get("PORTSCAN_GROUNDTRUTH", REPO / "benchmarks" / "groundtruth"))
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
