#!/usr/bin/env python3
"""What sampling a process tree's memory costs the tools bench_syft.py times.

bench_syft.py samples the tree's memory every 10 ms. Until 077e2a9 it asked psutil for
`children(recursive=True)`, which reads the stat of every process on the machine; it now
reads each thread's /proc/PID/task/TID/children file (`bench_syft.timed`). This runs
syft and portscan on one corpus image alternately under each sampler and prints each
median, and portscan/syft under each. Nothing here asserts a time.

    python benchmarks/sampler_cost.py nginx:latest --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from bench_syft import REGISTRY, SYFT_SETTINGS, executable, syft_program, timed


def timed_psutil(command: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one run, sampling as bench_syft.py did before 077e2a9."""
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, env=env)
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            sum(p.memory_info().rss for p in tree)
        except psutil.Error:
            pass
        time.sleep(0.01)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", default="nginx:latest", help="corpus NAME:TAG")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ref = f"registry:{REGISTRY}/corpus/{args.image}"
    syft_env = {**os.environ, **SYFT_SETTINGS}
    syft = [syft_program(), ref, "-o", "json", "-q"]
    portscan = [executable("portscan"), "image", ref, "--format", "json", "-q", "-o", os.devnull]
    samplers = {"psutil": timed_psutil, "/proc": lambda c, e: timed(c, e)[0]}
    seconds: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for name, run in samplers.items():
            seconds.setdefault(("syft", name), []).append(run(syft, syft_env))
            with tempfile.TemporaryDirectory(prefix="sampler-cost-") as cache:
                env = {**os.environ, "XDG_CACHE_HOME": cache}  # a cold scan, as bench_syft
                seconds.setdefault(("portscan", name), []).append(run(portscan, env))
    for name in samplers:
        syft_s = statistics.median(seconds["syft", name])
        ours = statistics.median(seconds["portscan", name])
        print(f"{name:>7}: syft {syft_s:.2f} s, portscan {ours:.2f} s, ratio {ours / syft_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
