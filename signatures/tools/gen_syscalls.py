"""Generate signatures/syscalls/<arch>.json from the kernel's uapi headers on this machine.

Each table maps syscall numbers to names for one ABI. The numbers come from the
`__NR_*` macros of the kernel headers that Debian ships (linux-libc-dev, and
linux-libc-dev-arm64-cross for aarch64). The C preprocessor of the matching
toolchain expands each header with `-dM`, so arch conditionals (`__ARCH_WANT_*`,
`__BITS_PER_LONG`) are decided as the kernel build would decide them; aliases such
as `__NR_fcntl -> __NR3264_fcntl` are then resolved here. Every table records the
header, the package that owns it and its version, and the command that expanded it.

Run from the repository root:  python signatures/tools/gen_syscalls.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parents[1] / "syscalls"


@dataclass(frozen=True)
class Abi:
    """One syscall ABI: which header defines it and which preprocessor expands it."""

    name: str
    compiler: str
    header: str


ABIS = (
    Abi("x86_64", "gcc", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    Abi("i386", "gcc", "/usr/include/x86_64-linux-gnu/asm/unistd_32.h"),
    Abi("aarch64", "aarch64-linux-gnu-gcc", "/usr/aarch64-linux-gnu/include/asm/unistd.h"),
)

# Macros that look like syscalls but are counts or range markers.
NOT_SYSCALLS = {"syscalls", "arch_specific_syscall"}
_DEFINE = re.compile(r"#define (__NR3264_\w+|__NR_\w+) (.+)")
_TOKEN = re.compile(r"\s*(?:(0x[0-9a-fA-F]+|\d+)|(__NR\w+)|([()+]))")


def expand_macros(abi: Abi) -> dict[str, str]:
    """All `__NR*` macro definitions in force after preprocessing the header."""
    command = [abi.compiler, "-E", "-dM", abi.header]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return {m.group(1): m.group(2).strip() for m in map(_DEFINE.match, output.splitlines()) if m}


def evaluate(name: str, macros: dict[str, str], depth: int = 0) -> int:
    """The integer value of `name`: sums of integers and other `__NR` macros."""
    if depth > 8:
        raise ValueError(f"macro {name} nests too deep")
    total, pos, text = 0, 0, macros[name]
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"cannot evaluate {name} = {text!r}")
        number, macro, _punct = match.groups()
        if number:
            total += int(number, 0)
        elif macro:
            total += evaluate(macro, macros, depth + 1)
        pos = match.end()
    return total


def syscall_table(abi: Abi) -> dict[int, str]:
    macros = expand_macros(abi)
    table: dict[int, str] = {}
    for macro in macros:
        if not macro.startswith("__NR_"):
            continue
        name = macro[len("__NR_") :]
        if name in NOT_SYSCALLS:
            continue
        number = evaluate(macro, macros)
        if number in table and table[number] != name:
            raise ValueError(f"{abi.name}: {number} is both {table[number]} and {name}")
        table[number] = name
    return table


def owning_package(path: str) -> tuple[str, str]:
    """(package, version) of the Debian package that installed `path`."""
    owner = subprocess.run(["dpkg", "-S", path], check=True, capture_output=True, text=True)
    package = owner.stdout.split(":", 1)[0].strip()
    query = ["dpkg-query", "-W", "-f", "${Version}", package]
    version = subprocess.run(query, check=True, capture_output=True, text=True).stdout.strip()
    return package, version


def render(abi: Abi, table: dict[int, str]) -> str:
    package, version = owning_package(abi.header)
    document = {
        "abi": abi.name,
        "source": {
            "header": abi.header,
            "package": package,
            "package_version": version,
            "expanded_with": f"{abi.compiler} -E -dM {abi.header}",
            "generator": "signatures/tools/gen_syscalls.py",
        },
        "syscalls": [],
    }
    head = json.dumps(document, indent=1).rsplit("[]", 1)[0]
    rows = ",\n".join("  " + json.dumps({"number": n, "name": table[n]}) for n in sorted(table))
    return f"{head}[\n{rows}\n]\n}}\n"


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for abi in ABIS:
        table = syscall_table(abi)
        (OUT_DIR / f"{abi.name}.json").write_text(render(abi, table))
        print(f"{abi.name}: {len(table)} syscalls from {abi.header}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
