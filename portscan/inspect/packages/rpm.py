"""RPM packages from the sqlite rpmdb (`rpmdb.sqlite`, rpm >= 4.16).

The `Packages` table holds one RPM header blob per package. Header layout (rpm's
docs/manual/format.md, "Header"): optional 8-byte magic `8e ad e8 01 00000000`, then
big-endian int32 index count `il` and data size `dl`, `il` index entries of 16 bytes
(tag, type, offset into the data store, count), then the `dl`-byte data store. The
older Berkeley DB `Packages` and the NDB `Packages.db` backends are reported as
unsupported rather than skipped.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator

from portscan.inspect.packages import purl
from portscan.inspect.packages.base import Cataloger, Env, ParseError
from portscan.model import Package

DB_DIRS = ("/var/lib/rpm/", "/usr/lib/sysimage/rpm/")
HEADER_MAGIC = b"\x8e\xad\xe8\x01"

# tags (rpmtag.h)
NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1014, 1022, 1044
OLDFILENAMES, DIRINDEXES, BASENAMES, DIRNAMES = 1027, 1116, 1117, 1118
# types (rpmtag.h rpmTagType)
INT32, STRING, STRING_ARRAY, I18NSTRING = 4, 6, 8, 9
_WANTED = frozenset(
    {NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH, SOURCERPM}
    | {OLDFILENAMES, DIRINDEXES, BASENAMES, DIRNAMES}
)

Value = str | list[str] | list[int]


def parse_header(blob: bytes) -> dict[int, Value]:
    """The tags this cataloger uses, decoded from one header blob."""
    if blob.startswith(HEADER_MAGIC):
        blob = blob[8:]
    if len(blob) < 8:
        raise ParseError("rpm header shorter than its preamble")
    il, dl = struct.unpack_from(">II", blob)
    store = 8 + 16 * il
    if il > 0xFFFF or store + dl > len(blob):
        raise ParseError(f"rpm header sizes out of range (il={il}, dl={dl}, len={len(blob)})")
    data = blob[store : store + dl]
    tags: dict[int, Value] = {}
    for tag, type_, offset, count in struct.iter_unpack(">iIiI", blob[8:store]):
        if tag not in _WANTED or not 0 <= offset < dl:
            continue
        if type_ == INT32:
            tags[tag] = list(struct.unpack_from(f">{count}i", data, offset))
        elif type_ in (STRING, STRING_ARRAY, I18NSTRING):
            strings = _strings(data, offset, 1 if type_ == STRING else count)
            tags[tag] = strings[0] if type_ in (STRING, I18NSTRING) else strings
    return tags


def _strings(data: bytes, offset: int, count: int) -> list[str]:
    out = []
    for _ in range(count):
        end = data.find(b"\0", offset)
        if end == -1:
            raise ParseError("rpm header string runs past the data store")
        out.append(data[offset:end].decode("utf-8", "replace"))
        offset = end + 1
    return out


def _text(tags: dict[int, Value], tag: int) -> str:
    value = tags.get(tag, "")
    return value if isinstance(value, str) else ""


def _paths(tags: dict[int, Value]) -> list[str]:
    bases = [str(b) for b in tags.get(BASENAMES, [])]
    dirs = [str(d) for d in tags.get(DIRNAMES, [])]
    index = [int(i) for i in tags.get(DIRINDEXES, [])]
    if bases and len(bases) == len(index) and all(0 <= i < len(dirs) for i in index):
        return [dirs[i] + base for base, i in zip(bases, index, strict=True)]
    return [str(p) for p in tags.get(OLDFILENAMES, [])]


def header_package(tags: dict[int, Value], path: str, env: Env) -> Package:
    name, version, release = _text(tags, NAME), _text(tags, VERSION), _text(tags, RELEASE)
    epoch = tags.get(EPOCH)
    epoch_text = str(epoch[0]) if isinstance(epoch, list) and epoch else ""
    arch = _text(tags, ARCH)
    evr = f"{version}-{release}" if release else version
    distro = env.distro
    namespace = {"rhel": "redhat"}.get(distro.id, distro.id) if distro else ""
    license_ = _text(tags, LICENSE)
    return Package(
        name=name,
        version=f"{epoch_text}:{evr}" if epoch_text else evr,
        ecosystem="rpm",
        purl=purl.build(
            "rpm",
            name,
            evr,
            namespace=namespace,
            qualifiers={
                "arch": arch,
                "distro": distro.qualifier if distro else "",
                "epoch": epoch_text,
                "upstream": _text(tags, SOURCERPM),
            },
        ),
        architecture=arch,
        licenses=[license_] if license_ else [],
        source=path,
        files=env.owned_all(_paths(tags)),
    )


def sqlite_blobs(data: bytes) -> Iterator[bytes]:
    """Header blobs of an rpmdb.sqlite image, read from memory (no file is written)."""
    image = bytearray(data)
    if image[18:20] == b"\x02\x02":  # WAL mode: the in-memory VFS reads rollback mode only
        image[18:20] = b"\x01\x01"
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(bytes(image))
        for (blob,) in connection.execute("SELECT blob FROM Packages ORDER BY hnum"):
            yield bytes(blob)
    finally:
        connection.close()


def _unsupported(path: str, env: Env) -> None:
    backend = "NDB" if path.endswith(".db") else "Berkeley DB"
    env.warn(
        f"{path}: rpm database in the {backend} format is not supported, so its packages "
        "are not listed; run `rpmdb --rebuilddb` with rpm >= 4.16 (sqlite backend) in the "
        "image, or enrich the scan with syft, which reads it"
    )


def parse(path: str, data: bytes | None, env: Env) -> list[Package]:
    """Packages of one rpm database file."""
    if not path.endswith(".sqlite"):
        if path.rpartition("/")[0] + "/rpmdb.sqlite" not in env.tree:  # else a leftover
            _unsupported(path, env)
        return []
    if not data or not data.startswith(b"SQLite format 3\0"):
        raise ParseError("not an sqlite database")
    wal = env.tree.get(path + "-wal")
    if wal is not None and wal.size:
        env.warn(f"{path}: {wal.size} bytes of uncommitted write-ahead log were not read")
    packages = []
    for blob in sqlite_blobs(data):
        tags = parse_header(blob)
        if _text(tags, NAME) == "gpg-pubkey":  # an imported signing key, not software
            continue
        packages.append(header_package(tags, path, env))
    return packages


CATALOGER = Cataloger(
    name="rpm",
    globs=tuple(d + "rpmdb.sqlite" for d in DB_DIRS),
    sees=tuple(d + name for d in DB_DIRS for name in ("Packages", "Packages.db")),
    parse=parse,
)
