"""The build information the Go linker embeds: toolchain version, main module, dependencies.

The blob starts with the 14-byte magic `\\xff Go buildinf:`, then one byte of pointer
size and one byte of flags, padded to 32 bytes (Go's `debug/buildinfo`):

- Go 1.18 and later set flag bit 1 and store the version and the module information
  inline after the header, each as a uvarint length and the bytes;
- older toolchains store, at offset 16, two pointers to Go string headers
  `{data pointer, length}` that hold the same two strings; flag bit 0 marks
  big-endian pointers.

The module information is text: `path`, `mod`, `dep` and `=>` (replacement) lines
of tab-separated fields and, since Go 1.18, `build KEY=VALUE` settings, framed by
16-byte sentinels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
FLAG_BIG_ENDIAN = 0x1
FLAG_INLINE = 0x2
MAX_STRING = 1 << 20

ReadFn = Callable[[int, int], bytes | None]  # (virtual address, size) -> bytes


@dataclass
class GoModule:
    path: str
    version: str = ""
    sum: str = ""
    replace: GoModule | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "version": self.version, "sum": self.sum}
        if self.replace is not None:
            out["replace"] = self.replace.as_dict()
        return out


@dataclass
class GoBuildInfo:
    go_version: str
    path: str = ""  # the main package's import path
    main: GoModule | None = None
    deps: list[GoModule] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def parse_buildinfo(blob: bytes, read: ReadFn) -> GoBuildInfo | None:
    """Decode the blob starting at `blob` (at least the 32-byte header and, for the inline
    format, the strings after it). `read` fetches the strings of the pointer format."""
    if len(blob) < HEADER_SIZE or not blob.startswith(MAGIC):
        return None
    ptr_size, flags = blob[14], blob[15]
    if flags & FLAG_INLINE:
        version, pos = _varint_string(blob, HEADER_SIZE)
        modinfo, _ = _varint_string(blob, pos)
    else:
        if ptr_size not in (4, 8):
            return None
        order: Literal["little", "big"] = "big" if flags & FLAG_BIG_ENDIAN else "little"
        version = _pointed_string(blob, 16, ptr_size, order, read)
        modinfo = _pointed_string(blob, 16 + ptr_size, ptr_size, order, read)
    if version is None or not version.startswith("go"):
        return None
    info = GoBuildInfo(go_version=version)
    if modinfo:
        _parse_modinfo(_strip_sentinels(modinfo), info)
    return info


def _varint_string(blob: bytes, pos: int) -> tuple[str | None, int]:
    length, shift = 0, 0
    while pos < len(blob):
        byte = blob[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            return None, pos
    if length > MAX_STRING or pos + length > len(blob):
        return None, pos
    return blob[pos : pos + length].decode("utf-8", "replace"), pos + length


def _pointed_string(
    blob: bytes, at: int, ptr_size: int, order: Literal["little", "big"], read: ReadFn
) -> str | None:
    """Follow a pointer in the header to a Go string header, then to the string bytes."""
    address = int.from_bytes(blob[at : at + ptr_size], order)
    header = read(address, 2 * ptr_size)
    if header is None:
        return None
    data_address = int.from_bytes(header[:ptr_size], order)
    length = int.from_bytes(header[ptr_size:], order)
    if length > MAX_STRING:
        return None
    text = read(data_address, length) if length else b""
    return None if text is None else text.decode("utf-8", "replace")


def _strip_sentinels(modinfo: str) -> str:
    """Drop the 16-byte markers around the module text (runtime/debug.modinfo)."""
    if len(modinfo) >= 33 and modinfo[-17] == "\n":
        return modinfo[16:-16]
    return modinfo


def _parse_modinfo(text: str, info: GoBuildInfo) -> None:
    last: GoModule | None = None
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "path":
            info.path = rest
        elif kind in ("mod", "dep"):
            last = GoModule(*[*fields, "", ""][:3])
            if kind == "mod":
                info.main = last
            else:
                info.deps.append(last)
        elif kind == "=>" and last is not None:
            last.replace = GoModule(*[*fields, "", ""][:3])
        elif kind == "build":
            key, _, value = rest.partition("=")
            info.settings[_unquote(key)] = _unquote(value)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text
