"""direct.py (the ELF facts read without lief) against lief, on real ELF files: gcc- and
aarch64-built ones always, and every ELF file of the corpus images when they are here
(CI builds them with tools/corpus first)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscan.inspect.elf import direct, parse
from portscan.inspect.elf.layout import ElfView, MalformedElf, read_layout
from portscan.inspect.elf.spec import wants
from tests.elfbuild import ElfBuilder, builder

CORPUS = Path("/tmp/portscan-corpus/oci")
PARITY_IMAGES = ["postgres-15", "node-18", "nginx-latest", "python-3.11", "busybox-static"]
LIBRARY = "int greet(const char *who) { return who[0]; }\n"
VERSIONS = "GREET_1.0 { global: greet; local: *; };\n"
HELLO = '#include <stdio.h>\nint main(void) { return puts("hi") < 0; }\n'
SYSCALLER = (
    "#include <unistd.h>\n#include <sys/syscall.h>\n"
    "int main(void) { return (int)syscall(SYS_getpid) < 0; }\n"
)


def _facts(path: str, data: bytes, direct: bool) -> tuple[object, ...] | None:
    """Everything the reader decides: the Binary, the runtime clues, the functions."""
    view = ElfView(path, data, read_layout(data))
    read = parse._read_direct(view) if direct else parse._read_with_lief(view, None)
    if read is None:
        return None
    binary, clues = read
    return (
        binary,
        clues.soname,
        clues.needed,
        clues.symbols,
        clues.comments,
        clues.note_owners,
        view.functions,
    )


def assert_same(path: str, data: bytes) -> bool:
    """Both readers agree on the file; False when direct.py declined it (lief's turn)."""
    direct = _facts(path, data, direct=True)
    if direct is None:
        return False
    assert direct == _facts(path, data, direct=False), path
    return True


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> ElfBuilder:
    return builder(tmp_path_factory)


def test_native_binaries(native_bins: dict[str, bytes]) -> None:
    for name, data in native_bins.items():
        assert assert_same(f"/usr/bin/{name}", data), name
        assert assert_same(f"/usr/bin/{name}", bytearray(data)), name  # as the worker has it
    view = ElfView("/usr/bin/hello", native_bins["hello"], read_layout(native_bins["hello"]))
    read = parse._read_direct(view)
    assert read is not None
    binary = read[0]
    assert binary.needed[0] == "libgreet.so.1" and binary.rpath + binary.runpath
    assert any("@GLIBC_" in s for s in binary.imported_symbols)


def test_versions_and_plt_stubs(build: ElfBuilder, tmp_path: Path) -> None:
    script = tmp_path / "greet.map"
    script.write_text(VERSIONS)
    lib = build.c("libdirect.so", LIBRARY, "-shared", "-fPIC", f"-Wl,--version-script={script}")
    syscaller = build.c("direct-syscaller", SYSCALLER)
    for path in (lib, syscaller):
        assert assert_same(f"/usr/lib/{path.name}", path.read_bytes())
    view = ElfView("/usr/bin/x", syscaller.read_bytes(), read_layout(syscaller.read_bytes()))
    parse._read_direct(view)
    assert any(name == "syscall@plt" for _, _, name in view.functions)
    data = lib.read_bytes()
    read = parse._read_direct(ElfView("/usr/lib/libdirect.so", data, read_layout(data)))
    assert read is not None and "greet@GREET_1.0" in read[0].exported_symbols


@pytest.mark.parametrize("flags", [(), ("-static",)])
def test_aarch64(build: ElfBuilder, flags: tuple[str, ...]) -> None:
    name = "direct-arm64" + "".join(flags)
    path = build.c(name, HELLO, *flags, compiler="aarch64-linux-gnu-gcc")
    assert assert_same(f"/usr/bin/{name}", path.read_bytes())


UNICODE = "int gr\u00fc\u00dfe(void) { return 1; }\nint plain(void) { return 2; }\n"


def _machine_libraries(count: int) -> list[Path]:
    """Up to `count` shared libraries of this machine, spread over its library folder."""
    found = sorted(Path("/usr/lib/x86_64-linux-gnu").glob("*.so*"))
    found = [p for p in found if p.is_file() and not p.is_symlink()]
    found = [p for p in found if p.read_bytes()[:4] == b"\x7fELF"]  # not a linker script
    return found[:: max(1, len(found) // count)][:count]


def test_the_compiled_dynsym_loop_reads_as_the_python_one(
    build: ElfBuilder, native_bins: dict[str, bytes], tmp_path: Path, monkeypatch
) -> None:
    """direct.py's .dynsym loop in C (_elftables.c) gives the Python loop's symbols, on
    this machine's libraries, the test programs, an aarch64 one, a library with
    versioned exports, and one whose string table is not ASCII (a UTF-8 name)."""
    if direct._elftables is None:
        pytest.skip("_elftables.c is not built")
    script = tmp_path / "greet.map"
    script.write_text(VERSIONS)
    files = [(f"/usr/bin/{name}", data) for name, data in native_bins.items()]
    built = [
        build.c("libdirect.so", LIBRARY, "-shared", "-fPIC", f"-Wl,--version-script={script}"),
        build.c("libunicode.so", UNICODE, "-shared", "-fPIC"),
        build.c("direct-arm64", HELLO, compiler="aarch64-linux-gnu-gcc"),
    ]
    files += [(f"/usr/lib/{p.name}", p.read_bytes()) for p in built]
    files += [(str(p), p.read_bytes()) for p in _machine_libraries(60)]
    unicode = parse._read_direct(ElfView("/usr/lib/x.so", built[1].read_bytes(),
                                         read_layout(built[1].read_bytes())))  # fmt: skip
    assert unicode is not None and "gr\u00fc\u00dfe" in unicode[0].exported_symbols
    compiled = [_facts(path, data, direct=True) for path, data in files]
    monkeypatch.setattr(direct, "_elftables", None)
    assert [_facts(path, data, direct=True) for path, data in files] == compiled
    assert sum(f is not None and bool(f[0].exported_symbols) for f in compiled) > 40


def test_the_compiled_dynsym_loop_refuses_malformed_arguments() -> None:
    if direct._elftables is None:
        pytest.skip("_elftables.c is not built")
    entry = bytes(24)
    good = (entry, True, None, {}, "", str, direct._TYPED_BYTES, False, {})
    assert direct._elftables.dynamic_symbols(*good) == (set(), set())
    for at, bad in ((6, b"short"), (4, "caf\u00e9"), (3, []), (5, lambda at: 1)):
        arguments = list(good)
        arguments[at] = bad
        if at == 5:  # text is asked only for a name the table cannot answer
            arguments[0] = (1).to_bytes(4, "little") + bytes([0x12]) + bytes(19)
        with pytest.raises((TypeError, ValueError)):
            direct._elftables.dynamic_symbols(*arguments)


def test_lief_is_asked_only_where_direct_declines(
    native_bins: dict[str, bytes], monkeypatch
) -> None:
    """direct.py reads the file, and lief is not asked (nor imported); where direct.py
    declines, lief reads it, with the same facts as before."""
    data = native_bins["libgreet.so.1"]
    with_lief = parse.analyse_elf("/usr/lib/libgreet.so.1", data)
    monkeypatch.setattr(parse, "read_direct", lambda data, layout: None)  # declines
    assert parse.analyse_elf("/usr/lib/libgreet.so.1", data) == with_lief
    monkeypatch.undo()
    monkeypatch.setattr(parse, "parse_with_lief", None)  # would fail if called
    assert parse.analyse_elf("/usr/lib/libgreet.so.1", data) == with_lief


def test_the_analysis_of_a_dynamic_program_does_not_import_lief(tmp_path: Path) -> None:
    """A worker that meets only files direct.py reads never loads lief (~50 MiB)."""
    path = tmp_path / "true"
    path.write_bytes(Path("/usr/bin/true").read_bytes())
    code = (
        "import sys\n"
        "from portscan.inspect.elf.worker import _analyse_file\n"
        f"binary = _analyse_file('/usr/bin/true', ({str(path)!r}, 0, {path.stat().st_size}), 'x')\n"
        "assert binary.error is None and binary.imported_symbols, binary\n"
        "print('lief' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _layers(image: Path) -> Iterator[Path]:
    index = json.loads((image / "index.json").read_text())
    for descriptor in index["manifests"]:
        manifest = json.loads(_blob(image, descriptor["digest"]).read_text())
        for layer in manifest.get("layers", []):
            yield _blob(image, layer["digest"])


def _blob(image: Path, digest: str) -> Path:
    algorithm, _, value = digest.partition(":")
    return image / "blobs" / algorithm / value


def _elf_files(image: Path) -> Iterator[tuple[str, bytes]]:
    for layer in _layers(image):
        with tarfile.open(layer, "r:*") as archive:
            for member in archive:
                if not member.isfile() or member.size < 64:
                    continue
                handle = archive.extractfile(member)
                assert handle is not None
                head = handle.read(4)
                if wants(member.name, head):
                    yield member.name, head + handle.read()


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus images at {CORPUS} (tools/corpus)")
@pytest.mark.parametrize("image", PARITY_IMAGES)
def test_corpus_parity(image: str) -> None:
    """direct.py reads every ELF file of the image exactly as lief does."""
    root = CORPUS / image
    if not root.is_dir():
        pytest.skip(f"corpus image {image} not built")
    compared = declined = 0
    for path, data in _elf_files(root):
        try:
            read_layout(data)
        except MalformedElf:
            continue
        if assert_same("/" + path, data):
            compared += 1
        else:
            declined += 1
    print(f"{image}: {compared} ELF files equal, {declined} left to lief")
    assert compared > 0 and declined == 0
