"""The `elf` analyser on real ELF files built by tests/elfbuild.py."""

from __future__ import annotations

import hashlib
import io
import random
import re
import tarfile
import warnings
from pathlib import Path

import pytest

from portscan.inspect.elf import spec
from portscan.inspect.elf.parse import analyse_elf
from portscan.inspect.elf.worker import ElfAnalyser
from portscan.layers import read_layer
from portscan.model import Binary, LayerDescriptor
from tests.elfbuild import GO_CGO_MAIN, GO_MAIN, RUST_MAIN, ElfBuilder, builder, tool_output

HELLO = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    return printf("hello %s %zu\n", argv[0], strlen(argv[0])) < 0;
}
"""
LIBRARY = r"""
#include <string.h>
int greet(const char *who) { return (int)strlen(who) + 1; }
int greet_old(const char *who) { return (int)strlen(who); }
"""
VERSION_SCRIPT = "LIBGREET_1.0 { global: greet; greet_old; local: *; };\n"


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> ElfBuilder:
    return builder(tmp_path_factory)


def analyse(path: Path, name: str | None = None) -> Binary:
    binary = analyse_elf(name or f"/usr/bin/{path.name}", path.read_bytes())
    assert binary.error is None, binary.error
    return binary


def test_dynamic_glibc_pie(build: ElfBuilder) -> None:
    binary = analyse(build.c("hello-dynamic", HELLO))
    assert (binary.machine, binary.elf_class, binary.endianness) == ("x86_64", 64, "little")
    assert (binary.file_type, binary.linkage) == ("pie", "dynamic")
    assert binary.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert binary.needed == ["libc.so.6"]
    assert binary.libc == "glibc"
    assert "printf@GLIBC_2.2.5" in binary.imported_symbols
    assert "__libc_start_main@GLIBC_2.34" in binary.imported_symbols
    assert re.fullmatch(r"[0-9a-f]{40}", binary.build_id or "")
    assert any(entry.startswith("GCC: ") for entry in binary.toolchain)
    assert not binary.stripped
    assert binary.defined_functions == []  # only kept for static binaries
    assert binary.runtime is None
    assert binary.syscalls is None  # not scanned: it reaches the kernel through libc only


def test_static_glibc(build: ElfBuilder) -> None:
    binary = analyse(build.c("hello-static", HELLO, "-static"))
    assert (binary.file_type, binary.linkage) == ("executable", "static")
    assert binary.interpreter is None and binary.needed == []
    assert binary.libc == "glibc"
    assert {"main", "__libc_start_main", "printf"} <= set(binary.defined_functions)
    assert binary.imported_symbols == []


def test_static_pie(build: ElfBuilder) -> None:
    binary = analyse(build.c("hello-static-pie", HELLO, "-static-pie"))
    assert (binary.file_type, binary.linkage) == ("pie", "static-pie")
    assert binary.libc == "glibc"


def test_stripped_static_binary_keeps_its_libc(build: ElfBuilder) -> None:
    binary = analyse(
        build.strip("hello-static-stripped", build.c("hello-static", HELLO, "-static"))
    )
    assert binary.stripped
    assert binary.defined_functions == []
    assert binary.libc == "glibc"  # from the GLIBC_TUNABLES string
    assert binary.syscalls is not None and binary.syscalls.resolved


def test_musl_static_and_dynamic(build: ElfBuilder) -> None:
    static = analyse(build.c("hello-musl-static", HELLO, "-static", compiler="musl-gcc"))
    assert (static.linkage, static.libc) == ("static", "musl")
    assert "__init_libc" in static.defined_functions
    dynamic = analyse(build.c("hello-musl", HELLO, compiler="musl-gcc"))
    assert dynamic.linkage == "dynamic"
    assert dynamic.interpreter is not None and "ld-musl-x86_64.so.1" in dynamic.interpreter
    assert dynamic.needed == ["libc.so"]
    assert dynamic.libc == "musl"


def _library(build: ElfBuilder, name: str, *flags: str) -> Path:
    script = build.root / "greet.map"
    script.write_text(VERSION_SCRIPT)
    return build.c(
        name, LIBRARY, "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1",
        f"-Wl,--version-script={script}", *flags,
    )  # fmt: skip


def test_shared_library_with_soname_runpath_and_versions(build: ElfBuilder) -> None:
    path = _library(
        build, "libgreet.so.1", "-Wl,-rpath,$ORIGIN/../lib:/opt/greet", "-Wl,--enable-new-dtags"
    )
    binary = analyse(path, "/usr/lib/libgreet.so.1")
    assert (binary.file_type, binary.linkage) == ("shared-library", "dynamic")
    assert binary.soname == "libgreet.so.1"
    assert binary.runpath == ["$ORIGIN/../lib", "/opt/greet"]
    assert binary.rpath == []
    assert {"greet@LIBGREET_1.0", "greet_old@LIBGREET_1.0"} <= set(binary.exported_symbols)
    assert binary.libc == "glibc"


def test_rpath_when_new_dtags_are_off(build: ElfBuilder) -> None:
    path = _library(
        build, "libgreet-rpath.so.1", "-Wl,-rpath,/opt/a:/opt/b", "-Wl,--disable-new-dtags"
    )
    binary = analyse(path, "/usr/lib/libgreet-rpath.so.1")
    assert (binary.rpath, binary.runpath) == (["/opt/a", "/opt/b"], [])


def test_aarch64_static(build: ElfBuilder) -> None:
    binary = analyse(build.c("hello-arm64", HELLO, "-static", compiler="aarch64-linux-gnu-gcc"))
    assert (binary.machine, binary.elf_class, binary.endianness) == ("aarch64", 64, "little")
    assert (binary.linkage, binary.libc) == ("static", "glibc")
    assert binary.syscalls is not None
    assert {"write", "exit_group"} <= set(binary.syscalls.names())
    assert all(site.instruction == "svc #0" for site in binary.syscalls.resolved)


def test_go_static_and_cgo(build: ElfBuilder) -> None:
    static = analyse(build.go("hello-go", GO_MAIN))
    assert (static.file_type, static.linkage, static.libc) == ("executable", "static", "none")
    assert static.runtime is not None and static.runtime.name == "go"
    assert "main.main" in static.defined_functions
    cgo = analyse(build.go("hello-cgo", GO_CGO_MAIN, cgo=True))
    assert cgo.linkage == "dynamic" and "libc.so.6" in cgo.needed
    assert cgo.libc == "glibc"
    assert cgo.runtime is not None and cgo.runtime.name == "go"
    assert cgo.runtime.details["build_settings"]["CGO_ENABLED"] == "1"


def test_rust_binary(build: ElfBuilder) -> None:
    binary = analyse(build.rust("hello-rust", RUST_MAIN))
    assert binary.runtime is not None and binary.runtime.name == "rust"
    assert binary.libc == "glibc"
    assert any(entry.startswith("rustc version") for entry in binary.toolchain)


def test_platform_libraries_are_not_scanned(build: ElfBuilder) -> None:
    libc = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
    binary = analyse_elf("/usr/lib/x86_64-linux-gnu/libc.so.6", libc.read_bytes())
    assert binary.error is None
    assert binary.file_type == "shared-library"  # though it has PT_INTERP, to print its version
    assert binary.soname == "libc.so.6" and binary.libc == "glibc"
    assert binary.syscalls is None


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (10, "too short for an ELF identification"),
        (40, "the ELF header needs 64"),
        (200, "program header table ends"),
    ],
)
def test_truncated_elf_sets_error(build: ElfBuilder, cut: int, message: str) -> None:
    data = build.c("hello-dynamic", HELLO).read_bytes()[:cut]
    binary = analyse_elf("/bin/cut", data)
    assert binary.error is not None and message in binary.error
    if cut >= 20:
        assert (binary.machine, binary.elf_class) == ("x86_64", 64)


def test_truncated_in_the_middle_sets_error(build: ElfBuilder) -> None:
    data = build.c("hello-static", HELLO, "-static").read_bytes()
    binary = analyse_elf("/bin/half", data[: len(data) // 2])
    assert binary.error is not None and "past the end of the file" in binary.error
    assert binary.syscalls is None and binary.runtime is None


def test_corrupted_header_fields_set_error(build: ElfBuilder) -> None:
    data = bytearray(build.c("hello-dynamic", HELLO).read_bytes())
    data[0x20:0x28] = (1 << 40).to_bytes(8, "little")  # e_phoff far past the end
    binary = analyse_elf("/bin/bad", bytes(data))
    assert binary.error is not None and "program header" in binary.error
    data = bytearray(build.c("hello-dynamic", HELLO).read_bytes())
    data[4] = 7  # EI_CLASS
    assert "invalid ELF class" in (analyse_elf("/bin/bad", bytes(data)).error or "")


def test_random_corruption_never_raises(build: ElfBuilder) -> None:
    """Bytes flipped in the headers or anywhere in the file, or cut off anywhere, give a
    Binary (with or without error), never an exception or a warning."""
    originals = [
        build.c("hello-static", HELLO, "-static").read_bytes(),
        build.c("hello-dynamic", HELLO).read_bytes(),
        build.go("hello-go", GO_MAIN).read_bytes(),
    ]
    rng = random.Random(1234)
    errors = 0
    for round_ in range(120):
        data = bytearray(originals[round_ % len(originals)])
        if round_ % 3 == 2:
            data = data[: rng.randrange(len(data))]
        span = 0x400 if round_ % 2 else len(data)
        for _ in range(rng.randint(1, 12)):
            data[rng.randrange(min(span, len(data)))] = rng.randrange(256)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            binary = analyse_elf("/bin/fuzz", bytes(data))
        assert isinstance(binary, Binary)
        errors += binary.error is not None
    assert errors > 0


def test_analyser_runs_while_a_layer_streams(build: ElfBuilder) -> None:
    """Through layers.read_layer, the analyser's Binary lands in the entry's facts."""
    payload = build.c("hello-dynamic", HELLO).read_bytes()
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w") as archive:
        for name, data in (("usr/bin/hello", payload), ("etc/motd", b"hi\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    digest = "sha256:" + hashlib.sha256(blob.getvalue()).hexdigest()
    descriptor = LayerDescriptor(digest, len(blob.getvalue()), "application/x-tar")
    blob.seek(0)
    result = read_layer(blob, descriptor, keep=lambda p, h: False, analysers=[ElfAnalyser()])
    facts = {entry.path: entry.facts for entry in result.entries}
    assert isinstance(facts["/usr/bin/hello"]["elf"], Binary)
    assert facts["/usr/bin/hello"]["elf"].needed == ["libc.so.6"]
    assert facts["/etc/motd"] == {}
    analyser = ElfAnalyser()
    assert (analyser.name, analyser.version) == ("elf", spec.ELF_FACTS_VERSION)
    assert analyser.wants("/x", b"\x7fELF\x02") and not analyser.wants("/x", b"#!/bin/sh")


def test_matches_readelf_on_system_libraries() -> None:
    """NEEDED and SONAME agree with binutils' readelf on this machine's libraries."""
    checked = 0
    for path in sorted(Path("/usr/lib/x86_64-linux-gnu").glob("lib[a-m]*.so.*"))[:40]:
        if path.is_symlink() or path.read_bytes()[:4] != b"\x7fELF":
            continue
        binary = analyse_elf(str(path), path.read_bytes())
        dynamic = tool_output("readelf", "-dW", str(path))
        assert binary.needed == re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
        sonames = re.findall(r"\(SONAME\)\s+Library soname: \[(.+?)\]", dynamic)
        assert binary.soname == (sonames[0] if sonames else None)
        checked += 1
    assert checked >= 10


def test_path_strings_read_in_windows_find_what_one_pass_finds(monkeypatch) -> None:
    """program.path_strings reads a window at a time (handing a mapped file's pages
    back behind it): a string across a window's end, or one inside another's match,
    comes out as one pass over the bytes gives it."""
    import mmap
    import re

    from portscan.inspect.elf import program

    def one_pass(data: bytes) -> list[str]:
        found: dict[str, None] = {}
        for match in re.finditer(program._PATH_STRING, data):
            found.setdefault(match.group().decode("ascii").rstrip("./"), None)
        return list(found)[: program._MAX_PATHS]

    monkeypatch.setattr(program, "_WINDOW", 4096)
    samples = [
        b"x" * at + b"/sys/dev/block/sda1\0/proc/self/maps\0" + b"y" * 100
        for at in range(4096 - 80, 4096 + 5)
    ]
    samples.append(Path("/bin/bash").read_bytes())  # a real program, many windows
    for data in samples:
        assert program.path_strings(data) == one_pass(data)
    with (
        open("/bin/bash", "rb") as file,
        mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
    ):
        assert program.path_strings(mapped) == one_pass(samples[-1])


FORKS = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { return fork() < 0 ? puts("no") : 0; }
"""


def test_a_static_program_is_judged_by_the_runtime_functions_its_own_code_calls(
    build: ElfBuilder,
) -> None:
    """A static glibc program links in most of libc; `linked_calls` (program.py, read
    with lief, imported for it) is what its own code calls, from main."""
    from portscan.inspect.elf.program import analyse_elf_facts

    path = build.c("forks-static", FORKS, "-static")
    binary = analyse_elf_facts("/usr/bin/forks", path.read_bytes(), str(path))
    assert binary.linkage == "static" and not binary.stripped
    assert {"fork", "puts"} <= set(binary.linked_calls)
    assert "pthread_create" not in binary.linked_calls
