"""What is the platform rather than the program, and what a symbol name stands for.

Platform libraries and runtimes come from signatures/platform-libraries.json; a symbol
name is normalised (version tag dropped, glibc spellings such as __printf_chk or open64
mapped to the function they stand for, start-up symbols ignored) with
signatures/symbol-normalisation.json.

Kept free of heavy imports: the main process asks this of every component, while the
ELF parsing itself (lief, capstone) runs in a worker process.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from portscan.knowledge import tables as sig


@functools.cache
def _platform_library() -> re.Pattern[str]:
    entries = sig.load("platform-libraries.json")["libraries"]
    return re.compile("|".join(f"(?:{e['pattern']})" for e in entries))


def is_platform_library(path: str, soname: str | None = None) -> bool:
    """True for the C library, the loader, and the compiler and C++ runtimes: replaced
    by wasi-libc (and libc++) on WASI, so never judged by their own contents."""
    name = soname or path.rsplit("/", 1)[-1]
    return _platform_library().match(name) is not None


@functools.cache
def runtime_platforms() -> frozenset[str]:
    """Language runtimes whose own binaries are a platform (Go, CPython, the JVM, ...)."""
    return frozenset(sig.load("platform-libraries.json")["runtime_platforms"]["runtimes"])


@dataclass(frozen=True)
class Name:
    """An imported symbol, split into name and version, and the function it stands for."""

    raw: str
    name: str
    version: str | None
    function: str
    ignored: str | None  # why the symbol says nothing about the program

    @functools.cached_property
    def platform(self) -> bool | None:
        """True for a C/C++ platform version tag, False for another library's, None if
        unversioned."""
        if self.version is None:
            return None
        return sig.normalisation().is_platform_version(self.version)


def split_version(symbol: str) -> tuple[str, str | None]:
    """`fork@GLIBC_2.2.5` or `fork@@GLIBC_2.2.5` -> ("fork", "GLIBC_2.2.5")."""
    name, at, version = symbol.partition("@")
    return (name, version.lstrip("@") or None) if at else (symbol, None)


@sig.register_cache
@functools.lru_cache(maxsize=16384)
def capability_of(function: str) -> sig.CapabilityInfo | None:
    return sig.capability_map().for_symbol(function)


def _known(function: str) -> bool:
    return (
        sig.libc().known(function)
        or capability_of(function) is not None
        or sig.libc().library_for(function) is not None
    )


@sig.register_cache
@functools.lru_cache(maxsize=16384)
def normalise(name: str) -> tuple[str, str | None]:
    """The function an unversioned name stands for, and why it is ignored (or None)."""
    rules_ = sig.normalisation()
    function = name
    for _ in range(4):
        if function in rules_.ignored:
            return function, rules_.ignored[function]
        if function in rules_.aliases:
            function = rules_.aliases[function]
            continue
        if _known(function):
            break
        for pattern, replacement in rules_.rewrites:
            candidate = pattern.sub(replacement, function)
            if candidate != function and (_known(candidate) or candidate in rules_.aliases):
                function = candidate
                break
        else:
            break
    return function, None


@sig.register_cache
@functools.lru_cache(maxsize=65536)
def parse_name(symbol: str) -> Name:
    name, version = split_version(symbol)
    function, ignored = normalise(name)
    return Name(symbol, name, version, function, ignored)


def is_platform_name(name: str) -> bool:
    """Whether a defined function name of a static binary belongs to the C or C++ runtime
    (so a call graph from main records it instead of descending into it)."""
    function, ignored = normalise(name)
    return (
        ignored is not None
        or _known(function)
        or name.startswith(sig.normalisation().static_prefixes)
    )
