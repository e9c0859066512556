#!/usr/bin/env python3
"""Judge the WASI ground truth's native binaries for wasip1 and compare with the labels.

The corpus (benchmarks/groundtruth/, see its README.md) holds small C/C++ programs with a
measured WASI outcome each. This builds every case natively as the README says (gcc or
g++ -O2 plus the manifest's native flags; NAME.static with -static) into a scratch
directory, scans that directory with portscan's real pipeline (`dir:`, the same code as
`portscan image`), and compares each binary's wasip1 verdict with labels.tsv (default
column wasi_p1_zig_result): as-is = ready, with-emulation = shim, blocked = rework or
blocked. It reports agreement twice, each with its confusion matrix and every miss with its
reason: first with the newest data (the symbol lists as they are), then, the deciding figure,
with `wasi_libc_as_of` set to the date of the wasi-libc that measured the labels. That date
is read from the labels' own record, groundtruth/toolchain.txt (written by the measurement),
never from this script.

    python benchmarks/groundtruth.py                                 # both figures
    python benchmarks/groundtruth.py --column wasi_p1_2022_result    # the 2022 labels

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
# Which line of groundtruth/toolchain.txt names the wasi-libc each label column was measured
# with; the line carries the date: "(2025-08-15)", or a Debian "git20220510" snapshot.
TOOLCHAIN_LINES = {"wasi_p1_zig_result": "zig wasi-libc", "wasi_p1_2022_result": "debian wasi-libc"}
LABEL_CLASSES = ("as-is", "with-emulation", "blocked")
_PRINTABLE = re.compile(rb"[\x20-\x7e]{4,}")


@dataclass(frozen=True)
class LabelsLibc:
    """The wasi-libc a label column was measured with, as toolchain.txt records it."""

    column: str
    date: str  # ISO date
    record: str  # the toolchain.txt line


def labels_libc(groundtruth: Path = GROUNDTRUTH, column: str = "wasi_p1_zig_result") -> LabelsLibc:
    """The date of the wasi-libc that measured `column`, read from toolchain.txt."""
    key = TOOLCHAIN_LINES[column]
    path = groundtruth / "toolchain.txt"
    for line in path.read_text().splitlines():
        name, _, value = line.partition(": ")
        if name.strip() != key:
            continue
        iso = re.search(r"\((\d{4}-\d{2}-\d{2})\)", value)
        if iso:
            return LabelsLibc(column, iso.group(1), line)
        git = re.search(r"git(\d{4})(\d{2})(\d{2})", value)
        if git:
            return LabelsLibc(column, "-".join(git.groups()), line)
        raise ValueError(f"{path}: no date in {line!r}")
    raise ValueError(f"{path}: no {key!r} line, so the labels' wasi-libc date is unknown")


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
    """Build, judge and compare every binary; `as_of="labels"` means the wasi-libc date the
    column was measured with (toolchain.txt), None the newest data."""
    if as_of == "labels":
        as_of = labels_libc(groundtruth, column).date
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


def reason(outcome: Outcome, measured: bool = True) -> str:
    """Why portscan predicted what it did: the findings that set the verdict, with the notes
    their evidence carries (when a function appeared in wasi-libc, which row applies)."""
    worst = [f for f in outcome.findings if f.verdict is outcome.verdict]
    text = "; ".join(f"{f.rule_id} {f.message}" for f in worst) or "no finding"
    notes = [
        note
        for f in worst
        if f.verdict is not Verdict.READY
        for e in f.evidence
        for note in e.detail.split("; ")[1:]
    ]
    if notes:
        text += f" [{'; '.join(dict.fromkeys(notes))}]"
    if measured and outcome.first_error:
        text += f" | measured: {outcome.first_error}"
    return text


def why_missed(outcome: Outcome, other: Outcome | None = None, other_data: str = "") -> str:
    """What explains a miss: the findings behind the prediction and the measured error, and
    what differs when the same binary judged with `other_data` (`other`) agrees."""
    lines = [f"    predicted because: {reason(outcome)}"]
    if other is not None and other.hit:
        lines.append(
            f"    explained: with {other_data} it is predicted {other.predicted} "
            f"({other.verdict.value}), as measured: {reason(other, measured=False)}. The "
            "labels were measured with that wasi-libc; the newer data describes a libc they "
            "did not see."
        )
    elif outcome.first_error.startswith("run:") and outcome.verdict is Verdict.READY:
        lines.append(
            "    explained: it links and fails only at run time, and no row of "
            "signatures/runtime-semantics.json covers a function it calls."
        )
    elif outcome.label == "unknown" or outcome.predicted not in LABEL_CLASSES:
        lines.append("    explained: portscan could not decide; the findings above say why.")
    return "\n".join(lines)


def report(
    outcomes: list[Outcome],
    title: str,
    others: dict[str, Outcome] | None = None,
    other_data: str = "",
) -> str:
    """Confusion matrix, accuracy and every miss explained; `others` are the same cases
    judged with `other_data`, used to explain a miss that data does not make."""
    lines = [title, confusion(outcomes)]
    hits = sum(o.hit for o in outcomes)
    lines.append(f"accuracy: {hits}/{len(outcomes)} = {accuracy(outcomes):.1%}")
    for outcome in outcomes:
        if not outcome.hit:
            lines.append(
                f"MISS {outcome.case}: label {outcome.label}, predicted {outcome.predicted} "
                f"({outcome.verdict.value})"
            )
            other = (others or {}).get(outcome.case)
            lines.append(why_missed(outcome, other, other_data))
    if hits == len(outcomes):
        lines.append("no misses")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groundtruth", type=Path, default=GROUNDTRUTH)
    parser.add_argument("--build", type=Path, default=BUILD, help="scratch dir for binaries")
    parser.add_argument("--column", default="wasi_p1_zig_result", choices=sorted(TOOLCHAIN_LINES))
    parser.add_argument("--clean", action="store_true", help="rebuild every binary")
    args = parser.parse_args(argv)
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        print("groundtruth: needs gcc, g++ and nm (apt-get install gcc g++ binutils)")
        return 2
    if args.clean and args.build.exists():
        shutil.rmtree(args.build)
    libc = labels_libc(args.groundtruth, args.column)
    newest = evaluate(args.groundtruth, args.build, args.column, as_of=None)
    deciding = evaluate(args.groundtruth, args.build, args.column, as_of=libc.date)
    dated = f"wasi-libc as of {libc.date}"
    print(
        report(
            newest,
            f"[1/2] wasip1 vs {args.column}, newest data (wasi-libc symbol lists as shipped)",
            {o.case: o for o in deciding},
            f"{dated} (the labels' libc)",
        )
    )
    print()
    print(
        report(
            deciding,
            f"[2/2] DECIDING: wasip1 vs {args.column}, {dated}, the libc that measured "
            f"the labels (toolchain.txt: {libc.record.strip()})",
            {o.case: o for o in newest},
            "the newest data",
        )
    )
    print()
    total = len(deciding)
    print(f"agreement, newest data: {sum(o.hit for o in newest)}/{total} = {accuracy(newest):.1%}")
    print(
        f"agreement, {dated} (the labels' libc; the deciding figure): "
        f"{sum(o.hit for o in deciding)}/{total} = {accuracy(deciding):.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
