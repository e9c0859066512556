#!/usr/bin/env python3
"""Which process or thread of a command is busy when: the cores each one used, interval
by interval, read from /proc (Linux). A scan's processes are the command, its ELF worker
(which becomes the walk helper) and, for large files, nothing else; its threads are the
main one, the inflating thread of the layer being read, and the worker's pipe threads.
A column near 1.0 is one core kept busy; a row whose columns add up to the machine's
cores is a stage bound by CPU, not by one thread. Nothing here asserts a time.

    python benchmarks/cpu_timeline.py -- \
        portscan image oci:/tmp/portscan-corpus/oci/nginx-latest --format json -o /dev/null
    python benchmarks/cpu_timeline.py --every 0.2 -- \
        portscan image 127.0.0.1:5000/corpus/postgres:15 -q -o /dev/null
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(stat: str) -> int | None:
    """utime + stime, in clock ticks, of a /proc/.../stat file (None once it is gone)."""
    try:
        with open(stat) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def sample(pid: int) -> dict[str, int]:
    """The CPU ticks so far of each thread of `pid` and of each of its children."""
    found: dict[str, int] = {}
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        ticks = _cpu(f"/proc/{pid}/task/{tid}/stat")
        if ticks is not None:
            found["main" if int(tid) == pid else f"thread {tid}"] = ticks
    for child in _children(pid):
        ticks = _cpu(f"/proc/{child}/stat")
        if ticks is not None:
            found[f"child {child}"] = ticks
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to time after --")
    began = time.perf_counter()
    process = subprocess.Popen(command)
    rows: list[tuple[float, dict[str, int]]] = []
    while process.poll() is None:
        try:
            rows.append((time.perf_counter() - began, sample(process.pid)))
        except FileNotFoundError:  # it ended between poll and sample
            break
        time.sleep(args.every)
    wall = time.perf_counter() - began
    names = sorted({name for _, row in rows for name in row}, key=lambda n: (n != "main", n))
    print(f"exit {process.returncode}, {wall:.2f} s; cores used per {args.every} s:")
    print("     s " + " ".join(f"{name:>13}" for name in names))
    last: dict[str, int] = {}
    for (at, row), previous in zip(rows, [0.0, *(r[0] for r in rows)], strict=False):
        span = max(at - previous, 1e-9)
        cells = []
        for name in names:
            now = row.get(name)
            used = 0.0 if now is None else (now - last.get(name, now)) / TICKS / span
            cells.append(f"{used:>13.2f}" if now is not None else f"{'':>13}")
            if now is not None:
                last[name] = now
        print(f"{at:6.2f} " + " ".join(cells))
    print("   cpu " + " ".join(f"{last.get(n, 0) / TICKS:>13.2f}" for n in names))
    return process.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
