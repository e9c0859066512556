#!/usr/bin/env python3
"""A decompression bomb of any size, scanned once: exit code, seconds and the peak RSS
of portscan's whole process tree (psutil every 50 ms). The test suite's bomb
(tests/test_hostile.py, marker `bomb`) is 2.5 GiB to keep CI short; this one measures
the budget at the size issue 16 names (docs/security.md, "Memory").

    PYTHONPATH=. python3 benchmarks/bomb.py --gib 64     # ~1 min to build, ~80 s to scan
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
    parser.add_argument("--gib", type=int, default=64, help="inflated size (default 64)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portscan-bomb-") as scratch:
        root = Path(scratch) / "layout"
        started = time.monotonic()
        elf = (args.gib - 4) << 30 if args.gib > 8 else args.gib << 29
        jar = (args.gib << 30) - elf
        members = [("usr/bin/bomb", hostile.ELF_HEAD, elf), ("app/bomb.jar", b"PK\x03\x04", jar)]
        layout = hostile.write_bomb_layout(root, members)
        blob = layout.blob(layout.layers[0]).stat().st_size
        built = time.monotonic() - started
        print(f"built {args.gib} GiB in a {blob >> 20} MiB layer in {built:.0f} s")
        env = dict(os.environ, PORTSCAN_NO_CACHE="1")
        out = Path(scratch) / "result.json"
        command = [
            sys.executable,
            "-m",
            "portscan",
            "image",
            layout.ref,
            "-f",
            "json",
            "-o",
            str(out),
        ]
        seconds, peak_kib = timed(command, env)  # exits with the code if the scan fails
        print(f"exit 0, {seconds:.0f} s, peak RSS of the tree {peak_kib >> 10} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
