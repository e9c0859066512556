"""Runtime recognition: Go and Rust from real builds checked against their own tools, the
marker table on small C programs that carry each runtime's markers, and the real
runtimes installed on this machine."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from portscan.inspect.elf.gobuildinfo import MAGIC, parse_buildinfo
from portscan.inspect.elf.parse import analyse_elf
from portscan.inspect.elf.runtimes import MARKERS, go_package, load_signatures
from portscan.knowledge import tables as signatures
from portscan.model import Binary, Runtime
from tests.elfbuild import GO_MAIN, RUST_MAIN, ElfBuilder, builder, require, tool_output


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> ElfBuilder:
    return builder(tmp_path_factory)


def runtime_of(path: Path, name: str) -> Runtime | None:
    binary = analyse_elf(name, path.read_bytes())
    assert binary.error is None, binary.error
    return binary.runtime


# --------------------------------------------------------------------------- Go


def go_version_m(path: Path) -> dict[str, list[list[str]]]:
    """`go version -m`: Go's own reading of the buildinfo, line kind -> fields."""
    lines: dict[str, list[list[str]]] = {}
    for line in tool_output(require("go"), "version", "-m", str(path)).splitlines()[1:]:
        kind, *fields = line.strip().split("\t")
        lines.setdefault(kind, []).append(fields)
    return lines


@pytest.mark.parametrize(("name", "ldflags"), [("hello-go", ""), ("hello-go-stripped", "-s -w")])
def test_go_buildinfo_matches_go_version_m(build: ElfBuilder, name: str, ldflags: str) -> None:
    path = build.go(name, GO_MAIN, ldflags=ldflags)
    runtime = runtime_of(path, f"/app/{name}")
    assert runtime is not None and runtime.name == "go"
    truth = go_version_m(path)
    toolchain = tool_output(require("go"), "env", "GOVERSION").strip()
    assert runtime.details["go_version"] == toolchain
    assert runtime.version == toolchain.removeprefix("go")
    assert runtime.details["main_package"] == truth["path"][0][0]
    assert runtime.details["main_module"]["path"] == truth["mod"][0][0] == "example.com/app"
    deps = runtime.details["dependencies"]
    assert [d["path"] for d in deps] == [f[0] for f in truth["dep"]] == ["example.com/greeting"]
    assert deps[0]["replace"]["path"] == truth["=>"][0][0] == "../greeting"
    pairs = (f[0].split("=", 1) for f in truth["build"])
    settings = {key: json.loads(v) if v.startswith('"') else v for key, v in pairs}  # Go quotes
    assert runtime.details["build_settings"] == settings
    packages = set(runtime.details["packages"])
    assert {"main", "syscall", "fmt", "runtime", "example.com/greeting"} <= packages


def test_go_pre_118_pointer_format() -> None:
    """Go 1.13-1.17 point from the header to string headers; built here to Go's layout
    (debug/buildinfo: readString), since the toolchain on this machine is newer."""
    base = 0x500000
    memory: dict[int, bytes] = {}
    version, modinfo = (
        b"go1.16.15",
        (
            b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6"
            b"path\texample.com/old\nmod\texample.com/old\t(devel)\t\n"
            b"dep\tgolang.org/x/sys\tv0.1.0\th1:abc=\n"
            b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
        ),
    )
    memory[base + 0x100] = struct.pack("<QQ", base + 0x200, len(version))
    memory[base + 0x110] = struct.pack("<QQ", base + 0x300, len(modinfo))
    memory[base + 0x200] = version
    memory[base + 0x300] = modinfo
    header = MAGIC + bytes([8, 0]) + struct.pack("<QQ", base + 0x100, base + 0x110)

    def read(address: int, size: int) -> bytes | None:
        data = memory.get(address)
        return data[:size] if data is not None and len(data) >= size else None

    info = parse_buildinfo(header, read)
    assert info is not None
    assert (info.go_version, info.path) == ("go1.16.15", "example.com/old")
    assert info.main is not None and info.main.version == "(devel)"
    assert [(d.path, d.version, d.sum) for d in info.deps] == [
        ("golang.org/x/sys", "v0.1.0", "h1:abc=")
    ]


@pytest.mark.parametrize(
    ("symbol", "package"),
    [
        ("net/http.(*Server).Serve", "net/http"),
        ("main.main", "main"),
        ("github.com/a/b.F[...]", "github.com/a/b"),
        ("type:.eq.[2]interface {}", ""),
        ("go.buildid", ""),
        (
            "vendor/golang.org/x/net/dns/dnsmessage.(*Parser).Start",
            "vendor/golang.org/x/net/dns/dnsmessage",
        ),
    ],
)
def test_go_package_names(symbol: str, package: str) -> None:
    assert go_package(symbol) == package


# --------------------------------------------------------------------------- Rust


def test_rust_version_and_commit(build: ElfBuilder) -> None:
    runtime = runtime_of(build.rust("hello-rust", RUST_MAIN), "/app/hello")
    assert runtime is not None and runtime.name == "rust"
    verbose = tool_output(require("rustc"), "-vV")
    release = re.search(r"^release: (\S+)", verbose, re.M)
    commit = re.search(r"^commit-hash: (\w+)", verbose, re.M)
    assert release and commit
    assert runtime.version == release.group(1)
    assert runtime.details["rustc_commit"] == commit.group(1)


# --------------------------------------------------------------------------- markers

CARRIER = r"""
#include <stdio.h>
const char marker[] __attribute__((used)) = MARKER;
int main(void) { return puts(marker) < 0; }
"""


def carrier(build: ElfBuilder, name: str, marker: str, *flags: str) -> Path:
    """A C program (or library) whose .rodata holds `marker` (a C string literal)."""
    return build.c(name, CARRIER, f"-DMARKER={marker}", *flags)


MARKER_CASES = [
    (
        "busybox",
        r'"BusyBox v1.36.1 (2024-01-01) multi-call binary.\0[\0[[\0ash\0cat\0ls\0"',
        (),
        "/bin/busybox",
        ("busybox", "1.36.1"),
    ),
    (
        "libpython3.12.so.1.0",
        r'"pymalloc\0" "3.12.4\0strict"',
        ("-shared", "-fPIC", "-Wl,-soname,libpython3.12.so.1.0"),
        "/usr/lib/libpython3.12.so.1.0",
        ("cpython", "3.12.4"),
    ),
    (
        "node",
        r'"https://nodejs.org/download/release/v22.3.0/node-v22.3.0.tar.gz"',
        (),
        "/usr/local/bin/node",
        ("nodejs", "22.3.0"),
    ),
    (
        "libjvm.so",
        r'"OpenJDK 64-Bit Server VM (21.0.2+13-58) for linux-amd64 JRE"',
        ("-shared", "-fPIC", "-Wl,-soname,libjvm.so"),
        "/opt/java/lib/server/libjvm.so",
        ("jvm", "21.0.2+13-58"),
    ),
    (
        "libcoreclr.so",
        r'"@(#)Version 8.0.1124.51707 @Commit: 0123abcd"',
        ("-shared", "-fPIC", "-Wl,-soname,libcoreclr.so"),
        "/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.11/libcoreclr.so",
        ("dotnet", "8.0.11"),
    ),
    (
        "libruby-3.1.so.3.1",
        r'"ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux]"',
        ("-shared", "-fPIC", "-Wl,-soname,libruby-3.1.so.3.1"),
        "/usr/lib/libruby-3.1.so.3.1",
        ("ruby", "3.1.2"),
    ),
    (
        "libperl.so.5.36",
        r'"x\0v5.36.0\0"',
        ("-shared", "-fPIC", "-Wl,-soname,libperl.so.5.36"),
        "/usr/lib/libperl.so.5.36",
        ("perl", "5.36.0"),
    ),
    (
        "librsvg-like.so",
        r'"/usr/src/rustc-1.63.0/library/core/src/slice/mod.rs"',
        ("-shared", "-fPIC", "-Wl,-soname,librsvg-2.so.2"),
        "/usr/lib/librsvg-2.so.2",
        ("rust", "1.63.0"),
    ),
    (
        "php-fpm8.2",
        r'"X-Powered-By: PHP/"',
        (),
        "/usr/sbin/php-fpm8.2",
        ("php", "8.2"),
    ),
]


@pytest.mark.parametrize(
    ("name", "marker", "flags", "image_path", "expected"),
    MARKER_CASES,
    ids=[case[0] for case in MARKER_CASES],
)
def test_marker_table(
    build: ElfBuilder,
    name: str,
    marker: str,
    flags: tuple[str, ...],
    image_path: str,
    expected: tuple[str, str],
) -> None:
    runtime = runtime_of(carrier(build, name, marker, *flags), image_path)
    assert runtime is not None
    assert (runtime.name, runtime.version) == expected
    assert runtime.evidence


def test_busybox_applets(build: ElfBuilder) -> None:
    marker = r'"BusyBox v1.36.1 (2024-01-01) multi-call binary.\0[\0[[\0ash\0cat\0ls\0"'
    runtime = runtime_of(carrier(build, "busybox", marker), "/bin/busybox")
    assert runtime is not None
    assert runtime.details["applets"] == ["[", "[[", "ash", "cat", "ls"]


def test_program_linking_a_runtime_library(build: ElfBuilder) -> None:
    """An executable that needs libpython is an embedding of CPython."""
    library = carrier(
        build, "libpython3.12.so.1.0", r'"pymalloc\0" "3.12.4\0strict"',
        "-shared", "-fPIC", "-Wl,-soname,libpython3.12.so.1.0",
    )  # fmt: skip
    embed = build.c(
        "embed", "int main(void) { return 0; }\n",
        "-Wl,--no-as-needed", f"-L{library.parent}", "-l:libpython3.12.so.1.0",
    )  # fmt: skip
    runtime = runtime_of(embed, "/usr/bin/embed")
    assert runtime is not None
    assert (runtime.name, runtime.version) == ("cpython", "3.12")
    assert runtime.evidence == ["needed libpython3.12.so.1.0"]


def test_plain_c_has_no_runtime(build: ElfBuilder) -> None:
    path = build.c("plain", "int main(void) { return 0; }\n")
    assert runtime_of(path, "/usr/bin/plain") is None


SYSTEM_RUNTIMES = [
    ("/usr/bin/python3.11", "cpython", r"3\.11\.\d+"),
    ("/usr/bin/node", "nodejs", r"\d+\.\d+\.\d+"),
    ("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so", "jvm", r"17\.\d+\.\d+\+.*"),
    ("/usr/lib/x86_64-linux-gnu/libperl.so.5.36", "perl", r"5\.36\.\d+"),
]


@pytest.mark.parametrize(("path", "name", "version"), SYSTEM_RUNTIMES)
def test_runtimes_installed_here(path: str, name: str, version: str) -> None:
    """The real runtimes of this machine, where present (Debian 12 in CI)."""
    file = Path(path).resolve()
    if not file.exists():
        pytest.skip(f"{path} is not installed")
    binary: Binary = analyse_elf(path, file.read_bytes())
    assert binary.runtime is not None
    assert binary.runtime.name == name
    assert re.fullmatch(version, binary.runtime.version or "")


def test_marker_table_is_well_formed() -> None:
    document = signatures.load(MARKERS)
    names = [runtime["name"] for runtime in document["runtimes"]]
    assert len(names) == len(set(names))
    kinds = set(document["format"]["kinds"])
    for runtime in document["runtimes"]:
        for marker in runtime["identify"] + runtime["version"]:
            assert marker["kind"] in kinds, (runtime["name"], marker)
    assert [s.name for s in load_signatures()] == names
