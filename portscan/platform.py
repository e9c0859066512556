"""What is the platform rather than the program (signatures/platform-libraries.json).

Kept free of heavy imports: the main process asks this of every component, while the
ELF parsing itself (lief, capstone) runs in a worker process.
"""

from __future__ import annotations

import functools
import re

from portscan import signatures


@functools.cache
def _platform_library() -> re.Pattern[str]:
    entries = signatures.load("platform-libraries.json")["libraries"]
    return re.compile("|".join(f"(?:{e['pattern']})" for e in entries))


def is_platform_library(path: str, soname: str | None = None) -> bool:
    """True for the C library, the loader, and the compiler and C++ runtimes: replaced
    by wasi-libc (and libc++) on WASI, so never judged by their own contents."""
    name = soname or path.rsplit("/", 1)[-1]
    return _platform_library().match(name) is not None


@functools.cache
def runtime_platforms() -> frozenset[str]:
    """Language runtimes whose own binaries are a platform (Go, CPython, the JVM, ...)."""
    return frozenset(signatures.load("platform-libraries.json")["runtime_platforms"]["runtimes"])
