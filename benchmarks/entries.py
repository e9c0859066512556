#!/usr/bin/env python3
"""A layer of many empty files, scanned once: seconds and the peak RSS of portscan's
whole process tree (bench_syft.timed), to measure what each tar entry costs
(docs/security.md, "Memory"; the test suite scans as many as PORTSCAN_MAX_ENTRIES allows,
tests/test_hostile.py).

    PYTHONPATH=. python3 benchmarks/entries.py --count 1000000               # one directory
    PYTHONPATH=. python3 benchmarks/entries.py --count 1000000 --per-dir 1000  # 1000 x 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_syft import timed  # the tree's peak RSS, sampled
from tests import hostile  # the generator the tests use


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="empty files")
    parser.add_argument("--per-dir", type=int, default=0, help="files per directory (0: one)")
    parser.add_argument("--layout", type=Path, help="keep the layout here, reuse it if present")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portscan-entries-") as scratch:
        root = args.layout or Path(scratch) / "layout"
        if not (root / "index.json").exists():
            started = time.monotonic()
            hostile.many_files_layout(root, args.count, args.per_dir)
            print(f"built {args.count} entries in {time.monotonic() - started:.0f} s")
        env = dict(os.environ, PORTSCAN_NO_CACHE="1")
        command = [sys.executable, "-m", "portscan", "image", f"oci:{root}", "-f", "json"]
        seconds, peak_kib = timed([*command, "-o", os.devnull], env)  # exits if it fails
        print(f"exit 0, {seconds:.0f} s, peak RSS of the tree {peak_kib >> 10} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
