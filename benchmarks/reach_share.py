#!/usr/bin/env python3
"""What function-level reachability costs a cold scan, against syft's time.

For each corpus image, in rounds: `syft` cataloging it, `portscan image --format json`,
and the same command with reachability off (`ScanOptions.reach` False: each program
judged by every library it loads, taken whole; `bench_stages.without_reach`), one after
the other, each portscan run with an empty scan cache of its own, all from the loopback
registry as bench_syft.py runs them. Prints each command's median seconds and peak
memory, and portscan's time over syft's with and without reachability. Nothing here
asserts a time.

    python benchmarks/reach_share.py nginx:latest postgres:15 --rounds 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_syft import (  # noqa: E402
    REGISTRY,
    SYFT_SETTINGS,
    byte_compile,
    executable,
    in_turn,
    load_average,
    syft_program,
)

# portscan's command with reachability off, in a fresh interpreter
WITHOUT_REACH = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
from bench_stages import without_reach
from portscan.cli.main import main
without_reach()
sys.argv = ["portscan", *sys.argv[1:]]
main()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", default=["nginx:latest"], help="corpus NAME:TAG")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    byte_compile()
    python = executable("python3")
    print(f"load average at start: {load_average()}")
    for image in args.images:
        ref = f"registry:{REGISTRY}/corpus/{image}"
        scan = ["image", ref, "--format", "json", "-q", "-o", os.devnull]
        commands = {
            "syft": ([syft_program(), ref, "-o", "json", "-q"], SYFT_SETTINGS),
            "portscan": ([executable("portscan"), *scan], {}),
            "reachability off": ([python, "-P", "-c", WITHOUT_REACH, *scan], {}),
        }
        runs = in_turn(commands, args.rounds)
        medians = {name: statistics.median(w for w, _ in done) for name, done in runs.items()}
        for name, done in runs.items():
            peak = int(statistics.median(kib for _, kib in done)) // 1024
            print(f"{image} {name}: median {medians[name]:.2f} s, {peak} MiB")
        syft = medians["syft"]
        print(
            f"{image}: portscan/syft {medians['portscan'] / syft:.2f}, "
            f"with reachability off {medians['reachability off'] / syft:.2f}"
        )
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
