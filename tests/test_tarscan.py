"""The compiled reader of plain tar headers (portscan/_tarscan.c) against Python's
tarfile: archives written by GNU tar in each of its formats, every 512-byte block of
them, the same headers mutated, and whole layers read with and without it."""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from portscan import layers
from portscan.model import LayerDescriptor
from tests import imagebuild as ib

_tarscan = pytest.importorskip("portscan._tarscan", reason="built where a C compiler is")

PLAIN_TYPES = {
    tarfile.REGTYPE,
    tarfile.AREGTYPE,
    tarfile.LNKTYPE,
    tarfile.SYMTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.DIRTYPE,
    tarfile.FIFOTYPE,
    tarfile.CONTTYPE,
}
FORMATS = ("gnu", "oldgnu", "ustar", "posix", "v7")


def reference(block: bytes) -> tuple[object, ...] | None:
    """What tarfile makes of `block` as the header of a plain member (no pax header in
    force): frombuf, then _proc_builtin's second strip of a directory's slashes."""
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return None
    if info.type not in PLAIN_TYPES:
        return None
    name = info.name.rstrip("/") if info.isdir() else info.name
    return (name, info.linkname, info.type, info.mode, info.uid, info.gid, info.size)


_NUMBERS = ((100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (148, 8), (329, 8), (337, 8))
_OCTAL = re.compile(rb" *[0-7]* *")


def plain_numbers(block: bytes) -> bool:
    """Whether every number field is spaces, octal digits and spaces up to its NUL: the
    headers C must read itself (it leaves only the others to tarfile)."""
    return all(
        _OCTAL.fullmatch(block[at : at + size].split(b"\0", 1)[0]) is not None
        for at, size in _NUMBERS
    )


def _tree(root: Path) -> Path:
    """Files of the shapes headers describe: long names (past ustar's 100 bytes and its
    155-byte prefix), a name that is not UTF-8, links of both kinds, a FIFO, empty
    directories, sizes around a block, and real files of this machine."""
    top = root / "tree"
    deep = top / ("d" * 60) / ("e" * 60) / ("f" * 60)
    deep.mkdir(parents=True)
    (deep / ("g" * 90)).write_bytes(b"x" * 513)  # past ustar's 255 bytes
    (deep / "short").write_bytes(b"y")  # within them: a ustar prefix
    (top / "empty").mkdir()
    for size in (0, 1, 511, 512, 513, 4096):
        (top / f"size-{size}").write_bytes(os.urandom(size))
    (top / "ünïcode-名前").write_text("text")
    with open(os.fsencode(top) + b"/latin-\xe9\xff", "wb") as odd:
        odd.write(b"bytes")
    (top / "link").symlink_to("size-1")
    (top / "dangling").symlink_to("/no/such/" + "x" * 120)
    os.link(top / "size-512", top / "hard")
    os.mkfifo(top / "fifo")
    real = top / "real"
    real.mkdir()
    for path in sorted(Path("/usr/include/linux").glob("*.h"))[:40]:
        (real / path.name).write_bytes(path.read_bytes())
    return top


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The tree in each of GNU tar's formats, as GNU tar writes it."""
    root = tmp_path_factory.mktemp("tarscan")
    top = _tree(root)
    made = {}
    for form in FORMATS:
        out = root / f"{form}.tar"
        done = subprocess.run(
            ["tar", f"--format={form}", "-cf", str(out), "-C", str(top.parent), top.name],
            capture_output=True,
            text=True,
        )
        # ustar and v7 cannot hold the longest names (v7 no FIFO): tar leaves them out
        refused = [line for line in done.stderr.splitlines() if "Exiting" not in line]
        assert all("too long" in line or "Unknown file type" in line for line in refused)
        assert done.returncode == (2 if refused else 0), done.stderr
        made[form] = out.read_bytes()
    return made


def _blocks(data: bytes) -> list[bytes]:
    return [data[i : i + 512] for i in range(0, len(data), 512)]


@pytest.mark.parametrize("form", FORMATS)
def test_every_block_reads_as_tarfile_reads_it(archives: dict[str, bytes], form: str) -> None:
    """Every block of the archive: a header tarfile reads as a plain member is read the
    same in C; anything else (data, pax and long-name headers, the end) is None."""
    plain = 0
    for block in _blocks(archives[form]):
        expected = reference(block)
        assert _tarscan.header(block) == expected
        plain += expected is not None
    assert plain >= 55  # the tree's entries, each once (v7 has no devices or FIFO)


def _mutations(headers: list[bytes], count: int, seed: int) -> list[bytes]:
    """`headers` with a few bytes changed (digits, spaces, NULs, slashes, high bytes,
    base-256 markers, whitespace tarfile strips, signs), half of them with the checksum
    made right again so the change reaches the field it hit."""
    rng = random.Random(seed)
    alphabet = b"0123456789 \x00/\x80\xff\t\n\x1c+-_oxAz\xc3"
    mutated = []
    for _ in range(count):
        block = bytearray(rng.choice(headers))
        for _ in range(rng.randint(1, 3)):
            block[rng.randrange(512)] = rng.choice(alphabet)
        if rng.random() < 0.5:
            block[148:156] = b" " * 8
            block[148:155] = b"%06o\x00" % sum(block)
        mutated.append(bytes(block))
    return mutated


def test_mutated_headers_are_read_as_tarfile_reads_them_or_left_to_it(
    archives: dict[str, bytes],
) -> None:
    """Where C reads a changed header, tarfile reads it the same; where C declines it
    (an unusual number tarfile still takes), tarfile reads it; never the other way."""
    headers = [b for form in FORMATS for b in _blocks(archives[form]) if reference(b)]
    read = declined = 0
    for block in _mutations(headers, 20_000, seed=7):
        expected, got = reference(block), _tarscan.header(block)
        if got is None and expected is not None:
            assert not plain_numbers(block), block
            declined += 1
        else:
            assert got == expected, block
            read += got is not None
    assert read > 5_000 and declined > 100  # both sides of the test were reached


def _header(name: str, kind: bytes, prefix: bytes = b"", signed: bool = False) -> bytes:
    """A ustar header as tarfile writes it, then given `prefix` and its checksum again,
    summed over signed bytes when `signed` (as Sun and NeXT tars did)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    block = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b" " * 8
    total = sum(b - 256 if signed and b > 127 else b for b in block)
    block[148:155] = b"%06o\x00" % total
    return bytes(block)


@pytest.mark.parametrize(
    "block",
    [
        _header("dir///", tarfile.DIRTYPE, prefix=b"top"),  # slashes cut, joined, cut again
        _header("/", tarfile.DIRTYPE, prefix=b"top/"),
        _header("old-dir/", tarfile.AREGTYPE),  # V7: a file named with a slash is a dir
        _header("caf\xe9-\xff", tarfile.REGTYPE, signed=True),  # high bytes, signed sum
        _header("file", tarfile.REGTYPE, prefix=b"\xe9\xe9"),  # a prefix not UTF-8
    ],
)
def test_the_corners_of_a_plain_header(block: bytes) -> None:
    expected = reference(block)
    assert expected is not None and _tarscan.header(block) == expected


@pytest.mark.parametrize("form", FORMATS)
def test_layers_are_alike_with_and_without_the_compiled_reader(
    archives: dict[str, bytes], form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole layer read through layers.py: every entry the same (path, kind, mode,
    owner, size, link, kept bytes) and the same diff_id, with C and with tarfile alone."""
    blob = archives[form]
    descriptor = LayerDescriptor(digest=ib.sha256(blob), size=len(blob), media_type="tar")

    def entries() -> list[tuple[object, ...]]:
        result = layers.read_layer(io.BytesIO(blob), descriptor, lambda path, head: True)
        rows = [
            (e.path, e.kind, e.mode, e.uid, e.gid, e.size, e.link_target, e.data)
            for e in result.entries
        ]
        return [*rows, (result.diff_id, tuple(result.skipped))]

    fast = entries()
    monkeypatch.setattr(layers, "_plain_header", None)
    assert fast == entries()
    assert len(fast) > 55
