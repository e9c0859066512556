"""How a portscan process runs: the command line, the ELF worker and the walk helper.

A scan makes millions of objects that live to its end (the tree, facts, findings) and
few reference cycles. With CPython's default first threshold (700 allocations) the
collector runs thousands of times over them for little garbage; at 50,000 it still ran
25 times in nginx's scan (0.09 s) and 30 in postgres's (0.13 s), each time over the
objects made since, to find cycles that hold a few MiB in all (a scan without the
collector: 108,000 and 203,000 objects in cycles at its end, its peak the same within
2 MiB). At 1,000,000 (`collect_rarely`) it does not run in a scan of either; a larger
image, or a registry audit's scans one after another, still have their cycles
collected. In the ELF worker and the walk helper it took 0.06-0.08 s.

The interpreter's teardown frees every object one by one: after a scan, millions of
objects freed for nobody, 0.15 s of nginx's cold scan and 0.3 s of postgres's in the
command's process, and 0.03-0.06 s in the walk helper, which the scan waits for when
it stops it. So each of them ends with `leave` once its work is done.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn

THRESHOLDS = (1_000_000, 20, 100)  # the collector's (gc.set_threshold), see above


def serving(module: str) -> list[str]:
    """The command of a portscan child process (the ELF worker, the walk helper): this
    interpreter running `module.serve` on its standard streams and the command's
    further arguments, the collector set as here, then `leave`. It imports the portscan
    this process runs: `-P` keeps the working directory off the front of its path, where
    a `portscan` folder of other code (another checkout, or one planted in the folder a
    scan runs in) would be imported instead; where this process took portscan from the
    front of its own path (`python -m portscan` in a checkout), that folder goes first."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    first = os.path.realpath(sys.path[0] or os.getcwd()) if sys.path else ""
    path = f"sys.path.insert(0, {root!r}); " if os.path.realpath(root) == first else ""
    program = (
        f"import sys; {path}from portscan.lifecycle import collect_rarely, leave; "
        f"collect_rarely(); from {module} import serve; "
        "serve(sys.stdin.buffer, sys.stdout.buffer, *sys.argv[1:]); leave(0)"
    )
    return [sys.executable, "-P", "-c", program]


def collect_rarely() -> None:
    """Set the collector's thresholds for a process that scans (`THRESHOLDS`)."""
    gc.set_threshold(*THRESHOLDS)


def leave(code: object) -> NoReturn:
    """Exit with `code` as `sys.exit` does, but without the interpreter's teardown:
    the output is flushed and the exit handlers run (the ELF worker's stop, logging's
    flush, temporary files' removal), then the process ends. Every file portscan
    writes is closed by then (each is written in a `with`). Where another thread still
    runs, or the output cannot be flushed (a closed pipe), the usual exit is taken."""
    if not isinstance(code, int | None) or threading.active_count() > 1:
        sys.exit(code)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started with the descriptor closed
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    atexit._run_exitfuncs()  # what the teardown would run first (CPython's own hook)
    os._exit(code or 0)
