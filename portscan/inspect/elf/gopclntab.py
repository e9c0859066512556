"""Function names and addresses from a Go binary's pclntab, which survives `-ldflags=-s`.

The layouts follow Go's `debug/gosym` (pclntab.go): one header per format generation,
told apart by its magic number. Each format gives `nfunc` entries of (entry PC,
offset of a `_func` record); the record's `nameOff` points into the function-name
table. Only names and entry addresses are read; line tables are not.
"""

from __future__ import annotations

import struct

from portscan.inspect.elf.layout import ElfView

MAGICS = {
    0xFFFFFFFB: "1.2",
    0xFFFFFFFA: "1.16",
    0xFFFFFFF0: "1.18",
    0xFFFFFFF1: "1.20",
}
SECTIONS = (".gopclntab", ".data.rel.ro.gopclntab")
MAX_FUNCS = 2_000_000  # sanity bound for a corrupt header


def find_pclntab(view: ElfView) -> int | None:
    """File offset of the pclntab: its section, else a magic number with a sane header."""
    for name in SECTIONS:
        section = view.layout.section(name)
        if section is not None and section.in_file and _plausible(view, section.offset):
            return section.offset
    order = "little" if view.layout.little_endian else "big"
    for magic in MAGICS:
        needle = magic.to_bytes(4, order) + b"\0\0"
        start = view.data.find(needle)
        while start >= 0:
            if _plausible(view, start):
                return start
            start = view.data.find(needle, start + 1)
    return None


def _plausible(view: ElfView, offset: int) -> bool:
    head = view.data[offset : offset + 8]
    if len(head) < 8:
        return False
    magic = int.from_bytes(head[:4], "little" if view.layout.little_endian else "big")
    return magic in MAGICS and head[4:6] == b"\0\0" and head[6] in (1, 2, 4) and head[7] in (4, 8)


def go_functions(view: ElfView) -> list[tuple[int, int, str]]:
    """(entry address, size, name) of every function in the pclntab; [] when there is
    none or it is malformed."""
    offset = find_pclntab(view)
    if offset is None:
        return []
    try:
        return _read_functions(view, offset)
    except (struct.error, IndexError, ValueError):
        return []


def _read_functions(view: ElfView, base: int) -> list[tuple[int, int, str]]:
    data = view.data
    order = "<" if view.layout.little_endian else ">"
    magic = struct.unpack_from(order + "I", data, base)[0]
    generation = MAGICS[magic]
    ptr = data[base + 7]
    word = order + ("Q" if ptr == 8 else "I")

    def field(index: int) -> int:
        return int(struct.unpack_from(word, data, base + 8 + index * ptr)[0])

    nfunc = field(0)
    if not 0 < nfunc < MAX_FUNCS:
        return []
    if generation == "1.2":
        functab, names_base, text_start = base + 8 + ptr, base, 0
        entries = _pairs(data, functab, nfunc, word)
        records_base = base
    else:
        if generation == "1.16":
            text_start, names_at, pcln_at = 0, field(2), field(6)
            entries = _pairs(data, base + pcln_at, nfunc, word)
        else:
            text_start, names_at, pcln_at = field(2), field(3), field(7)
            text_start = text_start or _text_fallback(view)
            entries = _pairs(data, base + pcln_at, nfunc, order + "I")
        names_base, records_base = base + names_at, base + pcln_at
    record_entry = word if generation in ("1.2", "1.16") else order + "I"
    entry_size = struct.calcsize(record_entry)
    functions = []
    for index in range(nfunc):
        entry, func_offset = entries[index]
        end = entries[index + 1][0]
        record = records_base + func_offset
        name_offset = struct.unpack_from(order + "i", data, record + entry_size)[0]
        start = names_base + name_offset
        stop = data.find(b"\0", start)
        if stop < 0 or stop - start > 4096:
            raise ValueError("unterminated function name")
        name = data[start:stop].decode("utf-8", "replace")
        functions.append((text_start + entry, max(end - entry, 0), name))
    return functions


def _pairs(data: bytes, offset: int, count: int, fmt: str) -> list[tuple[int, int]]:
    """`count + 1` (entry, func offset) pairs; the last holds the end PC."""
    raw = struct.unpack_from(f"{fmt[0]}{2 * (count + 1)}{fmt[1]}", data, offset)
    return list(zip(raw[0::2], raw[1::2], strict=True))


def _text_fallback(view: ElfView) -> int:
    """Where entry offsets count from when the header field is left for a relocation."""
    text = view.layout.section(".text")
    return text.address if text is not None else 0
