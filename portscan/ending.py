"""How a portscan process ends: the command line, the ELF worker and the walk helper.

The interpreter's teardown frees every object one by one. After a scan that is
millions of objects freed for nobody: 0.15 s of nginx's cold scan and 0.3 s of
postgres's in the command's process, and 0.03-0.06 s in the walk helper, which the
scan waits for when it stops it. So each of them ends with `leave` once its work is
done and its output written.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


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
