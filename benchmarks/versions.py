#!/usr/bin/env python3
"""Cold scans of one corpus image by two checkouts of portscan, run alternately.

A single run drifts by 10-40% over a day on the benchmark machine, and not every tool
alike, so a change is measured against the code before it side by side: each pair of
runs is one scan by each checkout, in turn, each with an empty scan cache of its own
(as bench_syft.py's cold runs), the checkout put first on PYTHONPATH. Each checkout's
compiled extensions must be built in place (`python3 setup.py build_ext --inplace`),
and its modules are byte-compiled first, as `pip install` leaves them. Prints each
checkout's wall seconds sorted, their median, and its runs' peak memory sorted (MiB,
the whole process tree, as bench_syft.py samples it). Nothing here asserts a time.

    python benchmarks/versions.py nginx:latest ../before . --pairs 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_syft import REGISTRY, byte_compile, executable, in_turn, load_average


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="corpus NAME:TAG, e.g. nginx:latest")
    parser.add_argument("checkouts", nargs=2, type=Path, help="two portscan checkouts")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    checkouts = [path.resolve() for path in args.checkouts]
    if checkouts[0] == checkouts[1]:
        sys.exit(f"versions: both checkouts are {checkouts[0]}")
    for checkout in checkouts:
        if not (checkout / "portscan" / "__init__.py").is_file():
            sys.exit(f"versions: {checkout} is not a portscan checkout")
        byte_compile(checkout / "portscan")
    python = executable("python3")
    # from an empty folder: a checkout's ELF worker before 2026-12-06 took a `portscan`
    # folder in the working directory first, whatever PYTHONPATH said
    os.chdir(tempfile.mkdtemp(prefix="versions-"))
    ref = f"registry:{REGISTRY}/corpus/{args.image}"
    # -P: not the working directory first on sys.path (a checkout there would win)
    command = [python, "-P", "-m", "portscan", "image", ref, "--format", "json", "-q"]
    command += ["-o", os.devnull]
    print(f"load average at start: {load_average()}")
    commands = {str(c): (command, {"PYTHONPATH": str(c)}) for c in checkouts}
    runs = in_turn(commands, args.pairs)
    for checkout, measured in runs.items():
        seconds = sorted(wall for wall, _ in measured)
        peaks = " ".join(str(kib // 1024) for kib in sorted(kib for _, kib in measured))
        listed = " ".join(f"{s:.2f}" for s in seconds)
        print(f"{checkout}: {listed} s, median {statistics.median(seconds):.2f}; {peaks} MiB")
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
