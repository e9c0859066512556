"""What a Go program asks of its platform: the standard-library functions it links in.

The Go linker keeps only the functions a program can reach, so the function names of
a Go binary (its symbol table, or the pclntab when stripped; inspect/elf/runtimes.py fills
`defined_functions` from either) say which APIs the program or its modules call.
signatures/go-stdlib.json lists the ones that matter on WASI (os/exec, listeners versus
dialers, os/signal, os/user, plugin, cgo). The runtime's own functions are never listed:
its clone, futex and epoll are replaced by the wasip1 port, whatever the program does.
"""

from __future__ import annotations

from portscan.inspect.elf.runtimes import go_package
from portscan.knowledge import tables as sig
from portscan.model import ApiUse, Binary

TABLE = "go-stdlib.json"


def is_stdlib(package: str) -> bool:
    """A standard-library import path: no dot in its first element, and not `main`."""
    return package != "main" and "." not in package.split("/", 1)[0]


def go_uses(binary: Binary, path: str) -> list[ApiUse]:
    """The table's APIs among the binary's functions, one use per function, in order."""
    if binary.runtime is None or binary.runtime.name != "go":
        return []
    uses = []
    for api in sig.api_table(TABLE).apis:
        for name in binary.defined_functions:
            if not api.uses.fullmatch(name):
                continue
            if api.outside_stdlib and is_stdlib(go_package(name)):
                continue
            uses.append(ApiUse(api.id, name, path))
    return uses
